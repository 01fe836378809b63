// The IPPools, kept current by list + watch so that the allocation path reads no pool from
// the datastore.
import type { Datastore } from '../datastore/types.js';
import { KindCache } from './kind-cache.js';
import { poolSet, type PoolSet } from './pools.js';

export class PoolCache extends KindCache<'IPPool', PoolSet> {
  constructor(datastore: Datastore) {
    super(datastore, 'IPPool', poolSet);
  }
}
