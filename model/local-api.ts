// The client side of tern's local JSON APIs (the agent's control socket, tern-bgp's control
// socket): HTTP over a Unix socket, JSON both ways.
import { request } from 'node:http';
import { UnavailableError } from './errors.js';

/** The server answered with an error status; `message` is its own explanation. */
export class LocalApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface LocalApiOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  body?: unknown;
  timeoutMs?: number;
  /** Who listens there, for error messages (e.g. "tern-node", "tern-bgp"). */
  service?: string;
}

export function requestJson<T>(socketPath: string, path: string, options: LocalApiOptions = {}): Promise<T> {
  const service = options.service ?? 'the local API';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: options.method ?? (payload ? 'POST' : 'GET'),
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
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
            reject(
              new UnavailableError(
                `${service} at ${socketPath} answered ${path} with non-JSON (${res.statusCode}): ${text.slice(0, 200)}`,
              ),
            );
            return;
          }
          const status = res.statusCode ?? 500;
          if (status >= 400)
            reject(
              new LocalApiError(
                (parsed as { error?: string }).error ?? `${service} answered ${status}`,
                status,
              ),
            );
          else resolve(parsed as T);
        });
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(
        new UnavailableError(`${service} at ${socketPath} did not answer ${path} within ${timeoutMs} ms`),
      ),
    );
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e instanceof UnavailableError
          ? e
          : new UnavailableError(
              e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
                ? `no ${service} listening on ${socketPath} (is it running?)`
                : `cannot reach ${service} at ${socketPath}: ${e.message}`,
            ),
      ),
    );
    req.end(payload);
  });
}
