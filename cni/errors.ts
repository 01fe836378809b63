// A CNI error: what the plugin prints as {"code","msg","details"} with a non-zero exit.
import { CNI_CODE } from './wire.js';

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

export const invalidEnv = (msg: string, details?: string) => new CniError(CNI_CODE.invalidEnv, msg, details);
export const invalidConfig = (msg: string, details?: string) =>
  new CniError(CNI_CODE.invalidConfig, msg, details);
