// ASG rules of one family -> iptables rules: one per destination element and port entry
// (the plain form; merging is an optimisation for later), each naming its origin in a
// comment. Identical rules (ignoring which ASG they came from) are emitted once, the first
// wins. This runs for every rule of a cell, so it builds each rule exactly once.
import { formatBlock } from '../model/address.js';
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

export function asgRuleComment(asg: AsgRule): string {
  const { groupName, ruleIndex } = asg.origin;
  return asg.description === '' ? `${groupName}#${ruleIndex}` : `${groupName}#${ruleIndex} ${asg.description}`;
}

/** Compile the rules in order, skipping any rule equal to an earlier one. */
export function compileAsgRules(asgRules: readonly FamilyAsgRule[], targetOf: (asg: AsgRule) => Target): Rule[] {
  // Destination text -> selector keys already emitted for it (no key strings to build per rule).
  const seen = new Map<string, Set<string>>();
  const rules: Rule[] = [];
  for (const share of asgRules) {
    const asg = share.rule;
    const target = targetOf(asg);
    const note = comment(asgRuleComment(asg));
    const origin = { kind: 'asg', ...asg.origin } as const;
    const targetKey = ` ${renderTarget(target)}`;
    const ofRule = selectors(asg).map((selector) => ({ ...selector, key: `${selector.key}${targetKey}` }));
    for (const block of share.destinations) {
      const blockText = formatBlock(block);
      let emitted = seen.get(blockText);
      if (emitted === undefined) {
        emitted = new Set();
        seen.set(blockText, emitted);
      }
      const range: Match | undefined =
        block.kind === 'range' ? { kind: 'iprange', destination: { block, negated: false } } : undefined;
      const destination = block.kind === 'cidr' ? { block, negated: false } : undefined;
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
