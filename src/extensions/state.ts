// -m state --state / -m conntrack --ctstate, states in the kernel's fixed print order.
import { CONNTRACK_STATES, type ConntrackState, type StateMatch } from '../ir/matches.js';
import { type MatchExtension, negation, optionsByName } from './extension.js';

export function stateMatch(kind: StateMatch['kind'], states: readonly ConntrackState[], negated = false): StateMatch {
  const ordered = CONNTRACK_STATES.filter((state) => states.includes(state));
  return { kind, states: ordered, negated };
}

function extension(kind: StateMatch['kind']): MatchExtension<StateMatch> {
  const option = kind === 'state' ? 'state' : 'ctstate';
  return {
    module: kind,
    // conntrack has many more options; asgc models --ctstate only and leaves the rest opaque.
    options:
      kind === 'state'
        ? { state: 1 }
        : {
            ctstate: 1,
            ctproto: 1,
            ctorigsrc: 1,
            ctorigdst: 1,
            ctreplsrc: 1,
            ctrepldst: 1,
            ctorigsrcport: 1,
            ctorigdstport: 1,
            ctreplsrcport: 1,
            ctrepldstport: 1,
            ctstatus: 1,
            ctexpire: 1,
            ctdir: 1,
          },
    render(match) {
      return `-m ${kind} ${negation(match.negated)}--${option} ${match.states.join(',')}`;
    },
    parse(options) {
      const byName = optionsByName(options, {}, [option]);
      const given = byName?.get(option);
      if (byName === undefined || byName.size !== 1 || given === undefined) return undefined;
      const states = (given.values[0] ?? '').split(',');
      if (!states.every((state): state is ConntrackState => (CONNTRACK_STATES as readonly string[]).includes(state)))
        return undefined;
      return stateMatch(kind, states, given.negated);
    },
    test: (match, packet) => match.states.includes(packet.state) !== match.negated,
  };
}

export const stateExtension = extension('state');
export const conntrackExtension = extension('conntrack');
