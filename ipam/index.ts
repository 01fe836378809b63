// IP address management: pools cut into node-affine blocks, CAS allocation, release, GC.
export { Ipam, type IpamOptions } from './ipam.js';
export { DEFAULT_RETRY, type RetryPolicy } from './block-store.js';
export { blockName, recordsOf } from './blocks.js';
export { allocationsOfNode, blocksOfNode, borrowedByNode, poolUsage } from './queries.js';
export { effectiveBlockSize } from './pools.js';
export * from './types.js';
