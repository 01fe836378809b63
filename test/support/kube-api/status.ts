// Status objects exactly as kube-apiserver writes them for failed calls.
import type { ResourceInfo } from '../../../datastore/kubernetes/resources.js';

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: Array<{ reason: string; message: string; field: string }>;
  };
  code: number;
}

export class ApiFailure extends Error {
  constructor(readonly status: StatusBody) {
    super(status.message);
  }
}

const failure = (code: number, reason: string, message: string, details?: StatusBody['details']) =>
  new ApiFailure({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });

const details = (r: ResourceInfo, name: string) => ({ name, group: r.group, kind: r.plural });

export const notFound = (r: ResourceInfo, name: string) =>
  failure(404, 'NotFound', `${r.qualifiedName} "${name}" not found`, details(r, name));

export const alreadyExists = (r: ResourceInfo, name: string) =>
  failure(409, 'AlreadyExists', `${r.qualifiedName} "${name}" already exists`, details(r, name));

export const conflict = (r: ResourceInfo, name: string) =>
  failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${r.qualifiedName} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details(r, name),
  );

export const preconditionFailed = (r: ResourceInfo, name: string, wanted: string, stored: string) =>
  failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${r.qualifiedName} "${name}": Precondition failed: ResourceVersion in precondition: ${wanted}, ResourceVersion in object meta: ${stored}`,
    details(r, name),
  );

export const invalid = (r: ResourceInfo, name: string, field: string, message: string) =>
  failure(
    422,
    'Invalid',
    `${r.kind}.${r.group || 'core'} "${name}" is invalid: ${field}: Invalid value: ${message}`,
    {
      name,
      group: r.group,
      kind: r.kind,
      causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${message}`, field }],
    },
  );

export const badRequest = (message: string) => failure(400, 'BadRequest', message);

export const expired = (message: string) => failure(410, 'Expired', message);

export const methodNotAllowed = () =>
  failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');

export const pathNotFound = () =>
  failure(404, 'NotFound', 'the server could not find the requested resource');
