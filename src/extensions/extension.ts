// The contract every iptables extension module implements for the match kind it owns.
import type { Family } from '../model/address.js';
import type { Match } from '../ir/matches.js';

export interface MatchExtension<M extends Match> {
  /** Render canonically, as iptables-save prints it, starting with `-m <module>`. */
  render(match: M, family: Family): string;
}

export function negation(negated: boolean): string {
  return negated ? '! ' : '';
}
