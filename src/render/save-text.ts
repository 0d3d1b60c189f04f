// IR -> exactly the text iptables-save / ip6tables-save print back (without their
// "# Generated/Completed" comment lines): tables, chain declarations, -A lines, COMMIT.
import type { Family } from '../model/address.js';
import { formatBlock } from '../model/address.js';
import { compareBytewise } from '../model/order.js';
import { renderMatch } from '../extensions/registry.js';
import { renderTarget } from '../extensions/targets.js';
import {
  type AddressMatch,
  type Chain,
  type ChainRule,
  type InterfaceMatch,
  type Ruleset,
  type Table,
  BUILTIN_CHAINS,
} from '../ir/ruleset.js';
import type { TextRuleset, TextTable } from '../ir/text-table.js';

function pushAddress(words: string[], option: string, match: AddressMatch | undefined): void {
  if (match === undefined) return;
  // iptables drops any /0 (it matches everything); keep a negated one, which legacy prints.
  if (match.block.prefixLength === 0 && !match.negated) return;
  if (match.negated) words.push('!');
  words.push(option, formatBlock(match.block));
}

function pushInterface(words: string[], option: string, match: InterfaceMatch | undefined): void {
  if (match === undefined || (match.name === '+' && !match.negated)) return;
  if (match.negated) words.push('!');
  words.push(option, match.name);
}

/**
 * The rule's text after `-A <chain> `: IP-header fields in the kernel's fixed order, matches
 * in order, target last. (Each match and target is printed once per object, see renderMatch.)
 */
export function renderRuleSpec(rule: ChainRule, family: Family): string {
  if (rule.kind === 'opaque') return rule.text;
  const words: string[] = [];
  pushAddress(words, '-s', rule.source);
  pushAddress(words, '-d', rule.destination);
  pushInterface(words, '-i', rule.inInterface);
  pushInterface(words, '-o', rule.outInterface);
  if (rule.protocol !== undefined) {
    if (rule.protocol.negated) words.push('!');
    words.push('-p', rule.protocol.name);
  }
  for (const match of rule.matches) words.push(renderMatch(match, family));
  if (rule.target !== undefined) words.push(renderTarget(rule.target));
  return words.join(' ');
}

// Rules arrays are never changed once built, and the agent's compile reuses those of chains
// whose inputs did not change: their text is rendered once, not every cycle.
const specsCache: Record<Family, WeakMap<readonly ChainRule[], readonly string[]>> = { 4: new WeakMap(), 6: new WeakMap() };

/** The text after `-A <chain> ` of every rule of a chain, in order. */
export function chainSpecs(rules: readonly ChainRule[], family: Family): readonly string[] {
  let specs = specsCache[family].get(rules);
  if (specs === undefined) {
    specs = rules.map((rule) => renderRuleSpec(rule, family));
    specsCache[family].set(rules, specs);
  }
  return specs;
}

export function renderRule(chain: string, rule: ChainRule, family: Family): string {
  const spec = renderRuleSpec(rule, family);
  return spec === '' ? `-A ${chain}` : `-A ${chain} ${spec}`;
}

/** Built-in chains in hook order, then user chains in strcmp order. */
export function orderChains(table: Table): Chain[] {
  const builtins = BUILTIN_CHAINS[table.name] ?? [];
  const byName = new Map(table.chains.map((chain) => [chain.name, chain]));
  const ordered: Chain[] = [];
  for (const name of builtins) {
    const chain = byName.get(name);
    if (chain) ordered.push(chain);
  }
  const user = table.chains.filter((chain) => !builtins.includes(chain.name));
  user.sort((a, b) => compareBytewise(a.name, b.name));
  return ordered.concat(user);
}

export function renderTable(table: Table, family: Family): string {
  const chains = orderChains(table);
  const lines = [`*${table.name}`];
  for (const chain of chains) lines.push(`:${chain.name} ${chain.policy ?? '-'} [0:0]`);
  for (const chain of chains) {
    const specs = chainSpecs(chain.rules, family);
    if (specs.length === 0) continue;
    // One join per chain (a rule without a spec, `-A <chain>` alone, is rare).
    if (specs.includes('')) for (const spec of specs) lines.push(spec === '' ? `-A ${chain.name}` : `-A ${chain.name} ${spec}`);
    else lines.push(`-A ${chain.name} ${specs.join(`\n-A ${chain.name} `)}`);
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

export function renderRuleset(ruleset: Ruleset): string {
  return ruleset.tables.map((table) => renderTable(table, ruleset.family)).join('');
}

/** Whether two rulesets render to the same text (without rendering what they share). */
export function sameRendering(a: Ruleset, b: Ruleset): boolean {
  if (a.family !== b.family || a.tables.length !== b.tables.length) return false;
  return a.tables.every((table, index) => {
    const other = b.tables[index] as Table;
    if (table.name !== other.name || table.chains.length !== other.chains.length) return false;
    const others = new Map(other.chains.map((chain) => [chain.name, chain]));
    return table.chains.every((chain) => {
      const twin = others.get(chain.name);
      if (twin === undefined || (chain.policy ?? '-') !== (twin.policy ?? '-')) return false;
      if (twin.rules === chain.rules) return true;
      const [x, y] = [chainSpecs(chain.rules, a.family), chainSpecs(twin.rules, a.family)];
      return x.length === y.length && x.every((spec, i) => spec === y[i]);
    });
  });
}

/** A table as text: each chain's rule texts, in the ruleset's chain order. */
export function textTable(table: Table, family: Family): TextTable {
  return {
    name: table.name,
    chains: new Map(
      table.chains.map((chain) => [
        chain.name,
        { name: chain.name, policy: chain.policy ?? '-', specs: chainSpecs(chain.rules, family) },
      ]),
    ),
  };
}

/** A ruleset as text, as diff and reconcile compare it with the live state. */
export function textRuleset(ruleset: Ruleset): TextRuleset {
  return {
    family: ruleset.family,
    tables: ruleset.tables.map((table) => textTable(table, ruleset.family)),
    sets: ruleset.sets ?? [],
  };
}
