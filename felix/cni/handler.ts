// ADD / DEL / CHECK / GC / STATUS against injected IPAM, dataplane and agent hooks. Never throws:
// every outcome becomes the stdout and exit code the `tern` executable will print.
import { statSync } from 'node:fs';
import {
  AlreadyExistsError,
  ConflictError,
  ExhaustedError,
  UnavailableError,
  ValidationError,
  formatIp,
  parseIp,
  type IpAddr,
} from '../../model/index.js';
import { HOST_VETH_PREFIX, POD_GATEWAY_IPV4, hostVethName } from '../../model/routing.js';
import { DataplaneError } from './dataplane/veth.js';
import { CniError, invalidConfig } from '../../cni/errors.js';
import { AttachmentLocks } from './locks.js';
import type {
  AgentHooks,
  AttachmentRef,
  Dataplane,
  IpamPort,
  PodEndpoint,
  PodInfo,
  VethOwner,
  VethPlan,
  VethSpec,
} from './ports.js';
import {
  parseRequest,
  peekVersion,
  type AttachmentRequest,
  type GcRequest,
  type StatusRequest,
} from '../../cni/request.js';
import { encodeResult, mergeResults, parsePrevResult, type CniResult } from '../../cni/result.js';
import { CNI_CODE, errorJson, type WireRequest, type WireResponse } from '../../cni/wire.js';

export interface HandlerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CniHandlerOptions {
  ipam: IpamPort;
  dataplane: Dataplane;
  hooks?: AgentHooks;
  logger?: HandlerLogger;
  /** The agent's own netns, refused as a pod netns (code 8) unless CNI_NETNS_OVERRIDE. */
  ownNetnsPath?: string;
}

const silent: HandlerLogger = { info: () => undefined, warn: () => undefined };

export class CniHandler {
  private readonly ipam: IpamPort;
  private readonly dataplane: Dataplane;
  private readonly hooks: AgentHooks;
  private readonly log: HandlerLogger;
  private readonly ownNetnsPath: string;
  private readonly locks = new AttachmentLocks();

  constructor(options: CniHandlerOptions) {
    this.ipam = options.ipam;
    this.dataplane = options.dataplane;
    this.hooks = options.hooks ?? {};
    this.log = options.logger ?? silent;
    this.ownNetnsPath = options.ownNetnsPath ?? '/proc/self/ns/net';
  }

  /** One invocation of the executable, in; what it prints and its exit code, out. */
  async handle(request: WireRequest): Promise<WireResponse> {
    const started = performance.now();
    const command = request.env.CNI_COMMAND ?? '';
    try {
      const req = parseRequest(request.env, request.stdin);
      let stdout = '';
      switch (req.command) {
        case 'ADD':
          stdout = encodeResult(await this.add(req), req.conf.cniVersion);
          break;
        case 'DEL':
          await this.del(req);
          break;
        case 'CHECK':
          await this.check(req);
          break;
        case 'GC':
          await this.gc(req);
          break;
        case 'STATUS':
          await this.status(req);
          break;
      }
      this.log.info(
        { command, containerId: request.env.CNI_CONTAINERID, ms: performance.now() - started },
        'cni ok',
      );
      return { exitCode: 0, stdout };
    } catch (e) {
      const err = toCniError(e);
      this.log.warn(
        {
          command,
          containerId: request.env.CNI_CONTAINERID,
          code: err.code,
          msg: err.message,
          details: err.details,
        },
        'cni failed',
      );
      return {
        exitCode: 1,
        stdout: errorJson(peekVersion(request.stdin), err.code, err.message, err.details),
      };
    }
  }

  async add(req: AttachmentRequest): Promise<CniResult> {
    const { ref, owner, hostVeth } = identify(req);
    const prev = req.conf.prevResult === undefined ? undefined : parsePrevResult(req.conf.prevResult);
    const requestedIps = (req.conf.requestedIps ?? []).map((ip) => parseIpOrThrow(ip));
    await this.ensureUsableNetns(req);
    return this.locks.withKey(hostVeth, async () => {
      const info = await this.podInfo(req);
      await this.dataplane.removeStale(hostVeth);
      // IPAM runs while the dataplane creates the pair; setUp waits for the addresses only to
      // configure them. The no-op catch keeps a refusal from counting as unhandled meanwhile.
      const assigned = this.assign({
        attachment: ref,
        podAnnotations: info.annotations,
        ...(Object.keys(info.labels).length ? { podLabels: info.labels } : {}),
        namespaceAnnotations: info.namespaceAnnotations,
        requestedIps,
        configPools: {
          ...(req.conf.ipam.ipv4Pools ? { ipv4: req.conf.ipam.ipv4Pools } : {}),
          ...(req.conf.ipam.ipv6Pools ? { ipv6: req.conf.ipam.ipv6Pools } : {}),
        },
        ...(req.conf.ipam.families ? { families: req.conf.ipam.families } : {}),
      }).then((ips) => {
        if (!ips.length) throw new ExhaustedError('IPAM assigned no address');
        return ips;
      });
      assigned.catch(() => undefined);
      let ips: IpAddr[] = [];
      let endpoint: PodEndpoint | undefined;
      try {
        const mtu = req.conf.mtu ?? (await this.dataplane.detectMtu());
        const defaultRoute = wantsDefaultRoute(req);
        const plan: VethPlan = { owner, hostVeth, netns: req.netns, ifname: ref.ifname, mtu, defaultRoute };
        const veth = await this.dataplane.setUp(plan, assigned);
        ips = await assigned;
        endpoint = {
          attachment: ref,
          hostVeth,
          ips,
          containerMac: veth.containerMac,
          netns: req.netns,
          mtu,
          labels: info.labels,
          annotations: info.annotations,
        };
        await this.hooks.onAttached?.(endpoint);
        await this.hooks.beforeReturnAdd?.(endpoint);
        const ours: CniResult = {
          interfaces: [
            { name: hostVeth, mac: veth.hostMac, mtu },
            { name: ref.ifname, mac: veth.containerMac, mtu, sandbox: req.netns },
          ],
          ips: ips.map((ip) => ({
            address: `${formatIp(ip)}/${ip.family === 4 ? 32 : 128}`,
            gateway: ip.family === 4 ? POD_GATEWAY_IPV4 : veth.ipv6Gateway,
            interface: 1,
          })),
          routes: defaultRoute
            ? [
                ...(ips.some((ip) => ip.family === 4) ? [{ dst: '0.0.0.0/0', gw: POD_GATEWAY_IPV4 }] : []),
                ...(ips.some((ip) => ip.family === 6) ? [{ dst: '::/0', gw: veth.ipv6Gateway }] : []),
              ]
            : [],
          ...(req.conf.dns ? { dns: req.conf.dns } : {}),
        };
        return mergeResults(prev, ours);
      } catch (e) {
        // The pair may have failed while IPAM was still writing: release only once it is done.
        ips = await assigned.catch(() => ips);
        await this.rollback(ref, owner, hostVeth, ips, endpoint !== undefined);
        throw e;
      }
    });
  }

  async del(req: AttachmentRequest): Promise<void> {
    const { ref, owner, hostVeth } = identify(req);
    await this.ensureUsableNetns(req, true);
    // The cached ADD result names the host veth: a hint for a DEL whose K8S_* args differ from ADD's.
    const hinted = hostVethHint(req.conf.prevResult);
    const veths = hinted && hinted !== hostVeth ? [hostVeth, hinted] : [hostVeth];
    await this.locks.withKey(hostVeth, async () => {
      const errors: unknown[] = [];
      for (const name of veths) {
        try {
          if (!(await this.dataplane.tearDown(name, owner))) {
            this.log.info(
              { hostVeth: name, containerId: ref.containerId },
              'host veth belongs to another attachment; kept',
            );
          }
        } catch (e) {
          errors.push(e);
        }
      }
      let freed: IpAddr[] = [];
      try {
        freed = await this.ipam.release(ref);
      } catch (e) {
        errors.push(e);
      }
      await this.notifyDetached(owner, hostVeth, freed);
      if (errors.length) throw combine(errors, `DEL of ${ref.containerId}/${ref.ifname} incomplete`);
    });
  }

  async check(req: AttachmentRequest): Promise<void> {
    const { ref, owner, hostVeth } = identify(req);
    if (req.conf.prevResult === undefined) throw invalidConfig('CHECK requires a prevResult');
    const prev = parsePrevResult(req.conf.prevResult);
    const idx = prev.interfaces.findIndex((i) => i.name === ref.ifname && i.sandbox === req.netns);
    const problems: string[] = [];
    if (idx < 0) problems.push(`prevResult has no interface ${ref.ifname} in sandbox ${req.netns}`);
    const held = await this.ipam.addressesOf(ref);
    if (!held.length) problems.push(`IPAM holds no address for ${ref.containerId}/${ref.ifname}`);
    const heldText = new Set(held.map(formatIp));
    const prevIps = prev.ips
      .filter((ip) => ip.interface === idx)
      .map((ip) => ip.address.replace(/\/\d+$/, ''));
    for (const ip of prevIps)
      if (!heldText.has(ip)) problems.push(`prevResult address ${ip} is not held in IPAM`);
    const iface = idx >= 0 ? prev.interfaces[idx] : undefined;
    const mtu = iface?.mtu ?? req.conf.mtu ?? (await this.dataplane.detectMtu());
    const spec: VethSpec = {
      owner,
      hostVeth,
      netns: req.netns,
      ifname: ref.ifname,
      mtu,
      ips: held,
      defaultRoute: wantsDefaultRoute(req),
    };
    problems.push(...(await this.dataplane.check(spec, iface?.mac)));
    if (problems.length)
      throw new CniError(CNI_CODE.checkFailed, 'attachment check failed', problems.join('; '));
  }

  async gc(req: GcRequest): Promise<void> {
    const key = (a: { containerId: string; ifname: string }) => `${a.containerId}\0${a.ifname}`;
    const valid = new Set(req.valid.map(key));
    await this.locks.withAll(async () => {
      const errors: unknown[] = [];
      const keep = new Set(valid);
      for (const veth of await this.dataplane.list()) {
        const o = veth.owner;
        if (o && o.network !== req.conf.name) {
          keep.add(key(o)); // another tern network's attachment: that network's GC decides
          continue;
        }
        if (o && valid.has(key(o))) continue;
        try {
          if (o) {
            await this.dataplane.tearDown(veth.name, o);
            await this.notifyDetached(o, veth.name, []);
          } else {
            await this.dataplane.removeStale(veth.name);
          }
        } catch (e) {
          errors.push(e);
        }
      }
      try {
        const freed = await this.ipam.releaseUnless((a) => keep.has(key(a)));
        if (freed) this.log.info({ freed }, 'GC released stale allocations');
      } catch (e) {
        errors.push(e);
      }
      if (errors.length) throw combine(errors, 'GC incomplete');
    });
  }

  async status(_req: StatusRequest): Promise<void> {
    try {
      await this.ipam.status();
    } catch (e) {
      throw new CniError(
        CNI_CODE.notReady,
        'tern cannot serve ADD now',
        e instanceof Error ? e.message : String(e),
      );
    }
  }

  /** IPAM assign; a failure releases whatever a partial assignment may have taken. */
  private async assign(req: Parameters<IpamPort['assign']>[0]): Promise<IpAddr[]> {
    try {
      return await this.ipam.assign(req);
    } catch (e) {
      await this.ipam.release(req.attachment).catch(() => undefined);
      throw e;
    }
  }

  private async rollback(
    ref: AttachmentRef,
    owner: VethOwner,
    hostVeth: string,
    ips: IpAddr[],
    attached: boolean,
  ) {
    await this.dataplane.tearDown(hostVeth, owner).catch((e: unknown) => {
      this.log.warn({ hostVeth, err: String(e) }, 'rollback: removing host veth failed');
    });
    await this.ipam.release(ref).catch((e: unknown) => {
      this.log.warn({ containerId: ref.containerId, err: String(e) }, 'rollback: IPAM release failed');
    });
    if (attached) await this.notifyDetached(owner, hostVeth, ips);
  }

  private async notifyDetached(owner: VethOwner, hostVeth: string, ips: IpAddr[]) {
    try {
      await this.hooks.onDetached?.({ owner, hostVeth, ips });
    } catch (e) {
      this.log.warn({ hostVeth, err: String(e) }, 'onDetached hook failed');
    }
  }

  private async podInfo(
    req: AttachmentRequest,
  ): Promise<PodInfo & { namespaceAnnotations: Record<string, string> }> {
    const { namespace, name, kubernetes } = req.pod;
    try {
      const [pod, ns] = await Promise.all([
        // Labels come only from the agent; annotations from the runtime win when it sent them.
        kubernetes ? this.hooks.lookupPod?.(namespace, name) : undefined,
        kubernetes ? this.hooks.lookupNamespace?.(namespace) : undefined,
      ]);
      return {
        labels: pod?.labels ?? {},
        annotations: req.conf.podAnnotations ?? pod?.annotations ?? {},
        namespaceAnnotations: ns?.annotations ?? {},
      };
    } catch (e) {
      throw new CniError(
        CNI_CODE.tryAgainLater,
        `cannot read pod ${namespace}/${name} or its namespace`,
        e instanceof Error ? e.message : String(e),
      );
    }
  }

  /** ADD needs an existing netns that is not the agent's own; DEL only refuses the agent's own. */
  private async ensureUsableNetns(req: AttachmentRequest, forDel = false): Promise<void> {
    if (forDel && !req.netns) return;
    let target;
    try {
      // Sync: a stat of a netns file is microseconds; fs/promises would pay a threadpool trip.
      target = statSync(req.netns);
    } catch (e) {
      if (forDel) return;
      throw new CniError(CNI_CODE.invalidNetns, `netns ${req.netns} does not exist`, (e as Error).message);
    }
    if (req.netnsOverride) return;
    const own = statSync(this.ownNetnsPath, { throwIfNoEntry: false });
    if (own && own.ino === target.ino && own.dev === target.dev) {
      throw new CniError(
        CNI_CODE.invalidNetns,
        `netns ${req.netns} is the plugin's own network namespace`,
        'set CNI_NETNS_OVERRIDE=1 to allow it',
      );
    }
  }
}

function identify(req: AttachmentRequest): { ref: AttachmentRef; owner: VethOwner; hostVeth: string } {
  const ref: AttachmentRef = {
    network: req.conf.name,
    containerId: req.attachment.containerId,
    ifname: req.attachment.ifname,
    namespace: req.pod.namespace,
    pod: req.pod.name,
  };
  const owner: VethOwner = { network: ref.network, containerId: ref.containerId, ifname: ref.ifname };
  return { ref, owner, hostVeth: hostVethName(ref.namespace, ref.pod, ref.ifname) };
}

/** The primary attachment (eth0) carries the pod's default routes unless the config says otherwise. */
const wantsDefaultRoute = (req: AttachmentRequest): boolean =>
  req.conf.defaultRoute ?? req.attachment.ifname === 'eth0';

function hostVethHint(prevResult: unknown): string | undefined {
  if (prevResult === undefined) return undefined;
  try {
    return parsePrevResult(prevResult).interfaces.find(
      (i) => !i.sandbox && i.name.startsWith(HOST_VETH_PREFIX) && i.name.length === 15,
    )?.name;
  } catch {
    return undefined;
  }
}

function parseIpOrThrow(text: string): IpAddr {
  try {
    return parseIp(text, 'requested address');
  } catch (e) {
    throw invalidConfig((e as Error).message);
  }
}

function combine(errors: unknown[], what: string): CniError {
  const first = toCniError(errors[0]);
  return new CniError(first.code, what, errors.map((e) => toCniError(e).message + detailsOf(e)).join('; '));
}

const detailsOf = (e: unknown) => (e instanceof CniError && e.details ? `: ${e.details}` : '');

/** Maps every failure class onto a CNI code; the message keeps the cause's own words. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof ValidationError) return new CniError(CNI_CODE.invalidConfig, msg);
  if (e instanceof ExhaustedError) return new CniError(CNI_CODE.ipamExhausted, msg);
  if (e instanceof ConflictError || e instanceof AlreadyExistsError)
    return new CniError(CNI_CODE.addressUnavailable, msg);
  if (e instanceof UnavailableError) return new CniError(CNI_CODE.tryAgainLater, `try again later: ${msg}`);
  if (e instanceof DataplaneError) return new CniError(CNI_CODE.dataplane, msg);
  return new CniError(CNI_CODE.internal, msg);
}
