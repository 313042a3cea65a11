// The explicit allow-list of engine routes reachable through the supervisor.
// Anything not listed here (vLLM's /health, /metrics, /sleep, /wake_up,
// /reset_prefix_cache, /load, /server_info, LoRA admin, profiler …) stays
// internal to the pod. Paths are vLLM's public OpenAI-compatible surface.

export interface ProxiedRoute {
  method: 'GET' | 'POST';
  /** Express path (exact match; `:id` segments allowed). */
  path: string;
}

export const PROXIED_ROUTES: readonly ProxiedRoute[] = [
  // OpenAI-compatible inference
  { method: 'POST', path: '/v1/chat/completions' },
  { method: 'POST', path: '/v1/completions' },
  { method: 'POST', path: '/v1/embeddings' },
  { method: 'POST', path: '/v1/responses' },
  { method: 'GET', path: '/v1/responses/:id' },
  { method: 'POST', path: '/v1/responses/:id/cancel' },
  { method: 'POST', path: '/v1/messages' },
  { method: 'POST', path: '/v1/messages/count_tokens' },
  { method: 'POST', path: '/v1/audio/transcriptions' },
  { method: 'POST', path: '/v1/audio/translations' },
  { method: 'GET', path: '/v1/models' },
  // Render: the prompt without inference
  { method: 'POST', path: '/v1/chat/completions/render' },
  { method: 'POST', path: '/v1/completions/render' },
  // Tokenizer
  { method: 'POST', path: '/tokenize' },
  { method: 'POST', path: '/detokenize' },
  // Pooling and scoring
  { method: 'POST', path: '/pooling' },
  { method: 'POST', path: '/classify' },
  { method: 'POST', path: '/score' },
  { method: 'POST', path: '/v1/score' },
  { method: 'POST', path: '/rerank' },
  { method: 'POST', path: '/v1/rerank' },
  { method: 'POST', path: '/v2/rerank' },
  // The engine's interactive API docs
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
  { method: 'GET', path: '/docs/oauth2-redirect' },
  { method: 'GET', path: '/redoc' },
];

/**
 * Routes where a WebSocket handshake is passed through to the engine (everything
 * else refuses one). vLLM's realtime transcription API, for models with the
 * `realtime` task (vllm/entrypoints/openai/realtime/api_router.py).
 */
export const WEBSOCKET_ROUTES: readonly string[] = ['/v1/realtime'];
