// Netlink help the npm package and Node cannot give (netlink_request.cc, a socket option).
import { call, checkFd, loadAddon } from './addon.js';

/**
 * NETLINK_NO_ENOBUFS on a netlink socket: an overrun of its receive queue is no longer reported as a
 * socket error (the kernel still counts the dropped messages in /proc/net/netlink).
 */
export function setNetlinkNoEnobufs(fd: number): void {
  checkFd(fd);
  const a = loadAddon();
  call(() => a.setNetlinkNoEnobufs(fd));
}

/**
 * Sends one rtnetlink request (a whole message asking for an ACK) from a libuv worker thread, on a
 * socket of its own in this process's netns, and resolves on the kernel's ACK. For requests the
 * kernel takes long over (deleting a veth waits out RCU grace periods inside sendmsg): on the JS
 * thread they would stall everything else the process does. A refusal rejects with an Error whose
 * `code` is the errno name and whose message carries the kernel's extended-ACK text, if any.
 */
export function netlinkRequest(message: Buffer): Promise<void> {
  const a = loadAddon();
  return new Promise((resolve, reject) => {
    a.netlinkRequest(message, (err) => (err ? reject(err) : resolve()));
  });
}
