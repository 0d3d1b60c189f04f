// -m limit: the rate in the largest unit that divides it exactly; the default burst 5 is omitted.
import type { LimitMatch, Rate, RateUnit } from '../ir/matches.js';
import { type MatchExtension, optionsByName, parseInteger } from './extension.js';

export const DEFAULT_LIMIT_BURST = 5;

export const SECONDS_PER_UNIT: Record<RateUnit, number> = { sec: 1, min: 60, hour: 3600, day: 86400 };
const UNIT_NAMES: Readonly<Record<string, RateUnit>> = {
  s: 'sec',
  sec: 'sec',
  second: 'sec',
  m: 'min',
  min: 'min',
  minute: 'min',
  h: 'hour',
  hour: 'hour',
  d: 'day',
  day: 'day',
};

/** A rate of `count` per `unit`, restated as iptables-save prints it (120/hour -> 2/min). */
export function canonicalRate(count: number, unit: RateUnit): Rate {
  const perDay = count * (SECONDS_PER_UNIT.day / SECONDS_PER_UNIT[unit]);
  for (const candidate of ['sec', 'min', 'hour'] as const) {
    const perCandidate = perDay / (SECONDS_PER_UNIT.day / SECONDS_PER_UNIT[candidate]);
    if (Number.isInteger(perCandidate)) return { count: perCandidate, unit: candidate };
  }
  return { count: perDay, unit: 'day' };
}

/** `N/unit` as written (`5/s`, `10/minute`, `3` meaning per second): count and unit, not yet canonical. */
export function parseRate(text: string): { count: number; unit: RateUnit } | undefined {
  const [countText, unitText, extra] = text.split('/');
  const count = parseInteger(countText, 1, 1_000_000);
  const unit = UNIT_NAMES[unitText ?? 'sec'];
  return count === undefined || unit === undefined || extra !== undefined ? undefined : { count, unit };
}

export function limitMatch(count: number, unit: RateUnit, burst: number): LimitMatch {
  return { kind: 'limit', rate: canonicalRate(count, unit), burst };
}

export const limitExtension: MatchExtension<LimitMatch> = {
  module: 'limit',
  options: { limit: 1, 'limit-burst': 1 },
  render(match) {
    const burst = match.burst === DEFAULT_LIMIT_BURST ? '' : ` --limit-burst ${match.burst}`;
    return `-m limit --limit ${match.rate.count}/${match.rate.unit}${burst}`;
  },
  parse(options) {
    const byName = optionsByName(options, {});
    if (byName === undefined) return undefined;
    const rate = parseRate(byName.get('limit')?.values[0] ?? '3/hour');
    const burst = parseInteger(byName.get('limit-burst')?.values[0] ?? `${DEFAULT_LIMIT_BURST}`, 1, 10_000);
    if (rate === undefined || burst === undefined) return undefined;
    return limitMatch(rate.count, rate.unit, burst);
  },
  // Rates are assumed not exceeded: the evaluator answers for one packet, not for a flood.
  test: () => true,
};
