// Which policy a decision comes from: the ASG rule, c2c policy or deny network behind the rule
// that decided (or behind the rule that jumped to its chain). Compiled rules carry their origin;
// rules read back from iptables-save are known by their comments ("<asg>#<rule> ...",
// "src:<app>_dst:<app>").
import type { ChainRule } from '../ir/ruleset.js';
import type { Decision } from './evaluate.js';

export type PolicySource =
  | {
      readonly kind: 'asg';
      readonly groupName: string;
      readonly groupGuid?: string;
      readonly ruleIndex: number;
      readonly description?: string;
    }
  | {
      readonly kind: 'c2c';
      readonly sourceApp: string;
      readonly destinationApp: string;
      readonly protocol?: string;
      readonly ports?: { readonly start: number; readonly end: number };
    }
  | { readonly kind: 'deny-network'; readonly list?: string }
  | { readonly kind: 'layout'; readonly role: string };

const ASG_COMMENT = /^(.+)#(\d+)(?: (.*))?$/s;
const C2C_COMMENT = /^src:(\S+)_dst:(\S+)$/;

function sourceOf(rule: ChainRule): PolicySource | undefined {
  if (rule.kind === 'opaque') return undefined;
  const origin = rule.origin;
  if (origin?.kind === 'asg') {
    // The description is in the comment only (cut as the kernel keeps it).
    const text = rule.matches.find((match) => match.kind === 'comment')?.text;
    const description = text === undefined ? undefined : ASG_COMMENT.exec(text)?.[3];
    return {
      kind: 'asg',
      groupName: origin.groupName,
      groupGuid: origin.groupGuid,
      ruleIndex: origin.ruleIndex,
      ...(description && { description }),
    };
  }
  if (origin?.kind === 'c2c') return { ...origin, kind: 'c2c' };
  if (origin?.kind === 'deny-network') return { kind: 'deny-network', list: origin.list };
  for (const match of rule.matches) {
    if (match.kind !== 'comment') continue;
    const c2c = C2C_COMMENT.exec(match.text);
    if (c2c) return { kind: 'c2c', sourceApp: c2c[1] as string, destinationApp: c2c[2] as string };
    const asg = ASG_COMMENT.exec(match.text);
    if (asg)
      return { kind: 'asg', groupName: asg[1] as string, ruleIndex: Number(asg[2]), ...(asg[3] && { description: asg[3] }) };
  }
  return undefined;
}

/** The policy behind a decision: the deciding rule's, else that of the nearest rule that jumped there. */
export function policyOf(decision: Decision): PolicySource | undefined {
  const rules = [decision.decidedBy, ...[...decision.via].reverse()].flatMap((place) => (place ? [place.rule] : []));
  for (const rule of rules) {
    const source = sourceOf(rule);
    if (source !== undefined) return source;
  }
  const decider = decision.decidedBy?.rule;
  return decider?.kind === 'rule' && decider.origin?.kind === 'layout'
    ? { kind: 'layout', role: decider.origin.role }
    : undefined;
}

const LAYOUT_WORDS: Readonly<Record<string, string>> = {
  'default deny': "the container's default deny: no ASG rule allows this",
  'ingress default deny': "the container's ingress default deny: no c2c policy or ingress router allows this",
  'host default deny': 'the default deny of host access: not a DNS server or host service of the cell',
  established: 'an established or related connection',
  'anti-spoofing: a source not routed back to its container':
    "anti-spoofing: the source is not the sending container's own address (dropped before any policy)",
  "anti-spoofing: a container's address from outside": "anti-spoofing: a container's address, claimed from outside the cell",
  invalid: 'an invalid TCP packet',
};

/** One line for people. */
export function describePolicy(source: PolicySource): string {
  switch (source.kind) {
    case 'asg':
      return `ASG "${source.groupName}"${source.groupGuid ? ` (${source.groupGuid})` : ''} rule #${source.ruleIndex}${source.description ? `: ${source.description}` : ''}`;
    case 'c2c': {
      const ports =
        source.ports === undefined
          ? ''
          : ` ${source.protocol} ${source.ports.start === source.ports.end ? source.ports.start : `${source.ports.start}-${source.ports.end}`}`;
      return `c2c policy from app ${source.sourceApp} to app ${source.destinationApp}${ports}`;
    }
    case 'deny-network':
      return `a deny network${source.list ? ` (${source.list} list of the asgc configuration)` : ''}`;
    case 'layout':
      return LAYOUT_WORDS[source.role] ?? `asgc's layout: ${source.role}`;
  }
}
