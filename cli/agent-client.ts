// ternctl's client for a node agent's JSON status API, served over its control socket.
import { requestJson } from '../model/local-api.js';

export function callAgent<T>(
  socketPath: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<T> {
  return requestJson<T>(socketPath, path, {
    ...(body === undefined ? {} : { body }),
    timeoutMs,
    service: 'tern-node',
  });
}
