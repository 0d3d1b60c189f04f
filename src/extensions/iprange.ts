// -m iprange: --src-range before --dst-range, both ends printed as plain addresses.
import type { AddressRangeCondition, IprangeMatch } from '../ir/matches.js';
import { formatBlock } from '../model/address.js';
import { type MatchExtension, negation } from './extension.js';

function rangeOption(name: string, condition: AddressRangeCondition | undefined): string {
  if (condition === undefined) return '';
  return ` ${negation(condition.negated)}--${name} ${formatBlock(condition.block)}`;
}

export const iprangeExtension: MatchExtension<IprangeMatch> = {
  render(match) {
    return `-m iprange${rangeOption('src-range', match.source)}${rangeOption('dst-range', match.destination)}`;
  },
};
