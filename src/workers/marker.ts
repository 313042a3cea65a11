// The environment variable that marks a forked proxy worker (src/cli/main.ts
// reads it before anything else loads). Not NIM_*: it is no setting of the user's.
export const PROXY_WORKER_ENV = 'SUPERVISOR_PROXY_WORKER';
