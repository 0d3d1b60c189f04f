// Fewer rules, the same verdict for every packet. Within a chain:
//  - a rule that an earlier rule with a final target (ACCEPT, DROP, REJECT, RETURN, goto)
//    entirely covers can never match, and goes;
//  - rules that differ only in their destination (or only in their source) and sit in one
//    run of rules with the same final target are one rule over the union of their addresses,
//    written as the fewest CIDRs or ranges (a run's rules all end a packet's walk the same
//    way, so which of them matches first does not change the verdict);
//  - such rules that differ only in their TCP/UDP destination port become multiport rules of
//    at most 15 slots (a range takes two).
// Nothing is merged across different comments: a merged rule still names one ASG rule.
import { renderTarget } from '../extensions/targets.js';
import { multiportSlots, MULTIPORT_SLOTS } from '../extensions/multiport.js';
import type { Match, MultiportMatch, TcpUdpMatch } from '../ir/matches.js';
import type { AddressMatch, ChainRule, Rule } from '../ir/ruleset.js';
import type { Target } from '../ir/targets.js';
import { ADDRESS_BITS, type AddressBlock, blockFirst, blockLast, cidr, type Family, hostMask, range } from '../model/address.js';
import { renderMatch } from '../extensions/registry.js';

type Field = 'source' | 'destination';

interface Interval {
  readonly start: bigint;
  readonly end: bigint;
}

interface PortSpan {
  readonly start: number;
  readonly end: number;
}

/** A target that ends the packet's walk of this chain, whatever follows. */
function isFinal(target: Target | undefined): boolean {
  return target !== undefined && (target.kind === 'verdict' || target.kind === 'REJECT' || target.kind === 'goto');
}

/** A rule after which a packet may differ (its mark) or come back changed: shadowing stops there. */
function isBarrier(rule: ChainRule): boolean {
  return rule.kind === 'opaque' || rule.target?.kind === 'jump' || rule.target?.kind === 'MARK';
}

// ---- address sets ------------------------------------------------------------------------

function rangeOf(block: AddressBlock): Interval {
  // A single address (most rules' destination) needs no arithmetic.
  if (block.kind === 'cidr' && block.prefixLength === ADDRESS_BITS[block.family])
    return { start: block.address, end: block.address };
  return { start: blockFirst(block), end: blockLast(block) };
}

function iprangeField(match: Match, field: Field) {
  return match.kind === 'iprange' ? match[field] : undefined;
}

/**
 * The addresses a rule matches in one field: 'any', one interval, or undefined when that is
 * not a plain set (negated, or both -s/-d and an iprange of the same field).
 */
function addressSet(rule: Rule, field: Field): Interval | 'any' | undefined {
  const plain = rule[field];
  // Most rules have no iprange at all: no arrays to build for them (this runs for every rule).
  if (!rule.matches.some((match) => match.kind === 'iprange'))
    return plain === undefined ? 'any' : plain.negated ? undefined : rangeOf(plain.block);
  const other = field === 'source' ? 'destination' : 'source';
  const ranged = rule.matches.filter((match) => iprangeField(match, field) !== undefined);
  if (ranged.length > 1 || (plain !== undefined && ranged.length > 0)) return undefined;
  // An iprange over both fields is left whole.
  if (ranged.some((match) => iprangeField(match, other) !== undefined)) return undefined;
  const condition = plain ?? (ranged[0] && iprangeField(ranged[0], field));
  if (condition === undefined) return 'any';
  if (condition.negated) return undefined;
  return rangeOf(condition.block);
}

/** The rule without its address condition in `field` (only called where addressSet found a plain set). */
function withoutAddress(rule: Rule, field: Field): Rule {
  return { ...rule, [field]: undefined, matches: rule.matches.filter((match) => iprangeField(match, field) === undefined) };
}

/** The fewest CIDRs or ranges covering exactly the addresses of `blocks`, in address order. */
export function coalesceBlocks(family: Family, blocks: readonly AddressBlock[]): AddressBlock[] {
  return union(blocks.map(rangeOf)).map((interval) => blockOf(family, interval));
}

/** Intervals merged where they overlap or touch, in order. */
function union(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: Interval[] = [];
  for (const next of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && next.start <= last.end + 1n)
      merged[merged.length - 1] = { start: last.start, end: last.end > next.end ? last.end : next.end };
    else merged.push(next);
  }
  return merged;
}

/** One interval as a CIDR block when it is exactly one, else as a range. */
function blockOf(family: Family, { start, end }: Interval): AddressBlock {
  const size = end - start + 1n;
  const bits = family === 4 ? 32 : 128;
  if ((size & (size - 1n)) === 0n) {
    const prefixLength = bits - (size.toString(2).length - 1);
    if ((start & hostMask(family, prefixLength)) === 0n) return cidr(family, start, prefixLength);
  }
  return range(family, start, end);
}

function withAddress(rule: Rule, field: Field, block: AddressBlock | 'any'): Rule {
  if (block === 'any') return rule;
  if (block.kind === 'cidr') return { ...rule, [field]: { block, negated: false } satisfies AddressMatch };
  return { ...rule, matches: [{ kind: 'iprange', [field]: { block, negated: false } }, ...rule.matches] };
}

// ---- ports ------------------------------------------------------------------------------

/** The destination ports a TCP/UDP rule is restricted to, and where that match sits. */
function destinationPorts(rule: Rule): { at: number; spans: PortSpan[] } | undefined {
  const name = rule.protocol?.name;
  if ((name !== 'tcp' && name !== 'udp') || rule.protocol?.negated) return undefined;
  const at = rule.matches.findIndex((match) => match.kind === 'tcp' || match.kind === 'udp' || match.kind === 'multiport');
  const match = rule.matches[at];
  if (match === undefined) return undefined;
  if (rule.matches.slice(at + 1).some((other) => other.kind === 'tcp' || other.kind === 'udp' || other.kind === 'multiport'))
    return undefined;
  if (match.kind === 'multiport')
    return match.direction === 'dports' && !match.negated ? { at, spans: [...match.ports] } : undefined;
  if (match.kind !== name || match.sport !== undefined || match.dport === undefined || match.dport.negated) return undefined;
  return { at, spans: [{ start: match.dport.start, end: match.dport.end }] };
}

/** Port spans merged where they overlap or touch, in order. */
export function unionPorts(spans: readonly PortSpan[]): PortSpan[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const merged: PortSpan[] = [];
  for (const next of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && next.start <= last.end + 1)
      merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, next.end) };
    else merged.push(next);
  }
  return merged;
}

/** Port spans as matches: groups of at most 15 slots in multiport, a lone span as --dport. */
export function portMatches(protocol: 'tcp' | 'udp', spans: readonly PortSpan[]): Match[] {
  const groups: PortSpan[][] = [];
  for (const span of spans) {
    const group = groups[groups.length - 1];
    if (group !== undefined && multiportSlots([...group, span]) <= MULTIPORT_SLOTS) group.push(span);
    else groups.push([span]);
  }
  return groups.map((group) =>
    group.length === 1
      ? ({ kind: protocol, dport: { ...(group[0] as PortSpan), negated: false } } satisfies TcpUdpMatch)
      : ({ kind: 'multiport', direction: 'dports', ports: group, negated: false } satisfies MultiportMatch),
  );
}

// ---- merging within runs ----------------------------------------------------------------

/** A match's or target's text (each extension caches what it printed, by object). */
function textOf(part: Match | Target, family: Family): string {
  return isTarget(part) ? renderTarget(part) : renderMatch(part, family);
}

const TARGET_KINDS: ReadonlySet<string> = new Set<Target['kind']>(['verdict', 'jump', 'goto', 'REJECT', 'LOG', 'MARK']);

function isTarget(part: Match | Target): part is Target {
  return TARGET_KINDS.has(part.kind);
}

/** Small numbers for the distinct texts of one chain's parts: rules are grouped by short keys. */
class TextIds {
  private readonly ids = new Map<string, number>();

  constructor(private readonly family: Family) {}

  of(part: Match | Target): number {
    const text = textOf(part, this.family);
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(text, id);
    }
    return id;
  }
}

/** Everything about a rule but what `skip` names, as a string: rules with equal keys differ only there. */
function ruleKey(rule: Rule, ids: TextIds, skip: { readonly field?: Field; readonly matchAt?: number }): string {
  const pieces: string[] = [];
  for (const field of ['source', 'destination'] as const) {
    const condition = rule[field];
    if (field !== skip.field && condition !== undefined)
      pieces.push(`${field} ${condition.negated ? '!' : ''}${condition.block.text}`);
  }
  for (const [name, value] of [
    ['p', rule.protocol],
    ['i', rule.inInterface],
    ['o', rule.outInterface],
  ] as const) {
    if (value !== undefined) pieces.push(`${name} ${value.negated ? '!' : ''}${value.name}`);
  }
  rule.matches.forEach((match, at) => {
    if (at === skip.matchAt) pieces.push('#');
    else if (skip.field === undefined || iprangeField(match, skip.field) === undefined) pieces.push(`${ids.of(match)}`);
  });
  if (rule.target !== undefined) pieces.push(`${ids.of(rule.target)}`);
  return pieces.join(' ');
}

/**
 * Runs of consecutive rules with the same final target; in each, rules with the same `key`
 * are merged by `merge` (which returns undefined when merging would not make fewer rules).
 */
function mergeRuns(
  rules: readonly ChainRule[],
  family: Family,
  key: (rule: Rule) => string | undefined,
  merge: (group: readonly Rule[]) => Rule[] | undefined,
): ChainRule[] {
  const result: ChainRule[] = [];
  let index = 0;
  while (index < rules.length) {
    const first = rules[index] as ChainRule;
    if (first.kind === 'opaque' || !isFinal(first.target)) {
      result.push(first);
      index++;
      continue;
    }
    const target = textOf(first.target as Target, family);
    let end = index;
    while (end < rules.length) {
      const rule = rules[end] as ChainRule;
      if (rule.kind === 'opaque' || !isFinal(rule.target) || textOf(rule.target as Target, family) !== target) break;
      end++;
    }
    const run = rules.slice(index, end) as Rule[];
    const groups = new Map<string, number[]>();
    run.forEach((rule, position) => {
      const groupKey = key(rule);
      if (groupKey === undefined) return;
      const members = groups.get(groupKey);
      if (members) members.push(position);
      else groups.set(groupKey, [position]);
    });
    // A merged group takes the place of its first member; its other members go.
    const replacement = new Map<number, Rule[]>();
    const removed = new Set<number>();
    for (const members of groups.values()) {
      if (members.length < 2) continue;
      const merged = merge(members.map((position) => run[position] as Rule));
      if (merged === undefined || merged.length >= members.length) continue;
      replacement.set(members[0] as number, merged);
      for (const position of members.slice(1)) removed.add(position);
    }
    run.forEach((rule, position) => {
      if (removed.has(position)) return;
      result.push(...(replacement.get(position) ?? [rule]));
    });
    index = end;
  }
  return result;
}

/** Rate matches keep a bucket per rule: two such rules merged would share one, and limit differently. */
function hasRateBucket(rule: Rule): boolean {
  return rule.matches.some((match) => match.kind === 'limit' || match.kind === 'hashlimit');
}

function coalesceAddresses(rules: readonly ChainRule[], family: Family, field: Field): ChainRule[] {
  const ids = new TextIds(family);
  return mergeRuns(
    rules,
    family,
    // A rule without an address in `field` could only merge with its own duplicate, which
    // shadowing removes anyway.
    (rule) => {
      const set = addressSet(rule, field);
      return set === undefined || set === 'any' || hasRateBucket(rule) ? undefined : ruleKey(rule, ids, { field });
    },
    (group) => {
      const sets = group.map((rule) => addressSet(rule, field) as Interval | 'any');
      const stripped = withoutAddress(group[0] as Rule, field);
      if (sets.includes('any')) return [stripped];
      return union(sets as Interval[]).map((interval) => withAddress(stripped, field, blockOf(family, interval)));
    },
  );
}

function mergePorts(rules: readonly ChainRule[], family: Family): ChainRule[] {
  const ids = new TextIds(family);
  return mergeRuns(
    rules,
    family,
    (rule) => {
      const ports = destinationPorts(rule);
      return ports === undefined || hasRateBucket(rule) ? undefined : ruleKey(rule, ids, { matchAt: ports.at });
    },
    (group) => {
      const first = group[0] as Rule;
      const { at } = destinationPorts(first) as { at: number };
      const spans = unionPorts(group.flatMap((rule) => destinationPorts(rule)?.spans ?? []));
      return portMatches(first.protocol?.name as 'tcp' | 'udp', spans).map((match) => ({
        ...first,
        matches: [...first.matches.slice(0, at), match, ...first.matches.slice(at + 1)],
      }));
    },
  );
}

// ---- shadowing --------------------------------------------------------------------------

function within(inner: Interval | 'any', outer: Interval | 'any'): boolean {
  if (outer === 'any') return true;
  return inner !== 'any' && inner.start >= outer.start && inner.end <= outer.end;
}

function portsWithin(inner: readonly PortSpan[], outer: readonly PortSpan[]): boolean {
  return inner.every((span) => outer.some((wide) => span.start >= wide.start && span.end <= wide.end));
}

const ALL_PORTS: readonly PortSpan[] = [{ start: 0, end: 65535 }];

/** The text of a header field ('' when absent), negation included. */
function headerText(value: { readonly name: string; readonly negated: boolean } | undefined): string {
  return value === undefined ? '' : value.negated ? `!${value.name}` : value.name;
}

const NOT_YET = Symbol('not worked out yet');

/**
 * What shadowing compares of a rule, each fact worked out when first asked for (at most once):
 * most rules are compared only by their addresses, and this runs for every rule of a cell.
 */
class Facts {
  private sourceSet: Interval | 'any' | undefined | typeof NOT_YET = NOT_YET;
  private destinationSet: Interval | 'any' | undefined | typeof NOT_YET = NOT_YET;
  private portSpans: readonly PortSpan[] | undefined;
  private renderedMatches: ReadonlySet<string> | undefined;

  constructor(
    readonly rule: Rule,
    private readonly family: Family,
  ) {}

  get source(): Interval | 'any' | undefined {
    if (this.sourceSet === NOT_YET) this.sourceSet = addressSet(this.rule, 'source');
    return this.sourceSet;
  }

  get destination(): Interval | 'any' | undefined {
    if (this.destinationSet === NOT_YET) this.destinationSet = addressSet(this.rule, 'destination');
    return this.destinationSet;
  }

  get ports(): readonly PortSpan[] {
    this.portSpans ??= destinationPorts(this.rule)?.spans ?? ALL_PORTS;
    return this.portSpans;
  }

  /** Its matches as rendered, comments aside. */
  get rendered(): ReadonlySet<string> {
    this.renderedMatches ??= new Set(
      this.rule.matches.filter((match) => match.kind !== 'comment').map((match) => textOf(match, this.family)),
    );
    return this.renderedMatches;
  }
}

function factsOf(rule: Rule, family: Family): Facts {
  return new Facts(rule, family);
}

/** Whether every packet `narrow` matches, `wide` matches too (conservative: false when unsure). */
function covers(wide: Facts, narrow: Facts, family: Family): boolean {
  if (wide.source === undefined || narrow.source === undefined || !within(narrow.source, wide.source)) return false;
  if (wide.destination === undefined || narrow.destination === undefined || !within(narrow.destination, wide.destination))
    return false;
  for (const field of ['protocol', 'inInterface', 'outInterface'] as const) {
    const outer = headerText(wide.rule[field]);
    if (outer !== '' && outer !== headerText(narrow.rule[field])) return false;
  }
  for (const match of wide.rule.matches) {
    switch (match.kind) {
      case 'comment':
      case 'iprange':
        continue;
      case 'limit':
      case 'hashlimit':
        // Each rule has its own rate bucket: a packet over one may be under the other.
        return false;
      case 'tcp':
      case 'udp':
      case 'multiport': {
        const outer = destinationPorts({ ...wide.rule, matches: [match] });
        if (outer === undefined ? !narrow.rendered.has(textOf(match, family)) : !portsWithin(narrow.ports, outer.spans))
          return false;
        continue;
      }
      case 'icmp':
      case 'icmp6': {
        if (match.kind === 'icmp' && match.type === 255 && !match.negated) continue;
        const other = narrow.rule.matches.find((candidate) => candidate.kind === match.kind);
        const coveredCode =
          other !== undefined &&
          (other.kind === 'icmp' || other.kind === 'icmp6') &&
          !match.negated &&
          !other.negated &&
          other.type === match.type &&
          (match.code === undefined || other.code === match.code);
        if (!coveredCode && !narrow.rendered.has(textOf(match, family))) return false;
        continue;
      }
      default:
        if (!narrow.rendered.has(textOf(match, family))) return false;
    }
  }
  return true;
}

/** The single address a field matches, if it matches exactly one. */
function singleHost(set: Interval | 'any' | undefined): bigint | undefined {
  return set !== undefined && set !== 'any' && set.start === set.end ? set.start : undefined;
}

/**
 * Rules covered by an earlier final rule. A rule whose addresses are more than one host in
 * every field (broad) could cover anything: each rule is compared with all of those. Any
 * other earlier rule matches a single host in some field, and covers only rules of that same
 * host there: those are found by address, not by a walk of the chain.
 */
export function dropShadowed(rules: readonly ChainRule[], family: Family): ChainRule[] {
  const kept: ChainRule[] = [];
  let broad: Facts[] = [];
  // Earlier narrow final rules, by the single host they match in a field.
  let byHost = { source: new Map<bigint, Facts[]>(), destination: new Map<bigint, Facts[]>() };
  for (const rule of rules) {
    if (rule.kind === 'opaque' || isBarrier(rule)) {
      kept.push(rule);
      broad = [];
      byHost = { source: new Map(), destination: new Map() };
      continue;
    }
    const facts = factsOf(rule, family);
    const covered = (earlier: Facts) => covers(earlier, facts, family);
    const hosts = { source: singleHost(facts.source), destination: singleHost(facts.destination) };
    const sameHost = (field: Field) => {
      const host = hosts[field];
      return host !== undefined && (byHost[field].get(host)?.some(covered) ?? false);
    };
    if (broad.some(covered) || sameHost('source') || sameHost('destination')) continue;
    kept.push(rule);
    if (!isFinal(rule.target) || facts.source === undefined || facts.destination === undefined) continue;
    if (hosts.source === undefined && hosts.destination === undefined) broad.push(facts);
    for (const field of ['source', 'destination'] as const) {
      const host = hosts[field];
      if (host === undefined) continue;
      const list = byHost[field].get(host);
      if (list === undefined) byHost[field].set(host, [facts]);
      else list.push(facts);
    }
  }
  return kept;
}

/** A chain's rules with fewer rules and the same verdict for every packet. */
export function optimiseRules(rules: readonly ChainRule[], family: Family): readonly ChainRule[] {
  let result = coalesceAddresses(rules, family, 'destination');
  result = coalesceAddresses(result, family, 'source');
  result = mergePorts(result, family);
  result = dropShadowed(result, family);
  return result.length === rules.length ? rules : result;
}
