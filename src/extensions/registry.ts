// Match kind -> the extension module that owns it.
import type { Family } from '../model/address.js';
import type { Match } from '../ir/matches.js';
import { commentExtension } from './comment.js';
import type { MatchExtension } from './extension.js';
import { icmpExtension } from './icmp.js';
import { icmp6Extension } from './icmp6.js';
import { iprangeExtension } from './iprange.js';
import { limitExtension } from './limit.js';
import { stateExtension } from './state.js';
import { tcpUdpExtension } from './tcp-udp.js';

type ExtensionFor = { [K in Match['kind']]: MatchExtension<Extract<Match, { kind: K }>> };

const EXTENSIONS: ExtensionFor = {
  tcp: tcpUdpExtension,
  udp: tcpUdpExtension,
  icmp: icmpExtension,
  icmp6: icmp6Extension,
  iprange: iprangeExtension,
  comment: commentExtension,
  state: stateExtension,
  conntrack: stateExtension,
  limit: limitExtension,
};

export function renderMatch(match: Match, family: Family): string {
  return (EXTENSIONS[match.kind] as MatchExtension<Match>).render(match, family);
}
