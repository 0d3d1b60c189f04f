// Which interface a packet enters the cell by, and whether its source is routed back there: what
// the evaluator needs of the host for `-i` and `-m rpfilter`, modelled on silk's layout. Each
// container has its own host-side veth (`s-` and its IPv4 address as 12 digits), a host route to
// each of its addresses over it, and IPv6 link-local addresses on it; nothing else routes there.
import type { Packet } from '../ir/packet.js';
import type { Ruleset } from '../ir/ruleset.js';
import { blockContains, cidr, type Family } from '../model/address.js';
import type { AsgcConfig, CellPolicy, Container } from '../model/cell.js';
import { Evaluator, type EvaluatorOptions } from './evaluate.js';

const LINK_LOCAL = cidr(6, 0xfe80n << 112n, 10);

/** silk's host-side interface of a container: `s-` and its IPv4 address as four 3-digit octets. */
export function silkInterfaceName(ipv4: bigint): string {
  const octets = [24n, 16n, 8n, 0n].map((shift) => String((ipv4 >> shift) & 0xffn).padStart(3, '0'));
  return `s-${octets.join('')}`;
}

/** Whether an interface name matches an iptables pattern (a trailing `+` is a wildcard). */
export function interfaceMatchesPattern(name: string, pattern: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

export class CellLinks {
  private readonly byInterface = new Map<string, Container>();

  constructor(
    containers: readonly Container[],
    private readonly config: Pick<AsgcConfig, 'containerInterfaces' | 'hostInterfaces'>,
  ) {
    for (const container of containers) {
      const name = this.interfaceOf(container);
      if (name !== undefined) this.byInterface.set(name, container);
    }
  }

  /**
   * A container's host-side interface: silk's name where the configured patterns allow it (the
   * default), else one the first pattern matches; undefined without container interfaces.
   */
  interfaceOf(container: Container): string | undefined {
    const patterns = this.config.containerInterfaces;
    const silk = container.ipv4 === undefined ? undefined : silkInterfaceName(container.ipv4);
    if (silk !== undefined && patterns.some((pattern) => interfaceMatchesPattern(silk, pattern))) return silk;
    const first = patterns[0];
    if (first === undefined) return undefined;
    return first.endsWith('+') ? `${first.slice(0, -1)}${silk?.slice(2) ?? container.handle.slice(0, 8)}` : first;
  }

  /** The configured interface traffic out of the cell leaves by (the first host interface). */
  get hostInterface(): string | undefined {
    return this.config.hostInterfaces[0];
  }

  /** The interface traffic from outside the cell comes in by: the first host interface, else one no container pattern names. */
  get outsideInterface(): string {
    const configured = this.config.hostInterfaces.find((name) => !name.endsWith('+'));
    if (configured !== undefined) return configured;
    for (let index = 0; ; index++) {
      const name = `eth${index}`;
      if (!this.config.containerInterfaces.some((pattern) => interfaceMatchesPattern(name, pattern))) return name;
    }
  }

  /** The container behind an interface, if the name is one of theirs. */
  containerOn(name: string): Container | undefined {
    return this.byInterface.get(name);
  }

  /**
   * The strict reverse-path check of `-m rpfilter`: whether the source is routed back out of
   * the interface the packet came in on. Known for a container's interface (its own addresses,
   * IPv6 link-local and unspecified sources); from elsewhere, known false only for a local
   * container's address, otherwise it depends on routes asgc does not know.
   */
  readonly reversePath = (packet: Packet): boolean | undefined => {
    if (packet.inInterface === undefined) return undefined;
    const container = this.byInterface.get(packet.inInterface);
    if (container !== undefined) {
      if (packet.source === own(container, packet.family)) return true;
      return packet.family === 6 && (packet.source === 0n || blockContains(LINK_LOCAL, 6, packet.source));
    }
    if (this.config.containerInterfaces.some((pattern) => interfaceMatchesPattern(packet.inInterface as string, pattern)))
      return undefined;
    for (const other of this.byInterface.values()) if (own(other, packet.family) === packet.source) return false;
    return undefined;
  };
}

function own(container: Container, family: Family): bigint | undefined {
  return family === 4 ? container.ipv4 : container.ipv6;
}

/** An evaluator of one family's rules that knows the cell's links (for `-i` and `-m rpfilter`). */
export function cellEvaluator(
  ruleset: Ruleset,
  cell: Pick<CellPolicy, 'containers' | 'config'>,
  options: Omit<EvaluatorOptions, 'reversePath'> = {},
): Evaluator {
  return new Evaluator(ruleset, { ...options, reversePath: new CellLinks(cell.containers, cell.config).reversePath });
}
