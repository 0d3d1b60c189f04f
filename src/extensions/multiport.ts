// -m multiport: --dports / --sports / --ports, a comma list of ports and a:b ranges (a < b),
// printed exactly in the order given; at most 15 slots, a range taking two.
import type { MultiportMatch } from '../ir/matches.js';
import { inSpan, type MatchExtension, negation, optionsByName } from './extension.js';
import { parsePortSpan } from './tcp-udp.js';

export const MULTIPORT_SLOTS = 15;

/** Slots a port list takes in the kernel's multiport match. */
export function multiportSlots(ports: readonly { start: number; end: number }[]): number {
  return ports.reduce((slots, port) => slots + (port.start === port.end ? 1 : 2), 0);
}

const ALIASES = { 'source-ports': 'sports', 'destination-ports': 'dports' };

export const multiportExtension: MatchExtension<MultiportMatch> = {
  module: 'multiport',
  options: { sports: 1, dports: 1, ports: 1, 'source-ports': 1, 'destination-ports': 1 },
  render(match) {
    const list = match.ports.map(({ start, end }) => (start === end ? `${start}` : `${start}:${end}`)).join(',');
    return `-m multiport ${negation(match.negated)}--${match.direction} ${list}`;
  },
  parse(options) {
    const byName = optionsByName(options, ALIASES, ['sports', 'dports', 'ports']);
    const [option, ...others] = byName?.values() ?? [];
    if (option === undefined || others.length > 0) return undefined;
    const ports: { start: number; end: number }[] = [];
    for (const item of (option.values[0] ?? '').split(',')) {
      const span = parsePortSpan(item);
      // a:a is refused by multiport; an open a: or :b is not something it prints.
      if (span === undefined || (item.includes(':') && (span.start >= span.end || item.startsWith(':') || item.endsWith(':'))))
        return undefined;
      ports.push(span);
    }
    if (multiportSlots(ports) > MULTIPORT_SLOTS) return undefined;
    return { kind: 'multiport', direction: option.name as MultiportMatch['direction'], ports, negated: option.negated };
  },
  test(match, packet) {
    const candidates =
      match.direction === 'sports'
        ? [packet.sourcePort]
        : match.direction === 'dports'
          ? [packet.destinationPort]
          : [packet.sourcePort, packet.destinationPort];
    if (candidates.some((port) => port === undefined)) return undefined;
    const hit = match.ports.some(({ start, end }) => candidates.some((port) => inSpan(port as number, start, end, false)));
    return hit !== match.negated;
  },
};
