// /openapi.json and the Swagger UI page at /docs, built from the route table.

export interface RouteDoc {
  path: string;
  methods: string[];
  name: string;
  json: boolean;
}

function operationId(name: string, path: string, method: string): string {
  return `${name}${path.replace(/[^A-Za-z0-9]+/g, '_')}${method.toLowerCase()}`;
}

export function openapiDocument(routes: RouteDoc[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const ops: Record<string, unknown> = (paths[r.path] ??= {});
    for (const m of r.methods) {
      const op: Record<string, unknown> = {
        summary: r.name
          .split('_')
          .map((w) => w[0]!.toUpperCase() + w.slice(1))
          .join(' '),
        operationId: operationId(r.name, r.path, m),
        responses: {
          '200': { description: 'Successful Response', content: { 'application/json': { schema: {} } } },
        },
      };
      if (r.json && m === 'POST') {
        op.requestBody = { content: { 'application/json': { schema: { type: 'object' } } }, required: true };
        (op.responses as Record<string, unknown>)['400'] = { description: 'Bad Request', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } };
      }
      ops[m.toLowerCase()] = op;
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'FastAPI', version: '0.1.0', 'x-vllm-version': version },
    paths,
    components: {
      schemas: {
        ErrorInfo: {
          type: 'object',
          required: ['message', 'type', 'code'],
          properties: {
            message: { type: 'string' },
            type: { type: 'string' },
            param: { anyOf: [{ type: 'string' }, { type: 'null' }] },
            code: { type: 'integer' },
          },
        },
        ErrorResponse: { type: 'object', required: ['error'], properties: { error: { $ref: '#/components/schemas/ErrorInfo' } } },
      },
    },
  };
}

/** A Swagger UI page like FastAPI's: the assets come from a CDN in the browser; the page itself needs no network. */
export function docsPage(openapiUrl: string): string {
  return `<!DOCTYPE html>
<html>
<head>
<link type="text/css" rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
<title>FastAPI - Swagger UI</title>
</head>
<body>
<div id="swagger-ui">
</div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle({
  url: '${openapiUrl}',
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
})
</script>
</body>
</html>
`;
}

export function redocPage(openapiUrl: string): string {
  return `<!DOCTYPE html>
<html>
<head>
<title>FastAPI - ReDoc</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<noscript>ReDoc requires Javascript to function. Please enable it to browse the documentation.</noscript>
<redoc spec-url="${openapiUrl}"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"> </script>
</body>
</html>
`;
}
