// A strict in-memory dataplane: iptables-restore --noflush semantics for the commands asgc
// writes, atomic per script, failing wherever the kernel would (bad index, missing chain,
// deleting a chain that is referenced or not empty, -D of a rule that is not there).
// It speeds up property tests; the kernel tests remain the judge.
import { canonicalSpec } from '../../src/iptables/rule-parse.js';
import { tokenizeRestoreLine } from '../../src/iptables/tokenize.js';
import { type Dataplane, RestoreError } from '../../src/iptables/dataplane.js';
import type { Family } from '../../src/model/address.js';
import { BUILTIN_CHAINS, isBuiltinChain } from '../../src/ir/ruleset.js';
import { compareBytewise } from '../../src/render/save-text.js';
import { parseSaveText, savedTables } from '../../src/iptables/save-file.js';

interface SimulatedChain {
  policy: string;
  rules: string[];
}

type Table = Map<string, SimulatedChain>;

class Refusal extends Error {}

export class SimulatedDataplane implements Dataplane {
  readonly backend = 'nft' as const;
  readonly restores: { family: Family; script: string }[] = [];
  saves = 0;
  canaryChecks = 0;
  private readonly tables: Record<Family, Table> = { 4: new Map(), 6: new Map() };

  constructor(initial: Partial<Record<Family, string>> = {}) {
    for (const family of [4, 6] as const) {
      const table = this.tables[family];
      for (const name of BUILTIN_CHAINS.filter ?? []) table.set(name, { policy: 'ACCEPT', rules: [] });
      const text = initial[family];
      if (text === undefined) continue;
      const parsed = parseSaveText(text);
      if (!parsed.ok) throw new Error(`bad initial state: ${JSON.stringify(parsed.error)}`);
      for (const chain of savedTables(parsed.value).get('filter')?.chains.values() ?? []) {
        table.set(chain.name, { policy: chain.policy, rules: chain.specs.map((spec) => this.canonical(family, table, spec)) });
      }
    }
  }

  async listChain(family: Family, chain: string): Promise<readonly string[] | undefined> {
    this.canaryChecks++;
    return this.tables[family].get(chain)?.rules.slice();
  }

  /** Someone else's hand: `iptables -F` (every chain emptied, none deleted). */
  flushAll(family: Family): void {
    for (const chain of this.tables[family].values()) chain.rules = [];
  }

  /** Someone else's hand: drop a chain (and every rule jumping to it), as `iptables -F/-X` would. */
  removeChain(family: Family, chain: string): void {
    const table = this.tables[family];
    table.delete(chain);
    for (const entry of table.values()) entry.rules = entry.rules.filter((rule) => !tokenizeRestoreLine(rule).includes(chain));
  }

  async save(family: Family): Promise<string> {
    this.saves++;
    const table = this.tables[family];
    const builtins = (BUILTIN_CHAINS.filter ?? []).filter((name) => table.has(name));
    const user = [...table.keys()].filter((name) => !isBuiltinChain('filter', name)).sort(compareBytewise);
    const names = [...builtins, ...user];
    const lines = ['*filter', ...names.map((name) => `:${name} ${table.get(name)?.policy ?? '-'} [0:0]`)];
    for (const name of names)
      for (const rule of table.get(name)?.rules ?? []) lines.push(rule === '' ? `-A ${name}` : `-A ${name} ${rule}`);
    return `${[...lines, 'COMMIT'].join('\n')}\n`;
  }

  async restore(family: Family, script: string): Promise<void> {
    this.restores.push({ family, script });
    const working: Table = new Map(
      [...this.tables[family]].map(([name, chain]) => [name, { policy: chain.policy, rules: [...chain.rules] }]),
    );
    const lines = script.split('\n');
    let lineNumber = 0;
    try {
      for (const line of lines) {
        lineNumber++;
        if (line === '' || line.startsWith('#') || line === '*filter' || line === 'COMMIT') continue;
        this.execute(family, working, line);
      }
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      throw new RestoreError(family, `line ${lineNumber} failed: ${error.message}`, lineNumber, []);
    }
    this.tables[family] = working;
  }

  private canonical(family: Family, table: Table, spec: string): string {
    return canonicalSpec(spec, family, (name) => table.has(name) && !isBuiltinChain('filter', name));
  }

  private chain(table: Table, name: string | undefined): SimulatedChain {
    const chain = name === undefined ? undefined : table.get(name);
    if (chain === undefined) throw new Refusal(`no chain ${name}`);
    return chain;
  }

  private checkTargets(table: Table, spec: string): void {
    const words = tokenizeRestoreLine(spec);
    const at = words.findIndex((word) => word === '-j' || word === '-g');
    const target = at < 0 ? undefined : words[at + 1];
    if (target !== undefined && /^[a-z]/.test(target) && !table.has(target)) throw new Refusal(`jump to missing chain ${target}`);
  }

  private execute(family: Family, table: Table, line: string): void {
    if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(' ') as [string, string];
      const existing = table.get(name);
      if (isBuiltinChain('filter', name)) {
        if (existing && policy !== '-') existing.policy = policy;
      } else if (existing) existing.rules = [];
      else table.set(name, { policy: '-', rules: [] });
      return;
    }
    const words = line.split(' ');
    const [command, name] = words as [string, string];
    const chain = this.chain(table, name);
    const rest = line.slice(command.length + name.length + 2);
    switch (command) {
      case '-A':
        this.checkTargets(table, rest);
        chain.rules.push(this.canonical(family, table, rest));
        return;
      case '-I': {
        const index = Number(words[2]);
        if (!(index >= 1 && index <= chain.rules.length + 1)) throw new Refusal('index of insertion too big');
        const spec = line.slice(command.length + name.length + (words[2] as string).length + 3);
        this.checkTargets(table, spec);
        chain.rules.splice(index - 1, 0, this.canonical(family, table, spec));
        return;
      }
      case '-D': {
        if (/^\d+$/.test(rest)) {
          const index = Number(rest);
          if (!(index >= 1 && index <= chain.rules.length)) throw new Refusal('index of deletion too big');
          chain.rules.splice(index - 1, 1);
          return;
        }
        const at = chain.rules.indexOf(this.canonical(family, table, rest));
        if (at < 0) throw new Refusal('bad rule (does a matching rule exist in that chain?)');
        chain.rules.splice(at, 1);
        return;
      }
      case '-F':
        chain.rules = [];
        return;
      case '-X': {
        if (isBuiltinChain('filter', name) || chain.rules.length > 0) throw new Refusal(`chain ${name} is built-in or not empty`);
        const referenced = [...table.values()].some((other) =>
          other.rules.some((rule) => tokenizeRestoreLine(rule).includes(name)),
        );
        if (referenced) throw new Refusal(`chain ${name} is referenced`);
        table.delete(name);
        return;
      }
      default:
        throw new Refusal(`unsupported command ${command}`);
    }
  }
}
