// A packet as the evaluator sees it: the header fields iptables matches on, plus what the
// kernel knows about it (its conntrack state, its mark, the interfaces it crosses).
import type { Family } from '../model/address.js';
import type { ConntrackState } from './matches.js';

export interface Packet {
  readonly family: Family;
  readonly source: bigint;
  readonly destination: bigint;
  /** IP protocol number: 6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp. */
  readonly protocol: number;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly state: ConntrackState;
  readonly mark: number;
  /** Unknown when absent: a rule that matches on it then makes the verdict unknown. */
  readonly inInterface?: string;
  readonly outInterface?: string;
}

export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

/** The protocol number `-p NAME` stands for, or undefined when asgc does not know the name. */
export function protocolNumber(name: string): number | undefined {
  if (/^(0|[1-9][0-9]{0,2})$/.test(name) && Number(name) <= 255) return Number(name);
  return PROTOCOL_NUMBERS[name.toLowerCase()];
}
