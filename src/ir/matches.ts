// Matches asgc speaks. Each kind has one extension module (src/extensions) that renders it
// canonically, reads it back, and says what it means for a packet.
import type { RangeBlock } from '../model/address.js';

export interface PortCondition {
  readonly start: number;
  readonly end: number;
  readonly negated: boolean;
}

export interface TcpUdpMatch {
  readonly kind: 'tcp' | 'udp';
  readonly sport?: PortCondition;
  readonly dport?: PortCondition;
}

/** -m icmp: type 0-254, or 255 = any; code undefined = every code of the type. */
export interface IcmpMatch {
  readonly kind: 'icmp';
  readonly type: number;
  readonly code?: number;
  readonly negated: boolean;
}

/** -m icmp6: there is no "any" type in the kernel. */
export interface Icmp6Match {
  readonly kind: 'icmp6';
  readonly type: number;
  readonly code?: number;
  readonly negated: boolean;
}

/** -m multiport: up to 15 slots, a range taking two; printed in the order given. */
export interface MultiportMatch {
  readonly kind: 'multiport';
  readonly direction: 'sports' | 'dports' | 'ports';
  readonly ports: readonly { readonly start: number; readonly end: number }[];
  readonly negated: boolean;
}

export interface AddressRangeCondition {
  readonly block: RangeBlock;
  readonly negated: boolean;
}

export interface IprangeMatch {
  readonly kind: 'iprange';
  readonly source?: AddressRangeCondition;
  readonly destination?: AddressRangeCondition;
}

export interface CommentMatch {
  readonly kind: 'comment';
  /** At most 255 bytes of UTF-8, no control characters (see extensions/comment). */
  readonly text: string;
}

export const CONNTRACK_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
export type ConntrackState = (typeof CONNTRACK_STATES)[number];

/** -m state --state or -m conntrack --ctstate; states kept in the kernel's print order. */
export interface StateMatch {
  readonly kind: 'state' | 'conntrack';
  readonly states: readonly ConntrackState[];
  readonly negated: boolean;
}

export const RATE_UNITS = ['sec', 'min', 'hour', 'day'] as const;
export type RateUnit = (typeof RATE_UNITS)[number];

export interface Rate {
  readonly count: number;
  readonly unit: RateUnit;
}

export interface LimitMatch {
  readonly kind: 'limit';
  readonly rate: Rate;
  readonly burst: number;
}

/** -m mark: (packet mark & mask) == value. */
export interface MarkMatch {
  readonly kind: 'mark';
  readonly value: number;
  readonly mask: number;
  readonly negated: boolean;
}

export const HASHLIMIT_MODES = ['srcip', 'srcport', 'dstip', 'dstport'] as const;
export type HashlimitMode = (typeof HASHLIMIT_MODES)[number];

/** -m hashlimit in packet mode; asgc models the options it writes (no masks or table sizes). */
export interface HashlimitMatch {
  readonly kind: 'hashlimit';
  readonly over: 'upto' | 'above';
  readonly rate: Rate;
  readonly burst: number;
  /** In the kernel's print order. */
  readonly modes: readonly HashlimitMode[];
  readonly name: string;
  readonly expireMs: number;
}

/** -m set --match-set: membership of the packet's source or destination in a named ipset. */
export interface SetMatch {
  readonly kind: 'set';
  readonly name: string;
  /** One direction per set dimension, as written: `dst`, `src` or e.g. `dst,src`. */
  readonly directions: readonly ('src' | 'dst')[];
  readonly negated: boolean;
}

/**
 * -m rpfilter: whether the packet's source is routed back out of the interface it came in on
 * (strict reverse path), the rule matching when it is not (`--invert`).
 */
export interface RpfilterMatch {
  readonly kind: 'rpfilter';
  readonly loose: boolean;
  readonly validmark: boolean;
  readonly acceptLocal: boolean;
  readonly invert: boolean;
}

export type Match =
  | RpfilterMatch
  | SetMatch
  | TcpUdpMatch
  | MultiportMatch
  | IcmpMatch
  | Icmp6Match
  | IprangeMatch
  | CommentMatch
  | StateMatch
  | LimitMatch
  | MarkMatch
  | HashlimitMatch;
