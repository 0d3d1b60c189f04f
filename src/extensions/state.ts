// -m state --state / -m conntrack --ctstate, states in the kernel's fixed print order.
import { CONNTRACK_STATES, type ConntrackState, type StateMatch } from '../ir/matches.js';
import { type MatchExtension, negation } from './extension.js';

export function stateMatch(kind: StateMatch['kind'], states: readonly ConntrackState[], negated = false): StateMatch {
  const ordered = CONNTRACK_STATES.filter((state) => states.includes(state));
  return { kind, states: ordered, negated };
}

export const stateExtension: MatchExtension<StateMatch> = {
  render(match) {
    const option = match.kind === 'state' ? '--state' : '--ctstate';
    return `-m ${match.kind} ${negation(match.negated)}${option} ${match.states.join(',')}`;
  },
};
