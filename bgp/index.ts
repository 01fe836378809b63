// Public surface of tern's BGP library.
export { BgpSpeaker } from './speaker.js';
export type {
  SpeakerOptions,
  PeerOptions,
  OriginateAttributes,
  PeerStatus,
  BestPathChange,
  RibEntry,
} from './speaker.js';
export type { RouteView } from './view.js';
export type { Policy, PolicyRule, PrefixMatch } from './policy.js';
export type { SessionState } from './session.js';
export { BgpError, type ErrorAction } from './wire/errors.js';
