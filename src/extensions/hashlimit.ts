// -m hashlimit (packet-rate mode): --hashlimit-upto|above R --hashlimit-burst B (always
// printed) [--hashlimit-mode M] --hashlimit-name N [--hashlimit-htable-expire E], where the
// expiry is printed only when it differs from 1000 ms x the printed rate's unit.
import { HASHLIMIT_MODES, type HashlimitMatch, type HashlimitMode, type RateUnit } from '../ir/matches.js';
import { type MatchExtension, optionsByName, parseInteger } from './extension.js';
import { canonicalRate, parseRate, SECONDS_PER_UNIT } from './limit.js';

export function hashlimitMatch(
  fields: Omit<HashlimitMatch, 'kind' | 'rate' | 'modes'> & { count: number; unit: RateUnit; modes: readonly HashlimitMode[] },
): HashlimitMatch {
  const { count, unit, modes, ...rest } = fields;
  return {
    kind: 'hashlimit',
    ...rest,
    rate: canonicalRate(count, unit),
    modes: HASHLIMIT_MODES.filter((mode) => modes.includes(mode)),
  };
}

const ALIASES = { hashlimit: 'hashlimit-upto' };

export const hashlimitExtension: MatchExtension<HashlimitMatch> = {
  module: 'hashlimit',
  options: {
    hashlimit: 1,
    'hashlimit-upto': 1,
    'hashlimit-above': 1,
    'hashlimit-burst': 1,
    'hashlimit-mode': 1,
    'hashlimit-name': 1,
    'hashlimit-htable-expire': 1,
    'hashlimit-htable-size': 1,
    'hashlimit-htable-max': 1,
    'hashlimit-htable-gcinterval': 1,
    'hashlimit-srcmask': 1,
    'hashlimit-dstmask': 1,
  },
  render(match) {
    const modes = match.modes.length === 0 ? '' : ` --hashlimit-mode ${match.modes.join(',')}`;
    const expire =
      match.expireMs === 1000 * SECONDS_PER_UNIT[match.rate.unit] ? '' : ` --hashlimit-htable-expire ${match.expireMs}`;
    return `-m hashlimit --hashlimit-${match.over} ${match.rate.count}/${match.rate.unit} --hashlimit-burst ${match.burst}${modes} --hashlimit-name ${match.name}${expire}`;
  },
  parse(options) {
    const byName = optionsByName(options, ALIASES);
    if (byName === undefined) return undefined;
    const allowed = new Set([
      'hashlimit-upto',
      'hashlimit-above',
      'hashlimit-burst',
      'hashlimit-mode',
      'hashlimit-name',
      'hashlimit-htable-expire',
      'hashlimit-htable-gcinterval',
    ]);
    if ([...byName.keys()].some((name) => !allowed.has(name))) return undefined;
    if (byName.has('hashlimit-htable-gcinterval') && byName.get('hashlimit-htable-gcinterval')?.values[0] !== '1000')
      return undefined;
    const over = byName.has('hashlimit-above') ? 'above' : 'upto';
    if (byName.has('hashlimit-above') === byName.has('hashlimit-upto')) return undefined;
    const rate = parseRate(byName.get(`hashlimit-${over}`)?.values[0] ?? '');
    const burst = parseInteger(byName.get('hashlimit-burst')?.values[0] ?? '5', 1, 1_000_000);
    const name = byName.get('hashlimit-name')?.values[0];
    const modes = (byName.get('hashlimit-mode')?.values[0] ?? '').split(',').filter((mode) => mode !== '');
    if (
      !rate ||
      burst === undefined ||
      !name ||
      !modes.every((mode): mode is HashlimitMode => (HASHLIMIT_MODES as readonly string[]).includes(mode))
    )
      return undefined;
    // Without an explicit expiry the kernel keeps 1000 ms x the unit as written.
    const expireText = byName.get('hashlimit-htable-expire')?.values[0];
    const expireMs = expireText === undefined ? 1000 * SECONDS_PER_UNIT[rate.unit] : parseInteger(expireText, 1, 2 ** 31);
    if (expireMs === undefined) return undefined;
    return hashlimitMatch({ over, count: rate.count, unit: rate.unit, burst, modes, name, expireMs });
  },
  // Rates are assumed not exceeded: --hashlimit-upto matches, --hashlimit-above does not.
  test: (match) => match.over === 'upto',
};
