// -m set: `[!] --match-set NAME dst[,src...]`. asgc models the plain membership test only;
// options such as --return-nomatch or counter matches leave the rule opaque.
import type { SetMatch } from '../ir/matches.js';
import { setContains } from '../ir/ipset.js';
import { type MatchExtension, negation, optionsByName } from './extension.js';

export function setMatch(name: string, directions: SetMatch['directions'] = ['dst']): SetMatch {
  return { kind: 'set', name, directions, negated: false };
}

export const setExtension: MatchExtension<SetMatch> = {
  module: 'set',
  options: { 'match-set': 2 },
  render(match) {
    return `-m set ${negation(match.negated)}--match-set ${match.name} ${match.directions.join(',')}`;
  },
  parse(options) {
    const byName = optionsByName(options, {}, ['match-set']);
    const option = byName?.get('match-set');
    if (byName === undefined || byName.size !== 1 || option === undefined) return undefined;
    const [name, flags] = option.values;
    const directions = (flags ?? '').split(',');
    if (
      name === undefined ||
      name === '' ||
      directions.length > 6 ||
      !directions.every((flag) => flag === 'src' || flag === 'dst')
    )
      return undefined;
    return { kind: 'set', name, directions: directions as SetMatch['directions'], negated: option.negated };
  },
  test(match, packet, context) {
    const set = context.sets.get(match.name);
    // An unknown set, or one of more dimensions than hash:net's single address, cannot be judged.
    if (set === undefined || match.directions.length !== 1) return undefined;
    const address = match.directions[0] === 'dst' ? packet.destination : packet.source;
    return setContains(set, packet.family, address) !== match.negated;
  },
};
