// -m icmp (IPv4). Type 255 is the kernel's wildcard and prints as "any"; a code of
// undefined means every code of the type (range 0-255), printed without "/code".
import type { IcmpMatch } from '../ir/matches.js';
import { type MatchExtension, negation } from './extension.js';

export const ICMP_ANY_TYPE = 255;

export const icmpExtension: MatchExtension<IcmpMatch> = {
  render(match) {
    const spec =
      match.type === ICMP_ANY_TYPE ? 'any' : match.code === undefined ? `${match.type}` : `${match.type}/${match.code}`;
    return `-m icmp ${negation(match.negated)}--icmp-type ${spec}`;
  },
};
