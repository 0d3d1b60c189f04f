// What a cell runs and what asgc is configured to do there.
import type { AddressBlock } from './address.js';
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
    readonly tag: number;
    readonly protocol: 'tcp' | 'udp';
    readonly ports: { readonly start: number; readonly end: number };
  };
}

export interface DenyNetworks {
  readonly always: readonly AddressBlock[];
  readonly running: readonly AddressBlock[];
  readonly staging: readonly AddressBlock[];
}

export interface AsgcConfig {
  /** Every chain asgc owns starts with this. */
  readonly chainPrefix: string;
  readonly denyNetworks: DenyNetworks;
  /** Log every accepted new connection and every denied packet (CF iptables_asg_logging). */
  readonly asgLogging: boolean;
  readonly deniedLogsPerSec: number;
  readonly acceptedUdpLogsPerSec: number;
  /** When set, only traffic leaving through these interfaces is subject to ASGs (CF netout hooks). */
  readonly hostInterfaces: readonly string[];
}

export const DEFAULT_CONFIG: AsgcConfig = {
  chainPrefix: 'asgc-',
  denyNetworks: { always: [], running: [], staging: [] },
  asgLogging: false,
  deniedLogsPerSec: 1,
  acceptedUdpLogsPerSec: 100,
  hostInterfaces: [],
};

export interface CellPolicy {
  readonly securityGroups: readonly SecurityGroup[];
  readonly policies: readonly C2cPolicy[];
  readonly containers: readonly Container[];
  readonly config: AsgcConfig;
}
