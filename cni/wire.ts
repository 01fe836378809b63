// The contract between the thin `tern` executable and the node agent's CNI socket. This module
// is imported by the executable, so it must stay free of anything but node built-ins.

/** Where the agent listens unless the netconf (`agentSocket`) or env (`TERN_CNI_SOCKET`) says otherwise. */
export const DEFAULT_AGENT_SOCKET = '/run/tern/cni.sock';

/** Upper bound of one request (env + stdin); a netconf with a large prevResult is still far below. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** Upper bound of one answer. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Versions whose results tern produces exactly (0.1.0/0.2.0 would commit to the legacy ip4/ip6 shape). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/**
 * One CNI invocation as the executable saw it: its CNI_* environment and its stdin bytes.
 * Framing: the client writes one JSON document and half-closes; the agent answers with one JSON
 * document and closes. One request per connection.
 */
export interface WireRequest {
  env: Record<string, string>;
  stdin: string;
}

/** What the executable prints (stdout, stderr) and its exit code. */
export interface WireResponse {
  exitCode: number;
  stdout: string;
  stderr?: string;
}

/** CNI error codes (spec §5; 100+ are tern's own). */
export const CNI_CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  invalidNetns: 8,
  tryAgainLater: 11,
  notReady: 50,
  limitedConnectivity: 51,
  /** Unexpected failure inside tern. */
  internal: 100,
  /** No address left in any candidate pool. */
  ipamExhausted: 101,
  /** A requested (fixed) address is taken or outside every pool. */
  addressUnavailable: 102,
  /** The kernel refused part of the veth plumbing. */
  dataplane: 103,
  /** CHECK found the attachment not as ADD left it. */
  checkFailed: 104,
} as const;

/** Error JSON as CNI wants it on stdout. */
export function errorJson(cniVersion: string, code: number, msg: string, details?: string): string {
  const body: Record<string, unknown> = { cniVersion, code, msg };
  if (details) body.details = details;
  return JSON.stringify(body) + '\n';
}

/** Decodes an agent answer, rejecting anything that is not a well-formed WireResponse. */
export function parseWireResponse(text: string): WireResponse {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null) throw new Error('answer is not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.exitCode !== 'number' || !Number.isInteger(o.exitCode) || o.exitCode < 0 || o.exitCode > 255) {
    throw new Error('answer has no valid exitCode');
  }
  if (typeof o.stdout !== 'string') throw new Error('answer has no stdout');
  if (o.stderr !== undefined && typeof o.stderr !== 'string') throw new Error('answer has an invalid stderr');
  return { exitCode: o.exitCode, stdout: o.stdout, ...(o.stderr ? { stderr: o.stderr } : {}) };
}

/** Decodes a request, rejecting anything that is not a well-formed WireRequest. */
export function parseWireRequest(text: string): WireRequest {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null) throw new Error('request is not an object');
  const o = v as Record<string, unknown>;
  if (typeof o.stdin !== 'string') throw new Error('request has no stdin');
  if (typeof o.env !== 'object' || o.env === null || Array.isArray(o.env))
    throw new Error('request has no env');
  const env: Record<string, string> = {};
  for (const [k, val] of Object.entries(o.env)) {
    if (typeof val !== 'string') throw new Error(`request env ${k} is not a string`);
    env[k] = val;
  }
  return { env, stdin: o.stdin };
}
