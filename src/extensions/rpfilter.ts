// -m rpfilter: the kernel's reverse-path check. asgc writes the strict form, `--invert`: the rule
// matches a packet whose source would not be routed back out of the interface it came in on.
// What that means for a packet depends on the host's routes, which the evaluator asks of its
// context (undefined there: the verdict is unknown).
import type { RpfilterMatch } from '../ir/matches.js';
import { type MatchExtension, optionsByName } from './extension.js';

/** The strict check, matching spoofed packets. */
export const SPOOFED: RpfilterMatch = { kind: 'rpfilter', loose: false, validmark: false, acceptLocal: false, invert: true };

const FLAGS = ['loose', 'validmark', 'accept-local', 'invert'] as const;

export const rpfilterExtension: MatchExtension<RpfilterMatch> = {
  module: 'rpfilter',
  options: { loose: 0, validmark: 0, 'accept-local': 0, invert: 0 },
  render(match) {
    const set = [match.loose, match.validmark, match.acceptLocal, match.invert];
    return ['-m rpfilter', ...FLAGS.filter((_, index) => set[index]).map((flag) => `--${flag}`)].join(' ');
  },
  parse(options) {
    const byName = optionsByName(options, {});
    if (byName === undefined) return undefined;
    return {
      kind: 'rpfilter',
      loose: byName.has('loose'),
      validmark: byName.has('validmark'),
      acceptLocal: byName.has('accept-local'),
      invert: byName.has('invert'),
    };
  },
  test(match, packet, context) {
    // Loose mode, marks and local addresses depend on more than the reverse path asgc models.
    if (match.loose || match.validmark || match.acceptLocal) return undefined;
    const valid = context.reversePath?.(packet);
    return valid === undefined ? undefined : valid !== match.invert;
  },
};
