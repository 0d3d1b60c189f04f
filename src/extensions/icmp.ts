// -m icmp (IPv4). Type 255 is the kernel's wildcard and prints as "any"; a code of
// undefined means every code of the type (range 0-255), printed without "/code".
import type { Packet } from '../ir/packet.js';
import type { IcmpMatch } from '../ir/matches.js';
import { type MatchExtension, negation, optionsByName, parseInteger } from './extension.js';

export const ICMP_ANY_TYPE = 255;

/** libipt_icmp's names, which iptables accepts and prints as numbers. */
const ICMP_NAMES: Readonly<Record<string, readonly [number, number?]>> = {
  any: [255],
  'echo-reply': [0],
  pong: [0],
  'destination-unreachable': [3],
  'network-unreachable': [3, 0],
  'host-unreachable': [3, 1],
  'protocol-unreachable': [3, 2],
  'port-unreachable': [3, 3],
  'fragmentation-needed': [3, 4],
  'source-route-failed': [3, 5],
  'network-unknown': [3, 6],
  'host-unknown': [3, 7],
  'network-prohibited': [3, 9],
  'host-prohibited': [3, 10],
  'TOS-network-unreachable': [3, 11],
  'TOS-host-unreachable': [3, 12],
  'communication-prohibited': [3, 13],
  'host-precedence-violation': [3, 14],
  'precedence-cutoff': [3, 15],
  'source-quench': [4],
  redirect: [5],
  'network-redirect': [5, 0],
  'host-redirect': [5, 1],
  'TOS-network-redirect': [5, 2],
  'TOS-host-redirect': [5, 3],
  'echo-request': [8],
  ping: [8],
  'router-advertisement': [9],
  'router-solicitation': [10],
  'time-exceeded': [11],
  'ttl-exceeded': [11],
  'ttl-zero-during-transit': [11, 0],
  'ttl-zero-during-reassembly': [11, 1],
  'parameter-problem': [12],
  'ip-header-bad': [12, 0],
  'required-option-missing': [12, 1],
  'timestamp-request': [13],
  'timestamp-reply': [14],
  'address-mask-request': [17],
  'address-mask-reply': [18],
};

/** `T`, `T/C` or a name, as --icmp-type / --icmpv6-type take it. */
export function parseIcmpSpec(
  text: string,
  names: Readonly<Record<string, readonly [number, number?]>>,
): { type: number; code?: number } | undefined {
  const named = names[text];
  if (named) return named[1] === undefined ? { type: named[0] } : { type: named[0], code: named[1] };
  const [typeText, codeText, extra] = text.split('/');
  const type = parseInteger(typeText, 0, 255);
  if (type === undefined || extra !== undefined) return undefined;
  if (codeText === undefined) return { type };
  const code = parseInteger(codeText, 0, 255);
  return code === undefined ? undefined : { type, code };
}

export const icmpExtension: MatchExtension<IcmpMatch> = {
  module: 'icmp',
  options: { 'icmp-type': 1 },
  render(match) {
    const spec =
      match.type === ICMP_ANY_TYPE ? 'any' : match.code === undefined ? `${match.type}` : `${match.type}/${match.code}`;
    return `-m icmp ${negation(match.negated)}--icmp-type ${spec}`;
  },
  parse(options) {
    const option = optionsByName(options, {}, ['icmp-type'])?.get('icmp-type');
    const spec = option && parseIcmpSpec(option.values[0] ?? '', ICMP_NAMES);
    if (!option || !spec) return undefined;
    // The kernel ignores the code of type 255 (any): iptables-save prints both as "any".
    if (spec.type === ICMP_ANY_TYPE) return { kind: 'icmp', type: ICMP_ANY_TYPE, negated: option.negated };
    return { kind: 'icmp', ...spec, negated: option.negated };
  },
  test(match, packet) {
    if (packet.protocol !== 1) return false;
    if (match.type === ICMP_ANY_TYPE) return !match.negated;
    return icmpTypeCodeMatches(match, packet);
  },
};

/** The kernel's icmp_type_code_match: the type, and the code within the match's range (a missing code is 0-255). */
export function icmpTypeCodeMatches(
  match: { type: number; code?: number; negated: boolean },
  packet: Packet,
): boolean | undefined {
  if (packet.icmpType === undefined || (match.code !== undefined && packet.icmpCode === undefined)) return undefined;
  const code = match.code === undefined ? true : packet.icmpCode === match.code;
  return (packet.icmpType === match.type && code) !== match.negated;
}
