// Idle keep-alive connections closed the way uvicorn closes them, not the way
// Node does. uvicorn (h11_impl.py / httptools_impl.py, `on_response_complete`)
// arms `timeout_keep_alive` seconds (vLLM passes VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
// default 5: vllm/entrypoints/openai/api_server.py, vllm/envs.py) once a
// response is complete, cancels it when the next request's bytes arrive, and
// on expiry closes the transport (a plain close: FIN, then RST for anything the
// client still sends). It sends no `Keep-Alive: timeout=` header. Node's own
// keepAliveTimeout instead advertises `Keep-Alive: timeout=N` and, on Node 20,
// closes about a second later than N; so it is switched off here.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

const IDLE = Symbol('sim.keepAliveTimer');
type Tracked = Socket & { [IDLE]?: NodeJS.Timeout };

/** Close each connection `ms` after its last response completes, unless a new request arrives first. */
export function closeIdleLikeUvicorn(server: Server, ms: number): void {
  server.keepAliveTimeout = 0; // no Node timer, no Keep-Alive header
  server.on('request', (req, res) => {
    const socket = req.socket as Tracked;
    clearTimeout(socket[IDLE]);
    res.once('finish', () => {
      clearTimeout(socket[IDLE]);
      if (socket.destroyed || !res.shouldKeepAlive) return;
      socket[IDLE] = setTimeout(() => socket.destroy(), ms);
      socket[IDLE].unref();
    });
  });
  // Bytes of a next request cancel the timer (uvicorn: data_received → _unset_keepalive_if_required).
  server.on('connection', (socket: Tracked) => {
    socket.on('data', () => clearTimeout(socket[IDLE]));
    socket.once('close', () => clearTimeout(socket[IDLE]));
  });
}
