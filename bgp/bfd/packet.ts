// BFD Control packets (RFC 5880 §4.1): pure encode/decode. Decoding checks every rule of §6.8.6
// that concerns the packet alone (version, lengths, detect multiplier, multipoint, discriminator,
// P+F) and throws BfdPacketError naming the field; rules that need session state live in session.ts.

export const BFD_VERSION = 1;
/** Mandatory section length; the authentication section, when present, follows it. */
export const BFD_HEADER_LENGTH = 24;

export const BfdState = { AdminDown: 0, Down: 1, Init: 2, Up: 3 } as const;
export type BfdState = (typeof BfdState)[keyof typeof BfdState];
export const BFD_STATE_NAMES = ['AdminDown', 'Down', 'Init', 'Up'] as const;
export type BfdStateName = (typeof BFD_STATE_NAMES)[number];

/** Diagnostic codes (RFC 5880 §4.1). */
export const BfdDiagnostic = {
  None: 0,
  ControlDetectionTimeExpired: 1,
  EchoFunctionFailed: 2,
  NeighborSignaledSessionDown: 3,
  ForwardingPlaneReset: 4,
  PathDown: 5,
  ConcatenatedPathDown: 6,
  AdministrativelyDown: 7,
  ReverseConcatenatedPathDown: 8,
} as const;
export type BfdDiagnostic = (typeof BfdDiagnostic)[keyof typeof BfdDiagnostic];
const DIAGNOSTIC_NAMES = [
  'none',
  'control detection time expired',
  'echo function failed',
  'neighbor signaled session down',
  'forwarding plane reset',
  'path down',
  'concatenated path down',
  'administratively down',
  'reverse concatenated path down',
];
export const diagnosticName = (d: number): string => DIAGNOSTIC_NAMES[d] ?? `diagnostic ${d}`;

export interface BfdAuthentication {
  readonly type: number;
  /** The whole authentication section (type, length and the type-specific data). */
  readonly data: Buffer;
}

export interface BfdPacket {
  readonly diagnostic: number;
  readonly state: BfdState;
  readonly poll: boolean;
  readonly final: boolean;
  readonly controlPlaneIndependent: boolean;
  readonly demand: boolean;
  readonly detectMult: number;
  readonly myDiscriminator: number;
  readonly yourDiscriminator: number;
  /** Microseconds, as on the wire. */
  readonly desiredMinTxUs: number;
  readonly requiredMinRxUs: number;
  readonly requiredMinEchoRxUs: number;
  readonly authentication?: BfdAuthentication;
}

export class BfdPacketError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'BfdPacketError';
  }
}

const FLAG_POLL = 0x20;
const FLAG_FINAL = 0x10;
const FLAG_CPI = 0x08;
const FLAG_AUTH = 0x04;
const FLAG_DEMAND = 0x02;
const FLAG_MULTIPOINT = 0x01;

export function decodeBfdPacket(buf: Uint8Array): BfdPacket {
  if (buf.length < BFD_HEADER_LENGTH) {
    throw new BfdPacketError('length', `${buf.length} bytes received, at least ${BFD_HEADER_LENGTH} needed`);
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const version = b[0]! >> 5;
  if (version !== BFD_VERSION) throw new BfdPacketError('version', `${version}, expected ${BFD_VERSION}`);
  const flags = b[1]!;
  const auth = (flags & FLAG_AUTH) !== 0;
  const length = b[3]!;
  const minimum = auth ? BFD_HEADER_LENGTH + 2 : BFD_HEADER_LENGTH;
  if (length < minimum) {
    throw new BfdPacketError('length', `field says ${length}, at least ${minimum} needed`);
  }
  if (length > b.length) {
    throw new BfdPacketError('length', `field says ${length}, only ${b.length} bytes received`);
  }
  const detectMult = b[2]!;
  if (detectMult === 0) throw new BfdPacketError('detectMult', 'is zero');
  if (flags & FLAG_MULTIPOINT) throw new BfdPacketError('multipoint', 'M bit set');
  const poll = (flags & FLAG_POLL) !== 0;
  const final = (flags & FLAG_FINAL) !== 0;
  if (poll && final) throw new BfdPacketError('flags', 'Poll and Final both set');
  const myDiscriminator = b.readUInt32BE(4);
  if (myDiscriminator === 0) throw new BfdPacketError('myDiscriminator', 'is zero');
  let authentication: BfdAuthentication | undefined;
  if (auth) {
    const authLen = b[BFD_HEADER_LENGTH + 1]!;
    if (authLen < 2 || BFD_HEADER_LENGTH + authLen !== length) {
      throw new BfdPacketError(
        'authentication',
        `section length ${authLen} does not fill the packet length ${length}`,
      );
    }
    authentication = {
      type: b[BFD_HEADER_LENGTH]!,
      data: Buffer.from(b.subarray(BFD_HEADER_LENGTH, length)),
    };
  }
  return {
    diagnostic: b[0]! & 0x1f,
    state: (flags >> 6) as BfdState,
    poll,
    final,
    controlPlaneIndependent: (flags & FLAG_CPI) !== 0,
    demand: (flags & FLAG_DEMAND) !== 0,
    detectMult,
    myDiscriminator,
    yourDiscriminator: b.readUInt32BE(8),
    desiredMinTxUs: b.readUInt32BE(12),
    requiredMinRxUs: b.readUInt32BE(16),
    requiredMinEchoRxUs: b.readUInt32BE(20),
    ...(authentication ? { authentication } : {}),
  };
}

const u32 = (field: string, v: number, min = 0) => {
  if (!Number.isInteger(v) || v < min || v > 0xffffffff) {
    throw new BfdPacketError(field, `${v} is not an integer in ${min}..4294967295`);
  }
  return v;
};

/** Encodes a packet; refuses values the decoder (or RFC 5880) would reject. */
export function encodeBfdPacket(p: BfdPacket): Buffer {
  const authLen = p.authentication?.data.length ?? 0;
  if (p.authentication && (authLen < 2 || authLen > 255 - BFD_HEADER_LENGTH)) {
    throw new BfdPacketError('authentication', `section of ${authLen} bytes`);
  }
  if (!Number.isInteger(p.diagnostic) || p.diagnostic < 0 || p.diagnostic > 31) {
    throw new BfdPacketError('diagnostic', `${p.diagnostic} is not in 0..31`);
  }
  if (!Number.isInteger(p.detectMult) || p.detectMult < 1 || p.detectMult > 255) {
    throw new BfdPacketError('detectMult', `${p.detectMult} is not in 1..255`);
  }
  if (p.poll && p.final) throw new BfdPacketError('flags', 'Poll and Final both set');
  const b = Buffer.alloc(BFD_HEADER_LENGTH + authLen);
  b[0] = (BFD_VERSION << 5) | p.diagnostic;
  b[1] =
    (p.state << 6) |
    (p.poll ? FLAG_POLL : 0) |
    (p.final ? FLAG_FINAL : 0) |
    (p.controlPlaneIndependent ? FLAG_CPI : 0) |
    (p.authentication ? FLAG_AUTH : 0) |
    (p.demand ? FLAG_DEMAND : 0);
  b[2] = p.detectMult;
  b[3] = b.length;
  b.writeUInt32BE(u32('myDiscriminator', p.myDiscriminator, 1), 4);
  b.writeUInt32BE(u32('yourDiscriminator', p.yourDiscriminator), 8);
  b.writeUInt32BE(u32('desiredMinTxUs', p.desiredMinTxUs), 12);
  b.writeUInt32BE(u32('requiredMinRxUs', p.requiredMinRxUs), 16);
  b.writeUInt32BE(u32('requiredMinEchoRxUs', p.requiredMinEchoRxUs), 20);
  if (p.authentication) p.authentication.data.copy(b, BFD_HEADER_LENGTH);
  return b;
}
