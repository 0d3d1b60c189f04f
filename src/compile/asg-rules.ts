// ASG rules of one family -> iptables rules: in the plain form one per destination element
// and port entry, or (merged) the fewest per ASG rule; each names its origin in a comment.
// Identical rules (ignoring which ASG they came from) are emitted once, the first wins. This
// runs for every rule of a cell, so it builds each rule exactly once.
import { type AddressBlock, formatBlock } from '../model/address.js';
import type { IpSet } from '../ir/ipset.js';
import { setMatch } from '../extensions/set.js';
import { coalesceBlocks, portMatches, unionPorts } from './optimise.js';
import type { AsgRule, FamilyAsgRule } from '../model/asg.js';
import { comment } from '../extensions/comment.js';
import { renderTarget } from '../extensions/targets.js';
import type { Match } from '../ir/matches.js';
import type { ProtocolMatch, Rule } from '../ir/ruleset.js';
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

// An ASG rule's comment, made once for both families (and for every compile that reuses the rule).
const comments = new WeakMap<AsgRule, Match>();

function commentOf(asg: AsgRule): Match {
  let note = comments.get(asg);
  if (note === undefined) {
    note = comment(asgRuleComment(asg));
    comments.set(asg, note);
  }
  return note;
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

/** Compile the rules in order, skipping any rule equal to an earlier one. */
export function compileAsgRules(
  asgRules: readonly FamilyAsgRule[],
  targetOf: (asg: AsgRule) => Target,
  { merge = false, sets }: AsgCompileOptions = {},
): Rule[] {
  // Destination text -> selector keys already emitted for it (no key strings to build per rule).
  const seen = new Map<string, Set<string>>();
  const rules: Rule[] = [];
  for (const share of asgRules) {
    const asg = share.rule;
    const target = targetOf(asg);
    const note = commentOf(asg);
    const origin = { kind: 'asg', ...asg.origin } as const;
    const targetKey = ` ${renderTarget(target)}`;
    const ofRule = (merge ? mergedSelectors(asg) : selectors(asg)).map((selector) => ({
      ...selector,
      key: `${selector.key}${targetKey}`,
    }));
    const merged = merge && share.destinations.length > 1 ? coalesceBlocks(share.family, share.destinations) : share.destinations;
    // Merged blocks only where they are fewer: otherwise the rules stay as written.
    const blocks = merged.length < share.destinations.length ? merged : share.destinations;
    const set = sets !== undefined && blocks.length >= sets.minDestinations ? sets.setFor(merged) : undefined;
    for (const block of set === undefined ? blocks : [undefined]) {
      const blockText = block === undefined ? `set ${(set as IpSet).name}` : formatBlock(block);
      let emitted = seen.get(blockText);
      if (emitted === undefined) {
        emitted = new Set();
        seen.set(blockText, emitted);
      }
      const range: Match | undefined =
        block === undefined
          ? setMatch((set as IpSet).name)
          : block.kind === 'range'
            ? { kind: 'iprange', destination: { block, negated: false } }
            : undefined;
      const destination = block?.kind === 'cidr' ? { block, negated: false } : undefined;
      for (const { protocol, match, key } of ofRule) {
        if (emitted.has(key)) continue;
        emitted.add(key);
        // Literals of the exact length: push() would reserve room for 17 elements per rule.
        const matches = range ? (match ? [range, match, note] : [range, note]) : match ? [match, note] : [note];
        rules.push({ kind: 'rule', destination, protocol, matches, target, origin });
      }
    }
  }
  return rules;
}
