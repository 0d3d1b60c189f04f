// Match kind and module name -> the extension module that owns it.
import type { Family } from '../model/address.js';
import type { Match } from '../ir/matches.js';
import type { Packet } from '../ir/packet.js';
import { commentExtension } from './comment.js';
import type { MatchContext, MatchExtension } from './extension.js';
import { icmpExtension } from './icmp.js';
import { icmp6Extension } from './icmp6.js';
import { iprangeExtension } from './iprange.js';
import { hashlimitExtension } from './hashlimit.js';
import { limitExtension } from './limit.js';
import { markExtension } from './mark.js';
import { multiportExtension } from './multiport.js';
import { rpfilterExtension } from './rpfilter.js';
import { setExtension } from './set.js';
import { conntrackExtension, stateExtension } from './state.js';
import { tcpExtension, udpExtension } from './tcp-udp.js';

/** The match type(s) whose kind includes K (tcp and udp share TcpUdpMatch). */
type MatchOfKind<K extends Match['kind'], M = Match> = M extends Match ? (K extends M['kind'] ? M : never) : never;
type ExtensionFor = { [K in Match['kind']]: MatchExtension<MatchOfKind<K>> };

const BY_KIND: ExtensionFor = {
  rpfilter: rpfilterExtension,
  set: setExtension,
  tcp: tcpExtension,
  udp: udpExtension,
  multiport: multiportExtension,
  icmp: icmpExtension,
  icmp6: icmp6Extension,
  iprange: iprangeExtension,
  comment: commentExtension,
  state: stateExtension,
  conntrack: conntrackExtension,
  limit: limitExtension,
  mark: markExtension,
  hashlimit: hashlimitExtension,
};

const BY_MODULE = new Map<string, MatchExtension<Match>>(
  Object.values(BY_KIND).map((extension) => [extension.module, extension as MatchExtension<Match>]),
);

// Matches are never changed once built, and the compiler shares one match object among all the
// rules one ASG rule expands to, which follow each other: the last match printed of each kind
// is remembered, and printed again only when another object comes.
const lastPrinted: Record<Family, Map<Match['kind'], { readonly match: Match; readonly text: string }>> = {
  4: new Map(),
  6: new Map(),
};

/** The match as iptables-save prints it. */
export function renderMatch(match: Match, family: Family): string {
  const last = lastPrinted[family].get(match.kind);
  if (last?.match === match) return last.text;
  const text = (BY_KIND[match.kind] as MatchExtension<Match>).render(match, family);
  lastPrinted[family].set(match.kind, { match, text });
  return text;
}

/** Whether the match matches the packet, as the kernel's module decides; undefined when unknowable. */
export function testMatch(match: Match, packet: Packet, context: MatchContext): boolean | undefined {
  return (BY_KIND[match.kind] as MatchExtension<Match>).test(match, packet, context);
}

/** The extension for `-m <module>`, if asgc speaks it. */
export function matchExtension(module: string): MatchExtension<Match> | undefined {
  return BY_MODULE.get(module);
}

/** The match a protocol loads implicitly (`-p tcp --dport 80` means `-m tcp`). */
export const IMPLICIT_MODULE: Readonly<Record<string, string>> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', 'ipv6-icmp': 'icmp6' };
