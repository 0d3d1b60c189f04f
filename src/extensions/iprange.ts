// -m iprange: --src-range before --dst-range, both ends printed as plain addresses.
import type { AddressRangeCondition, IprangeMatch } from '../ir/matches.js';
import { type Family, formatBlock, parseAddress, range } from '../model/address.js';
import { inSpan, type MatchExtension, negation, optionsByName, type ParsedOption } from './extension.js';

function rangeOption(name: string, condition: AddressRangeCondition | undefined): string {
  if (condition === undefined) return '';
  return ` ${negation(condition.negated)}--${name} ${formatBlock(condition.block)}`;
}

/** `a-b`, or a single address meaning `a-a`; both of the rule's family. */
function parseRange(option: ParsedOption | undefined, family: Family): AddressRangeCondition | undefined | null {
  if (option === undefined) return undefined;
  const [startText, endText, extra] = (option.values[0] ?? '').split('-');
  if (startText === undefined || extra !== undefined) return null;
  const start = parseAddress(startText);
  const end = parseAddress(endText ?? startText);
  if (!start.ok || !end.ok || start.value.family !== family || end.value.family !== family) return null;
  // A reversed range loads (and never matches); asgc leaves such a rule opaque.
  if (start.value.value > end.value.value) return null;
  return { block: range(family, start.value.value, end.value.value), negated: option.negated };
}

export const iprangeExtension: MatchExtension<IprangeMatch> = {
  module: 'iprange',
  options: { 'src-range': 1, 'dst-range': 1 },
  render(match) {
    return `-m iprange${rangeOption('src-range', match.source)}${rangeOption('dst-range', match.destination)}`;
  },
  parse(options, family) {
    const byName = optionsByName(options, {}, ['src-range', 'dst-range']);
    if (byName === undefined || byName.size === 0) return undefined;
    const source = parseRange(byName.get('src-range'), family);
    const destination = parseRange(byName.get('dst-range'), family);
    if (source === null || destination === null) return undefined;
    return { kind: 'iprange', ...(source && { source }), ...(destination && { destination }) };
  },
  test(match, packet) {
    for (const [condition, address] of [
      [match.source, packet.source],
      [match.destination, packet.destination],
    ] as const) {
      if (condition !== undefined && !inSpan(address, condition.block.start, condition.block.end, condition.negated))
        return false;
    }
    return true;
  },
};
