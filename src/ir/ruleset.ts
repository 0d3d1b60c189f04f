// The one ruleset type shared by compile, render, parse, diff and check:
// tables -> chains -> rules (IP-header fields, matches in order, target).
import type { CidrBlock, Family } from '../model/address.js';
import type { AsgRuleOrigin } from '../model/asg.js';
import type { IpSet } from './ipset.js';
import type { Match } from './matches.js';
import type { Target } from './targets.js';

export interface AddressMatch {
  readonly block: CidrBlock;
  readonly negated: boolean;
}

export interface InterfaceMatch {
  readonly name: string;
  readonly negated: boolean;
}

export interface ProtocolMatch {
  /** As iptables-save prints it: tcp, udp, icmp, ipv6-icmp, ... or a number. */
  readonly name: string;
  readonly negated: boolean;
}

/** Why a compiled rule exists; never rendered, kept for `asgc check` and error messages. */
export type RuleOrigin =
  | ({ readonly kind: 'asg' } & AsgRuleOrigin)
  | { readonly kind: 'deny-network'; readonly list: 'always' | 'running' | 'staging' }
  | {
      readonly kind: 'c2c';
      readonly sourceApp: string;
      readonly destinationApp: string;
      readonly protocol: string;
      readonly ports: { readonly start: number; readonly end: number };
    }
  | { readonly kind: 'layout'; readonly role: string };

/** Absent fields may be left out or be undefined (hot paths build every rule with one shape). */
export interface Rule {
  readonly kind: 'rule';
  readonly source?: AddressMatch | undefined;
  readonly destination?: AddressMatch | undefined;
  readonly inInterface?: InterfaceMatch | undefined;
  readonly outInterface?: InterfaceMatch | undefined;
  readonly protocol?: ProtocolMatch | undefined;
  readonly matches: readonly Match[];
  readonly target?: Target | undefined;
  readonly origin?: RuleOrigin | undefined;
}

/** A rule read from the live state that asgc does not model; kept verbatim, never lost. */
export interface OpaqueRule {
  readonly kind: 'opaque';
  /** The rule's text after `-A <chain> `, exactly as iptables-save printed it. */
  readonly text: string;
}

export type ChainRule = Rule | OpaqueRule;

export type Policy = 'ACCEPT' | 'DROP';

export interface Chain {
  readonly name: string;
  /** Built-in chains only. */
  readonly policy?: Policy;
  readonly rules: readonly ChainRule[];
}

export interface Table {
  readonly name: string;
  readonly chains: readonly Chain[];
}

export interface Ruleset {
  readonly family: Family;
  readonly tables: readonly Table[];
  /** The ipsets the rules reference that asgc owns, by name (compiled rulesets only). */
  readonly sets?: readonly IpSet[];
}

/** The ruleset's table of that name, if it has one. */
export function tableNamed(ruleset: Ruleset, name: string): Table | undefined {
  return ruleset.tables.find((table) => table.name === name);
}

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export function isBuiltinChain(table: string, chain: string): boolean {
  return BUILTIN_CHAINS[table]?.includes(chain) ?? false;
}

export function rule(fields: Omit<Rule, 'kind' | 'matches'> & { matches?: readonly Match[] }): Rule {
  return { kind: 'rule', matches: [], ...fields };
}
