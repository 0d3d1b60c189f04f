// -m icmp6 (IPv6). No wildcard type exists here: "any type" is expressed by leaving the match out.
import type { Icmp6Match } from '../ir/matches.js';
import { type MatchExtension, negation, optionsByName } from './extension.js';
import { icmpTypeCodeMatches, parseIcmpSpec } from './icmp.js';

/** libip6t_icmp6's names. */
const ICMP6_NAMES: Readonly<Record<string, readonly [number, number?]>> = {
  'destination-unreachable': [1],
  'no-route': [1, 0],
  'communication-prohibited': [1, 1],
  'beyond-scope': [1, 2],
  'address-unreachable': [1, 3],
  'port-unreachable': [1, 4],
  'failed-policy': [1, 5],
  'reject-route': [1, 6],
  'packet-too-big': [2],
  'time-exceeded': [3],
  'ttl-exceeded': [3],
  'ttl-zero-during-transit': [3, 0],
  'ttl-zero-during-reassembly': [3, 1],
  'parameter-problem': [4],
  'bad-header': [4, 0],
  'unknown-header-type': [4, 1],
  'unknown-option': [4, 2],
  'echo-request': [128],
  ping: [128],
  'echo-reply': [129],
  pong: [129],
  'mld-listener-query': [130],
  'mld-listener-report': [131],
  'mld-listener-done': [132],
  'mld-listener-reduction': [132],
  'router-solicitation': [133],
  'router-advertisement': [134],
  'neighbour-solicitation': [135],
  'neighbor-solicitation': [135],
  'neighbour-advertisement': [136],
  'neighbor-advertisement': [136],
  redirect: [137],
};

export const icmp6Extension: MatchExtension<Icmp6Match> = {
  module: 'icmp6',
  options: { 'icmpv6-type': 1 },
  render(match) {
    const spec = match.code === undefined ? `${match.type}` : `${match.type}/${match.code}`;
    return `-m icmp6 ${negation(match.negated)}--icmpv6-type ${spec}`;
  },
  parse(options) {
    const option = optionsByName(options, {}, ['icmpv6-type'])?.get('icmpv6-type');
    const spec = option && parseIcmpSpec(option.values[0] ?? '', ICMP6_NAMES);
    return option && spec ? { kind: 'icmp6', ...spec, negated: option.negated } : undefined;
  },
  // No wildcard type in ip6tables: 255 is type 255.
  test: (match, packet) => (packet.protocol === 58 ? icmpTypeCodeMatches(match, packet) : false),
};
