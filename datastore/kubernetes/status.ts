// Kubernetes Status objects (the body of every API error) → tern's typed errors.
import { z } from 'zod';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  TernError,
  UnavailableError,
  ValidationError,
} from '../../model/index.js';

export const statusSchema = z.looseObject({
  kind: z.literal('Status'),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().int().optional(),
  details: z
    .looseObject({
      name: z.string().optional(),
      kind: z.string().optional(),
      causes: z
        .array(
          z.looseObject({
            reason: z.string().optional(),
            message: z.string().optional(),
            field: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});

export type KubeStatus = z.infer<typeof statusSchema>;

export function parseStatus(body: unknown): KubeStatus | undefined {
  const r = statusSchema.safeParse(body);
  return r.success ? r.data : undefined;
}

/** An API answer tern has no error class for (401, 403, 405, …): not worth retrying. */
export class KubernetesApiError extends TernError {
  readonly code = 'kubernetes-api';
  constructor(
    readonly httpStatus: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The history a watch asked for is gone (410 Gone / reason Expired): the consumer must relist. */
export class GoneError extends TernError {
  readonly code = 'gone';
}

/**
 * Translates a failed API call. `what` says which call (`update ippools.tern.network "p1"`), so
 * the message stands alone in a log line.
 */
export function errorFromStatus(httpStatus: number, body: unknown, what: string): Error {
  const status = parseStatus(body);
  const reason = status?.reason;
  const message = `${what}: ${status?.message ?? (typeof body === 'string' && body ? body : `HTTP ${httpStatus}`)}`;
  switch (httpStatus) {
    case 404:
      return new NotFoundError(message);
    case 409:
      return reason === 'AlreadyExists' ? new AlreadyExistsError(message) : new ConflictError(message);
    case 410:
      return new GoneError(message);
    case 400:
    case 422: {
      const cause = status?.details?.causes?.find((c) => c.field) ?? status?.details?.causes?.[0];
      return new ValidationError(cause?.field ?? '', cause?.message ?? status?.message ?? message);
    }
    case 429:
      return new UnavailableError(`${message} (throttled)`);
  }
  if (httpStatus >= 500) return new UnavailableError(message);
  return new KubernetesApiError(httpStatus, reason, message);
}
