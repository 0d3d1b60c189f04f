// Rulesets as text: each chain's rules as iptables-save prints them after `-A <chain> `. What
// the live state is read into, what the desired IR renders to, and what diff and reconcile
// compare; rules are parsed into the IR only where two texts differ.
import type { Family } from '../model/address.js';
import type { IpSet } from './ipset.js';

export interface TextChain {
  readonly name: string;
  /** ACCEPT/DROP for built-in chains, '-' for user chains. */
  readonly policy: string;
  readonly specs: readonly string[];
}

export interface TextTable {
  readonly name: string;
  /** In declaration order. Built-in chains of a desired table hold only asgc's hook rules. */
  readonly chains: ReadonlyMap<string, TextChain>;
}

export interface TextRuleset {
  readonly family: Family;
  readonly tables: readonly TextTable[];
  /** The ipsets asgc owns that the rules name. */
  readonly sets: readonly IpSet[];
}
