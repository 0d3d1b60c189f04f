// ASG rules of one family -> iptables rules: in the plain form one per destination element
// and port entry, or (merged) the fewest per ASG rule; each names its origin in a comment.
// Identical rules (ignoring which ASG they came from) are emitted once, the first wins. This
// runs for every rule of a cell, so it builds each rule exactly once.
import type { AddressBlock, Family } from '../model/address.js';
import type { IpSet } from '../ir/ipset.js';
import { setMatch } from '../extensions/set.js';
import { coalesceBlocks, portMatches, unionPorts } from './optimise.js';
import type { AsgRule } from '../model/asg.js';
import { comment } from '../extensions/comment.js';
import { renderTarget } from '../extensions/targets.js';
import type { Match } from '../ir/matches.js';
import type { ProtocolMatch, Rule, RuleOrigin } from '../ir/ruleset.js';
import type { Target } from '../ir/targets.js';

/** What a rule matches besides its destination: protocol and one port entry or ICMP type. */
interface Selector {
  readonly protocol: ProtocolMatch | undefined;
  readonly match: Match | undefined;
  /** Identifies the selector among those of one family, for de-duplication. */
  readonly key: string;
}

function selectors(asg: AsgRule): Selector[] {
  switch (asg.protocol) {
    case 'tcp':
    case 'udp': {
      const protocol = { name: asg.protocol, negated: false };
      return asg.ports.map(({ start, end }) => ({
        protocol,
        match: { kind: asg.protocol as 'tcp' | 'udp', dport: { start, end, negated: false } },
        key: `${asg.protocol} ${start}:${end}`,
      }));
    }
    case 'icmp':
    case 'icmpv6': {
      const protocol = { name: asg.protocol === 'icmp' ? 'icmp' : 'ipv6-icmp', negated: false };
      const { type, code } = asg.icmp;
      if (type === undefined) return [{ protocol, match: undefined, key: protocol.name }];
      const match: Match = {
        kind: asg.protocol === 'icmp' ? 'icmp' : 'icmp6',
        type,
        ...(code !== undefined && { code }),
        negated: false,
      };
      return [{ protocol, match, key: `${protocol.name} ${type}/${code ?? ''}` }];
    }
    case 'all':
      return [{ protocol: undefined, match: undefined, key: 'all' }];
  }
}

export function asgRuleComment(asg: AsgRule): string {
  const { groupName, ruleIndex } = asg.origin;
  return asg.description === '' ? `${groupName}#${ruleIndex}` : `${groupName}#${ruleIndex} ${asg.description}`;
}

/**
 * One ASG rule's selectors, merged: its TCP/UDP ports in the fewest --dport and multiport
 * matches (at most 15 slots each).
 */
function mergedSelectors(asg: AsgRule): Selector[] {
  if ((asg.protocol !== 'tcp' && asg.protocol !== 'udp') || asg.ports.length < 2) return selectors(asg);
  const name = asg.protocol;
  const protocol = { name, negated: false };
  return portMatches(name, unionPorts(asg.ports)).map((match) => ({ protocol, match, key: portKey(name, match) }));
}

/**
 * A merged port match's identity among one family's selectors, in selectors()' form for a
 * single span (so equal rules of the two forms are one), naming the protocol for a multiport
 * match (which reads the same for tcp and udp).
 */
function portKey(protocol: 'tcp' | 'udp', match: Match): string {
  if (match.kind === 'multiport')
    return `${protocol} multiport ${match.ports.map(({ start, end }) => `${start}:${end}`).join(',')}`;
  return match.kind === 'tcp' || match.kind === 'udp' ? `${protocol} ${match.dport?.start}:${match.dport?.end}` : protocol;
}

export interface AsgCompileOptions {
  /**
   * Merge within each ASG rule: its destinations into the fewest CIDRs or ranges, its ports
   * into multiport matches. This is where a long destination list with several ports stops
   * being destinations x ports rules.
   */
  readonly merge?: boolean;
  /** Where a rule's (merged) destinations are this many or more, one ipset match replaces them. */
  readonly sets?: SetMaker | undefined;
}

export interface SetMaker {
  readonly minDestinations: number;
  /** The set of exactly these addresses; undefined when a set cannot hold them. */
  setFor(blocks: readonly AddressBlock[]): IpSet | undefined;
}

const NONE: readonly AddressBlock[] = [];

/** The destinations of one family of an ASG rule (the rule's own array when all are of it). */
function familyDestinations(asg: AsgRule, family: Family): readonly AddressBlock[] {
  const all = asg.destinations;
  let own = 0;
  for (const block of all) if (block.family === family) own++;
  if (own === all.length) return all;
  if (own === 0) return NONE;
  const blocks: AddressBlock[] = [];
  for (const block of all) if (block.family === family) blocks.push(block);
  return blocks;
}

/**
 * Compile the rules of one family in order, skipping any rule equal to an earlier one.
 * (Equal: the same destination, selector and target; which ASG it came from does not count.)
 */
export function compileAsgRules(
  asgRules: readonly AsgRule[],
  family: Family,
  targetOf: (asg: AsgRule) => Target,
  { merge = false, sets }: AsgCompileOptions = {},
): Rule[] {
  // Target (as text) -> selector -> the destinations already emitted with both.
  const seen = new Map<string, Map<string, Set<string>>>();
  const emittedWith = (targetKey: string, selectorKey: string): Set<string> => {
    let bySelector = seen.get(targetKey);
    if (bySelector === undefined) {
      bySelector = new Map();
      seen.set(targetKey, bySelector);
    }
    let emitted = bySelector.get(selectorKey);
    if (emitted === undefined) {
      emitted = new Set();
      bySelector.set(selectorKey, emitted);
    }
    return emitted;
  };
  const rules: Rule[] = [];
  for (const asg of asgRules) {
    const destinations = familyDestinations(asg, family);
    if (destinations.length === 0) continue;
    const target = targetOf(asg);
    const origin: RuleOrigin = { kind: 'asg', ...asg.origin };
    const note = comment(asgRuleComment(asg));
    const targetKey = renderTarget(target);
    const merged = merge && destinations.length > 1 ? coalesceBlocks(family, destinations) : destinations;
    // Merged blocks only where they are fewer: otherwise the rules stay as written.
    const blocks = merged.length < destinations.length ? merged : destinations;
    const set = sets !== undefined && blocks.length >= sets.minDestinations ? sets.setFor(merged) : undefined;
    // Per selector: its protocol, the destinations already emitted with it (and this target),
    // and the matches every CIDR destination's rule shares.
    const ofRule = (merge ? mergedSelectors(asg) : selectors(asg)).map(({ protocol, match, key }) => ({
      protocol,
      emitted: emittedWith(targetKey, key),
      shared: match ? [match, note] : [note],
    }));
    if (set !== undefined) {
      const setMatches = setMatch(set.name);
      for (const { protocol, emitted, shared } of ofRule) {
        if (emitted.has(`set ${set.name}`)) continue;
        emitted.add(`set ${set.name}`);
        rules.push({ kind: 'rule', destination: undefined, protocol, matches: [setMatches, ...shared], target, origin });
      }
      continue;
    }
    // Block by block, as the plain form lists an ASG rule's destinations.
    for (const block of blocks) {
      const destination = block.kind === 'cidr' ? { block, negated: false } : undefined;
      const range: Match | undefined =
        block.kind === 'range' ? { kind: 'iprange', destination: { block, negated: false } } : undefined;
      for (const { protocol, emitted, shared } of ofRule) {
        if (emitted.has(block.text)) continue;
        emitted.add(block.text);
        rules.push({ kind: 'rule', destination, protocol, matches: range ? [range, ...shared] : shared, target, origin });
      }
    }
  }
  return rules;
}
