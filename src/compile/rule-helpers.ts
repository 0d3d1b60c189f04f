// Small builders for the rule shapes the chain layout repeats.
import { safeText } from '../extensions/comment.js';
import { limitMatch } from '../extensions/limit.js';
import { stateMatch } from '../extensions/state.js';
import { log } from '../extensions/targets.js';
import type { Match } from '../ir/matches.js';
import { type AddressMatch, type ProtocolMatch, type Rule, type RuleOrigin, rule } from '../ir/ruleset.js';
import { ACCEPT } from '../ir/targets.js';
import { type Family, type ParsedAddress, hostCidr } from '../model/address.js';
import type { C2cPolicy } from '../model/cell.js';

export function layout(role: string): RuleOrigin {
  return { kind: 'layout', role };
}

/** The c2c policy a rule enforces. */
export function c2cOrigin({ source, destination }: C2cPolicy): RuleOrigin {
  return {
    kind: 'c2c',
    sourceApp: source.appGuid,
    destinationApp: destination.appGuid,
    protocol: destination.protocol,
    ports: destination.ports,
  };
}

export function protocol(name: string, negated = false): ProtocolMatch {
  return { name, negated };
}

/** `-p tcp -m tcp --dport a[:b]` as rule fields. */
export function transport(name: 'tcp' | 'udp', start: number, end = start): { protocol: ProtocolMatch; matches: Match[] } {
  return { protocol: protocol(name), matches: [{ kind: name, dport: { start, end, negated: false } }] };
}

/** A single address as -s/-d. */
export function hostMatch(family: Family, value: bigint): AddressMatch {
  return { block: hostCidr({ family, value }), negated: false };
}

export function addressMatch(address: ParsedAddress): AddressMatch {
  return { block: hostCidr(address), negated: false };
}

export function acceptEstablished(): Rule {
  return rule({ matches: [stateMatch('state', ['RELATED', 'ESTABLISHED'])], target: ACCEPT, origin: layout('established') });
}

/** A log prefix of at most 28 bytes plus the trailing space, as CF writes them. */
export function logPrefix(tag: string, handle: string): string {
  return `${safeText(`${tag}_${handle}`, 28)} `;
}

/** Log what is denied, rate-limited to `perSecond` (burst the same), with CF's `<tag>_<handle> ` prefix. */
export function deniedLog(perSecond: number, tag: string, handle: string, role: string): Rule {
  return rule({ matches: [limitMatch(perSecond, 'sec', perSecond)], target: log(logPrefix(tag, handle)), origin: layout(role) });
}
