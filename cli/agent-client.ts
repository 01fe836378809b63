// ternctl's client for a node agent's JSON status API, served over a Unix socket.
import { request } from 'node:http';

export class AgentUnreachableError extends Error {}

export async function callAgent<T>(
  socketPath: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: payload ? 'POST' : 'GET',
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            reject(new Error(`agent at ${socketPath} answered ${path} with non-JSON: ${text.slice(0, 200)}`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) {
            reject(new Error((parsed as { error?: string }).error ?? `agent answered ${res.statusCode}`));
          } else resolve(parsed as T);
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`agent at ${socketPath} did not answer ${path} within ${timeoutMs} ms`)),
    );
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? new AgentUnreachableError(`no agent listening on ${socketPath} (is tern-node running?)`)
          : e,
      ),
    );
    req.end(payload);
  });
}
