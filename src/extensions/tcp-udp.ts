// -m tcp / -m udp: --sport before --dport, `a` for a:a, whole range 0:65535 omitted.
import type { PortCondition, TcpUdpMatch } from '../ir/matches.js';
import { inSpan, type MatchExtension, negation, optionsByName, type ParsedOption, parseInteger } from './extension.js';

function portOption(name: string, condition: PortCondition | undefined): string {
  if (condition === undefined || (condition.start === 0 && condition.end === 65535 && !condition.negated)) return '';
  const span = condition.start === condition.end ? `${condition.start}` : `${condition.start}:${condition.end}`;
  return ` ${negation(condition.negated)}--${name} ${span}`;
}

/** `a`, `a:b`, `:b` (0:b) or `a:` (a:65535); numbers only. */
export function parsePortSpan(text: string): { start: number; end: number } | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const port = parseInteger(text, 0, 65535);
    return port === undefined ? undefined : { start: port, end: port };
  }
  const start = colon === 0 ? 0 : parseInteger(text.slice(0, colon), 0, 65535);
  const end = colon === text.length - 1 ? 65535 : parseInteger(text.slice(colon + 1), 0, 65535);
  return start === undefined || end === undefined || start > end ? undefined : { start, end };
}

function portCondition(option: ParsedOption | undefined): PortCondition | undefined | null {
  if (option === undefined) return undefined;
  const span = parsePortSpan(option.values[0] ?? '');
  return span === undefined ? null : { ...span, negated: option.negated };
}

const ALIASES = { 'source-port': 'sport', 'destination-port': 'dport' };
const PROTOCOL = { tcp: 6, udp: 17 } as const;
const OPTIONS = { sport: 1, dport: 1, 'source-port': 1, 'destination-port': 1, 'tcp-flags': 2, syn: 0, 'tcp-option': 1 };

function extension(kind: 'tcp' | 'udp'): MatchExtension<TcpUdpMatch> {
  return {
    module: kind,
    options: kind === 'tcp' ? OPTIONS : { sport: 1, dport: 1, 'source-port': 1, 'destination-port': 1 },
    render(match) {
      return `-m ${match.kind}${portOption('sport', match.sport)}${portOption('dport', match.dport)}`;
    },
    parse(options) {
      const byName = optionsByName(options, ALIASES, ['sport', 'dport']);
      if (byName === undefined || [...byName.keys()].some((name) => name !== 'sport' && name !== 'dport')) return undefined;
      const sport = portCondition(byName.get('sport'));
      const dport = portCondition(byName.get('dport'));
      if (sport === null || dport === null) return undefined;
      return { kind, ...(sport && { sport }), ...(dport && { dport }) };
    },
    test(match, packet) {
      if (packet.protocol !== PROTOCOL[kind]) return false;
      for (const [condition, port] of [
        [match.sport, packet.sourcePort],
        [match.dport, packet.destinationPort],
      ] as const) {
        if (condition === undefined) continue;
        if (port === undefined) return undefined;
        if (!inSpan(port, condition.start, condition.end, condition.negated)) return false;
      }
      return true;
    },
  };
}

export const tcpExtension = extension('tcp');
export const udpExtension = extension('udp');
