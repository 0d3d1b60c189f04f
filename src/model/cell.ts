// What a cell runs and what asgc is configured to do there.
import type { AddressBlock, CidrBlock, Family, ParsedAddress } from './address.js';
import type { SecurityGroup } from './asg.js';

export interface Container {
  readonly handle: string;
  readonly ipv4?: bigint;
  readonly ipv6?: bigint;
  /** The app (policy group) GUID. */
  readonly appGuid?: string;
  readonly spaceGuid?: string;
  /** container_workload as CF sets it: app, task, staging, or something else. */
  readonly workload?: string;
  /** The container's own open ports (metadata "ports"). */
  readonly ports: readonly number[];
  /** Where the app's logs go (metadata "log_config"): told when its security group rules change, as VPA tells it. */
  readonly logConfig?: AppLogConfig;
}

/** Diego's log_config of a container: the app's log stream. */
export interface AppLogConfig {
  readonly guid: string;
  readonly index: number;
  readonly sourceName: string;
  readonly tags: Readonly<Record<string, string>>;
}

export type Lifecycle = 'running' | 'staging';

/** app and task containers run; staging containers stage; anything else gets no ASGs (as CF). */
export function lifecycleOf(container: Container): Lifecycle | undefined {
  switch (container.workload) {
    case 'app':
    case 'task':
      return 'running';
    case 'staging':
      return 'staging';
    default:
      return undefined;
  }
}

export interface C2cPolicy {
  readonly source: { readonly appGuid: string; readonly tag: number };
  readonly destination: {
    readonly appGuid: string;
    /** Not used by asgc (nor by VPA): policies without it are accepted. */
    readonly tag?: number;
    readonly protocol: 'tcp' | 'udp';
    readonly ports: { readonly start: number; readonly end: number };
  };
}

export interface DenyNetworks {
  readonly always: readonly AddressBlock[];
  readonly running: readonly AddressBlock[];
  readonly staging: readonly AddressBlock[];
}

/** A service on the cell itself that containers may reach (CF host_tcp_services / host_udp_services). */
export interface HostService {
  readonly address: ParsedAddress;
  readonly port: number;
}

/** CF's outbound connection limit: new TCP connections per container and destination. */
export interface OutboundLimit {
  readonly perSecond: number;
  readonly burst: number;
  readonly expirySeconds: number;
  /** Log connections over the limit (CF: iptables_logging); on in a dry run. */
  readonly logging: boolean;
  /** Only log connections over the limit, never reject them (CF's dry_run). */
  readonly dryRun: boolean;
}

export interface AsgcConfig {
  /** Every chain asgc owns starts with this. */
  readonly chainPrefix: string;
  readonly denyNetworks: DenyNetworks;
  /** Log every accepted new connection and every denied packet (CF iptables_asg_logging). */
  readonly asgLogging: boolean;
  /** Log accepted c2c connections (IPv4) and traffic to containers that nothing allowed. */
  readonly c2cLogging: boolean;
  readonly deniedLogsPerSec: number;
  readonly acceptedUdpLogsPerSec: number;
  /** When set, only traffic leaving through these interfaces is subject to ASGs (CF netout hooks). */
  readonly hostInterfaces: readonly string[];
  /** The IPv4 overlay (CF silk): marked (c2c) traffic to it passes the source's egress; its destination decides. */
  readonly overlayNetwork?: CidrBlock;
  /** Resolvers containers may query on port 53 (tcp and udp), either family. */
  readonly dnsServers: readonly ParsedAddress[];
  readonly hostTcpServices: readonly HostService[];
  readonly hostUdpServices: readonly HostService[];
  /** Addresses of the ingress routers, which may reach containers on their own ports. */
  readonly ingressRouters: readonly CidrBlock[];
  /** The mark CF's ingress path puts on router traffic to containers (IPv4). */
  readonly ingressTag?: number;
  /** Where the ingress tag is accepted: the container's own ports (asgc), or everything (CF's CNI). */
  readonly ingressTagPorts: 'own' | 'all';
  /** CF's disable_container_network_policy: traffic between containers is not policed at all. */
  readonly disableContainerNetworkPolicy: boolean;
  readonly outboundConnections?: OutboundLimit;
  /**
   * An ASG rule with at least this many destinations (after merging) of one family matches
   * them with one ipset (hash:net) instead of a rule per destination. Off when absent.
   */
  readonly ipsetMinDestinations?: number;
  /**
   * The cell's interfaces that lead to containers (iptables syntax, `+` a trailing wildcard):
   * everything arriving on one comes from a container, whatever its source address. Default
   * silk's host-side veths, `s-<the container's IPv4 as 12 digits>`.
   */
  readonly containerInterfaces: readonly string[];
  /** The address space of the cell's containers (silk's cell subnet, the delegated IPv6 prefix). */
  readonly containerPrefixes: readonly CidrBlock[];
  /**
   * Per family: drop a packet from a container whose source is not routed back to it, and one
   * from anywhere else that claims a container's address (the raw table). On for IPv6, which has
   * nothing else; off for IPv4, where silk turns the kernel's rp_filter on for every container.
   */
  readonly antiSpoofing: Readonly<Record<Family, boolean>>;
}

export const DEFAULT_CONFIG: AsgcConfig = {
  chainPrefix: 'asgc-',
  denyNetworks: { always: [], running: [], staging: [] },
  asgLogging: false,
  c2cLogging: false,
  deniedLogsPerSec: 1,
  acceptedUdpLogsPerSec: 100,
  hostInterfaces: [],
  dnsServers: [],
  hostTcpServices: [],
  hostUdpServices: [],
  ingressRouters: [],
  ingressTagPorts: 'own',
  disableContainerNetworkPolicy: false,
  containerInterfaces: ['s-+'],
  containerPrefixes: [],
  antiSpoofing: { 4: false, 6: true },
};

export interface CellPolicy {
  readonly securityGroups: readonly SecurityGroup[];
  readonly policies: readonly C2cPolicy[];
  readonly containers: readonly Container[];
  /** IPv6 addresses of each app's containers across the foundation (app GUID -> addresses). */
  readonly endpoints: ReadonlyMap<string, readonly bigint[]>;
  readonly config: AsgcConfig;
}
