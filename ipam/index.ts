// IP address management: pools cut into node-affine blocks, CAS allocation, release, GC.
export { DEFAULT_STICKY_HOLD_SECONDS, Ipam, type IpamOptions } from './ipam.js';
export { DEFAULT_RETRY, type RetryPolicy } from './block-store.js';
export { blockName, recordsOf } from './blocks.js';
export { allocationsOfNode, bindingsOf, blocksOfNode, borrowedByNode, poolUsage } from './queries.js';
export { effectiveBlockSize } from './pools.js';
export * from './types.js';
