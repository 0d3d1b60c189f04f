// Application Security Group rules with Cloud Controller's semantics, validated from the
// loose shape the policy server stores (every key present, zero values meaning "absent").
import type { AddressBlock, Family } from './address.js';
import { parseDestinations } from './destinations.js';
import { type PortRange, parsePorts } from './ports.js';

export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'all'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** ICMP type/code; undefined means "any" (CF writes -1, or 255). */
export interface IcmpSelector {
  readonly type?: number;
  readonly code?: number;
}

/** Where a compiled rule came from, for comments, errors and `asgc check`. */
export interface AsgRuleOrigin {
  readonly groupGuid: string;
  readonly groupName: string;
  readonly ruleIndex: number;
}

export interface AsgRule {
  readonly protocol: Protocol;
  readonly destinations: readonly AddressBlock[];
  /** tcp/udp only, never empty there. */
  readonly ports: readonly PortRange[];
  /** icmp/icmpv6 only. */
  readonly icmp: IcmpSelector;
  readonly log: boolean;
  readonly description: string;
  readonly origin: AsgRuleOrigin;
}

export interface SecurityGroup {
  readonly guid: string;
  readonly name: string;
  /**
   * The rules that validate. The agent's ingest keeps only a group's text between cycles and
   * reads the rules from it again when a compile needs them (see ingest/security-groups).
   */
  readonly rules: readonly AsgRule[];
  /** Some rule does not validate: whoever uses the group is held on its last good rules. */
  readonly broken: boolean;
  /** Changes whenever the rules do: what caches of compiled chains compare (===), with the name. */
  readonly revision: string;
  /** Per family, known without reading the rules: whether any rule has a destination there, and any such rule logs. */
  readonly shares: Readonly<Record<Family, GroupShare>>;
  readonly stagingDefault: boolean;
  readonly runningDefault: boolean;
  readonly stagingSpaceGuids: readonly string[];
  readonly runningSpaceGuids: readonly string[];
}

export interface GroupShare {
  readonly rules: boolean;
  readonly logs: boolean;
}

/** What a group's rules hold for each family. */
export function groupShares(rules: readonly AsgRule[]): Record<Family, GroupShare> {
  const share = (family: Family): GroupShare => {
    const own = rules.filter((rule) => rule.destinations.some((block) => block.family === family));
    return { rules: own.length > 0, logs: own.some((rule) => rule.log) };
  };
  return { 4: share(4), 6: share(6) };
}

/** A rule as the schema admits it: CC form (keys absent) or policy-server form (zero values). */
export interface RawAsgRule {
  readonly protocol: Protocol;
  readonly destination: string;
  readonly ports?: string | null;
  readonly type?: number | null;
  readonly code?: number | null;
  readonly description?: string | null;
  readonly log?: boolean | null;
}

export interface RuleFieldError {
  /** The rule's key the error is about, if any. */
  readonly field?: keyof RawAsgRule;
  readonly message: string;
}

const ICMP_FAMILY: Partial<Record<Protocol, Family>> = { icmp: 4, icmpv6: 6 };

function icmpValue(value: number): number | undefined {
  return value === -1 || value === 255 ? undefined : value;
}

/** The selector of every rule that is not ICMP (one object, shared). */
const ANY_ICMP: IcmpSelector = Object.freeze({});

export function validateAsgRule(raw: RawAsgRule, origin: AsgRuleOrigin): { rule?: AsgRule; errors: RuleFieldError[] } {
  const errors: RuleFieldError[] = [];
  const { protocol } = raw;
  const ports = raw.ports ?? '';
  const isTransport = protocol === 'tcp' || protocol === 'udp';
  const isIcmp = protocol === 'icmp' || protocol === 'icmpv6';

  const destinations = parseDestinations(raw.destination);
  for (const message of destinations.errors) errors.push({ field: 'destination', message });
  const icmpFamily = ICMP_FAMILY[protocol];
  if (icmpFamily !== undefined) {
    const foreign = destinations.blocks.find((block) => block.family !== icmpFamily);
    if (foreign) {
      errors.push({
        field: 'destination',
        message: `for protocol "${protocol}" you cannot use IPv${foreign.family} addresses`,
      });
    }
  }

  let portRanges: readonly PortRange[] = [];
  if (isTransport) {
    if (ports === '') {
      errors.push({ field: 'ports', message: 'ports are required for protocols of type TCP and UDP' });
    } else {
      const parsed = parsePorts(ports);
      if (parsed.ok) portRanges = parsed.value;
      else errors.push({ field: 'ports', message: parsed.error });
    }
  } else if (ports !== '') {
    errors.push({ field: 'ports', message: `ports are not allowed for protocols of type ${protocol}` });
  }

  let icmp: IcmpSelector = ANY_ICMP;
  if (isIcmp) {
    if (raw.type === undefined || raw.type === null) {
      errors.push({ field: 'type', message: 'type is required for protocols of type ICMP' });
    }
    if (raw.code === undefined || raw.code === null) {
      errors.push({ field: 'code', message: 'code is required for protocols of type ICMP' });
    }
    const type = icmpValue(raw.type ?? -1);
    // "Any type" cannot be narrowed by a code in iptables: the code is meaningless then.
    const code = type === undefined ? undefined : icmpValue(raw.code ?? -1);
    icmp = { ...(type !== undefined && { type }), ...(code !== undefined && { code }) };
  } else {
    // The policy server writes type 0 and code 0 on every rule; anything else is a mistake.
    for (const field of ['type', 'code'] as const) {
      const value = raw[field];
      if (value !== undefined && value !== null && value !== 0) {
        errors.push({ field, message: `${field} is not allowed for protocols of type ${protocol}` });
      }
    }
  }

  if (errors.length > 0) return { errors };
  return {
    rule: {
      protocol,
      destinations: destinations.blocks,
      ports: portRanges,
      icmp,
      log: raw.log ?? false,
      description: raw.description ?? '',
      origin,
    },
    errors,
  };
}

/** One family's share of a rule: only the destinations of that family. */
export interface FamilyAsgRule {
  readonly family: Family;
  readonly rule: AsgRule;
  readonly destinations: readonly AddressBlock[];
}

/**
 * Every destination element goes to its own family; a rule with no destination in a
 * family contributes nothing there. icmp/icmpv6 were checked to name one family only.
 */
export function familyShare(rule: AsgRule, family: Family): FamilyAsgRule | undefined {
  const destinations = rule.destinations.filter((block) => block.family === family);
  return destinations.length === 0 ? undefined : { family, rule, destinations };
}
