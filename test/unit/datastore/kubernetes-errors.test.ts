// Kubernetes Status answers → tern's typed errors.
import { describe, expect, it } from 'vitest';
import { GoneError, KubernetesApiError, errorFromStatus } from '../../../datastore/kubernetes/index.js';
import {
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../../model/index.js';

const status = (code: number, reason: string, message: string, details?: object) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  ...(details ? { details } : {}),
  code,
});

describe('errorFromStatus', () => {
  it('409 AlreadyExists is AlreadyExistsError, any other 409 is ConflictError', () => {
    const exists = errorFromStatus(
      409,
      status(409, 'AlreadyExists', 'ippools.tern.network "p" already exists'),
      'create',
    );
    expect(exists).toBeInstanceOf(AlreadyExistsError);
    expect(exists.message).toBe('create: ippools.tern.network "p" already exists');
    expect(
      errorFromStatus(409, status(409, 'Conflict', 'the object has been modified'), 'update'),
    ).toBeInstanceOf(ConflictError);
    // A 409 whose body is not a Status (a proxy) is still a lost compare-and-swap.
    expect(errorFromStatus(409, 'conflict', 'update')).toBeInstanceOf(ConflictError);
  });

  it('404 is NotFoundError and 410 is GoneError', () => {
    expect(errorFromStatus(404, status(404, 'NotFound', 'pods "x" not found'), 'get')).toBeInstanceOf(
      NotFoundError,
    );
    expect(
      errorFromStatus(410, status(410, 'Expired', 'too old resource version: 1 (5)'), 'list'),
    ).toBeInstanceOf(GoneError);
  });

  it('422 Invalid names the field of the first cause that has one', () => {
    const err = errorFromStatus(
      422,
      status(422, 'Invalid', 'IPPool.tern.network "p" is invalid: spec.cidr: Invalid value', {
        causes: [
          { reason: 'FieldValueRequired', message: 'no field here' },
          {
            reason: 'FieldValueInvalid',
            message: 'Invalid value: "10.0.0.1/16": host bits set',
            field: 'spec.cidr',
          },
        ],
      }),
      'create',
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('spec.cidr');
    expect(err.message).toContain('host bits set');
  });

  it('400 without causes is a ValidationError carrying the server message', () => {
    const err = errorFromStatus(
      400,
      status(400, 'BadRequest', 'the namespace of the object does not match'),
      'create',
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain('does not match');
  });

  it.each([500, 502, 503, 504, 429])('%i is UnavailableError (retry later)', (code) => {
    expect(
      errorFromStatus(code, status(code, 'InternalError', 'etcdserver: request timed out'), 'get'),
    ).toBeInstanceOf(UnavailableError);
  });

  it('401/403 are KubernetesApiErrors with the status and reason, not retried as unavailable', () => {
    const err = errorFromStatus(
      403,
      status(
        403,
        'Forbidden',
        'ippools.tern.network is forbidden: User "system:serviceaccount:x" cannot list',
      ),
      'list',
    );
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect(err).not.toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ httpStatus: 403, reason: 'Forbidden' });
    expect(err.message).toMatch(/^list: .*forbidden/);
  });
});
