// -m mark: values in lower-case hex without leading zeros; a full mask (0xffffffff) is not printed.
import type { MarkMatch } from '../ir/matches.js';
import { type MatchExtension, negation, optionsByName } from './extension.js';

export const FULL_MASK = 0xffffffff;

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

/** A 32-bit number as strtoul(…, 0) reads it: 0x… hex, 0… octal, else decimal. */
export function parseMarkNumber(text: string): number | undefined {
  let value: number;
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number(text);
  else return undefined;
  return value <= FULL_MASK ? value : undefined;
}

/** `value[/mask]`, the mask defaulting to all ones. */
export function parseValueMask(text: string): { value: number; mask: number } | undefined {
  const [valueText, maskText, extra] = text.split('/');
  const value = parseMarkNumber(valueText ?? '');
  const mask = maskText === undefined ? FULL_MASK : parseMarkNumber(maskText);
  return value === undefined || mask === undefined || extra !== undefined ? undefined : { value, mask };
}

export function markMatch(value: number, mask = FULL_MASK, negated = false): MarkMatch {
  return { kind: 'mark', value, mask, negated };
}

export const markExtension: MatchExtension<MarkMatch> = {
  module: 'mark',
  options: { mark: 1 },
  render(match) {
    const mask = match.mask === FULL_MASK ? '' : `/${hex(match.mask)}`;
    return `-m mark ${negation(match.negated)}--mark ${hex(match.value)}${mask}`;
  },
  parse(options) {
    const option = optionsByName(options, {}, ['mark'])?.get('mark');
    const parsed = option && parseValueMask(option.values[0] ?? '');
    return option && parsed ? markMatch(parsed.value, parsed.mask, option.negated) : undefined;
  },
  test: (match, packet) => ((packet.mark & match.mask) >>> 0 === match.value) !== match.negated,
};
