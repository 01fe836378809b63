// One-shot reads of the kernel's links, routes and addresses over tern's own codec, for callers
// that need a snapshot rather than a mirror kept by notifications (the node's address at start).
import { RTM, decodeAddress, decodeLink, decodeRoute, type Family } from './codec.js';
import type { KernelAddress, KernelLink, KernelRoute } from './codec.js';
import { RtnlRequestSocket } from './socket.js';

export type { KernelAddress };

export interface KernelSnapshot {
  links: KernelLink[];
  routes: KernelRoute[];
  addresses: KernelAddress[];
}

/** Dumps links, and routes and addresses of `family`, on a socket of its own (closed after). */
export async function readKernel(family: Family): Promise<KernelSnapshot> {
  const sock = new RtnlRequestSocket();
  try {
    const links = await sock.dump(RTM.GETLINK, 0, decodeLink);
    const routes = await sock.dump(RTM.GETROUTE, family, decodeRoute);
    const addresses = await sock.dump(RTM.GETADDR, family, decodeAddress);
    return { links, routes, addresses };
  } finally {
    sock.close();
  }
}
