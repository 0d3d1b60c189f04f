// -m tcp / -m udp: --sport before --dport, `a` for a:a, whole range 0:65535 omitted.
import type { PortCondition, TcpUdpMatch } from '../ir/matches.js';
import { type MatchExtension, negation } from './extension.js';

function portOption(name: string, condition: PortCondition | undefined): string {
  if (condition === undefined || (condition.start === 0 && condition.end === 65535 && !condition.negated)) return '';
  const span = condition.start === condition.end ? `${condition.start}` : `${condition.start}:${condition.end}`;
  return ` ${negation(condition.negated)}--${name} ${span}`;
}

export const tcpUdpExtension: MatchExtension<TcpUdpMatch> = {
  render(match) {
    return `-m ${match.kind}${portOption('sport', match.sport)}${portOption('dport', match.dport)}`;
  },
};
