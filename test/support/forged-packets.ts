// Forged packets from inside a pod's namespace (test/support/forge.py over AF_PACKET, as a tenant
// with CAP_NET_RAW would write them) and a sniffer on the receiving pod's interface that counts
// the ones that arrive.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const FORGE = fileURLToPath(new URL('./forge.py', import.meta.url));

export interface ForgedPacket {
  /** Sender: its namespace, interface and the MAC the frame is addressed to (the host end's). */
  readonly from: { readonly netns: string; readonly ifname: string; readonly gatewayMac: string };
  /** Receiver: namespace and interface the sniffer listens on. */
  readonly to: { readonly netns: string; readonly ifname: string };
  readonly src: string;
  readonly dst: string;
  readonly proto: 'udp' | 'tcp';
  readonly dport: number;
}

let nextPort = 20_000 + Math.floor(Math.random() * 20_000);

/** Sends three copies of the packet and returns how many reached `to` within `graceMs` of the last. */
export async function arrivals(p: ForgedPacket, graceMs = 300): Promise<number> {
  const token = `tern-forged-${randomBytes(6).toString('hex')}`;
  const sport = nextPort++;
  const sniffer = execa(
    'ip',
    [
      'netns',
      'exec',
      p.to.netns,
      'python3',
      FORGE,
      'sniff',
      p.to.ifname,
      String(graceMs),
      token,
      String(sport),
    ],
    { buffer: false, stdout: 'pipe' },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    sniffer.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    sniffer.catch(reject);
  });
  await execa('ip', [
    'netns',
    'exec',
    p.from.netns,
    'python3',
    FORGE,
    'send',
    p.from.ifname,
    p.from.gatewayMac,
    p.src,
    p.dst,
    p.proto,
    String(sport),
    String(p.dport),
    token,
  ]);
  sniffer.stdin.end();
  await sniffer;
  const count = Number(out.trim().split('\n').at(-1));
  if (!Number.isInteger(count)) throw new Error(`sniffer printed ${JSON.stringify(out)}`);
  return count;
}

/** The MAC address of a link in a namespace. */
export async function linkMac(netns: string, ifname: string): Promise<string> {
  const r = await execa('ip', ['-n', netns, '-j', 'link', 'show', ifname]);
  return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
}
