// -m icmp6 (IPv6). No wildcard type exists here: "any type" is expressed by leaving the match out.
import type { Icmp6Match } from '../ir/matches.js';
import { type MatchExtension, negation } from './extension.js';

export const icmp6Extension: MatchExtension<Icmp6Match> = {
  render(match) {
    const spec = match.code === undefined ? `${match.type}` : `${match.type}/${match.code}`;
    return `-m icmp6 ${negation(match.negated)}--icmpv6-type ${spec}`;
  },
};
