// The explicit allow-list of engine routes reachable through the supervisor.
// Paths are vLLM's public OpenAI-compatible surface (current vLLM: the route
// table in shared/reference/vllm-0.31-changes.md §1); a route the running
// vLLM or model lacks gets vLLM's own answer (404 in current vLLM).
//
// Deliberately internal (never listed): /health, /metrics (both read by the
// supervisor itself), /version (folded into /v1/version and /v1/metadata),
// /load, /ping, /invocations, LoRA admin (/v1/load_lora_adapter,
// /v1/unload_lora_adapter: they load files from the pod), token-in/token-out
// (/inference/v1/generate, /abort_requests), derender
// (/v1/*/derender), dev routes (/sleep, /wake_up, /reset_prefix_cache,
// /server_info, /collective_rpc, weight transfer …), profiler
// (/start_profile, /stop_profile), elastic EP (/scale_elastic_ep,
// /is_scaling_elastic_ep), fault tolerance (/fault_tolerance/*),
// /generative_scoring and /cohere/v2/chat.

export interface ProxiedRoute {
  method: 'GET' | 'POST';
  /** Express path (exact match; `:id` segments allowed). */
  path: string;
}

export const PROXIED_ROUTES: readonly ProxiedRoute[] = [
  // OpenAI-compatible inference
  { method: 'POST', path: '/v1/chat/completions' },
  // Many conversations in one request, one choice each (vLLM >= 0.2x, generate models).
  { method: 'POST', path: '/v1/chat/completions/batch' },
  { method: 'POST', path: '/v1/completions' },
  { method: 'POST', path: '/v1/embeddings' },
  // Cohere-style embeddings beside /v1/embeddings (embedding models).
  { method: 'POST', path: '/v2/embed' },
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
  // Read-only; vLLM registers it only with --enable-tokenizer-info-endpoint (404 otherwise).
  { method: 'GET', path: '/tokenizer_info' },
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
