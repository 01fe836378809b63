// Binds tern's IPAM (ipam/) to one node and to the CNI handler's IpamPort.
import type {
  AllocationRecord,
  AssignRequest,
  AssignResult,
  AttachmentKey,
  GcResult,
  GcScope,
  PoolUsage,
} from '../../ipam/index.js';
import { ANNOTATIONS } from '../../ipam/index.js';
import { ExhaustedError, formatIp, parseIp, type IpAddr, type Labels } from '../../model/index.js';
import type { AttachmentRef, IpamAssignRequest, IpamPort } from './ports.js';

/** The part of ipam's `Ipam` the CNI side uses. */
export interface IpamService {
  assign(req: AssignRequest): Promise<AssignResult>;
  release(key: AttachmentKey): Promise<AllocationRecord[]>;
  allocationsOf(node: string): Promise<AllocationRecord[]>;
  gc(isValid: (alloc: AllocationRecord) => boolean, scope?: GcScope): Promise<GcResult>;
  usage(): Promise<PoolUsage[]>;
}

export interface NodeIpamOptions {
  node: string;
  /** The node's labels from the agent's own watch (saves IPAM a Node read); undefined: IPAM reads them. */
  nodeLabels?: () => Labels | undefined;
}

const keyOf = (a: AttachmentRef): AttachmentKey => ({ containerID: a.containerId, ifname: a.ifname });
const addressesOfRecords = (records: AllocationRecord[]): IpAddr[] => records.map((r) => parseIp(r.address));

export class NodeIpam implements IpamPort {
  constructor(
    private readonly ipam: IpamService,
    private readonly options: NodeIpamOptions,
  ) {}

  async assign(req: IpamAssignRequest): Promise<IpAddr[]> {
    const a = req.attachment;
    // Addresses asked for by the runtime (ips capability) are fixed addresses, like the annotation.
    const podAnnotations = req.requestedIps.length
      ? { ...req.podAnnotations, [ANNOTATIONS.ipAddrs]: JSON.stringify(req.requestedIps.map(formatIp)) }
      : req.podAnnotations;
    const labels = this.options.nodeLabels?.();
    const result = await this.ipam.assign({
      attachment: { namespace: a.namespace, pod: a.pod, containerID: a.containerId, ifname: a.ifname },
      node: this.options.node,
      ...(labels ? { nodeLabels: labels } : {}),
      podAnnotations,
      ...(req.podLabels ? { podLabels: req.podLabels } : {}),
      namespaceAnnotations: req.namespaceAnnotations,
      configPools: req.configPools,
      ...(req.families ? { families: req.families } : {}),
    });
    return result.addresses.map((x) => parseIp(x.address));
  }

  async release(attachment: AttachmentRef): Promise<IpAddr[]> {
    return addressesOfRecords(await this.ipam.release(keyOf(attachment)));
  }

  async addressesOf(attachment: AttachmentRef): Promise<IpAddr[]> {
    const records = await this.ipam.allocationsOf(this.options.node);
    return addressesOfRecords(
      records.filter((r) => r.containerID === attachment.containerId && r.ifname === attachment.ifname),
    );
  }

  async releaseUnless(keep: (a: { containerId: string; ifname: string }) => boolean): Promise<number> {
    const result = await this.ipam.gc(
      (r) => !r.containerID || !r.ifname || keep({ containerId: r.containerID, ifname: r.ifname }),
      { node: this.options.node },
    );
    return result.released.length;
  }

  async status(): Promise<void> {
    const usable = (await this.ipam.usage()).filter((p) => !p.disabled);
    if (!usable.length) throw new ExhaustedError('no enabled IP pool');
    if (!usable.some((p) => p.addresses.free > 0)) throw new ExhaustedError('every enabled IP pool is full');
  }
}
