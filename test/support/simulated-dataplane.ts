// A strict in-memory dataplane: iptables-restore --noflush semantics for the commands asgc
// writes, atomic per script, failing wherever the kernel would (bad index, missing chain,
// deleting a chain that is referenced or not empty, -D of a rule that is not there).
// It speeds up property tests; the kernel tests remain the judge.
import { canonicalSpec } from '../../src/iptables/rule-parse.js';
import { tokenizeRestoreLine } from '../../src/iptables/tokenize.js';
import { type Dataplane, RestoreError } from '../../src/iptables/dataplane.js';
import type { HostDataplane } from '../../src/reconcile/family.js';
import type { Family } from '../../src/model/address.js';
import { BUILTIN_CHAINS, isBuiltinChain } from '../../src/ir/ruleset.js';
import { compareBytewise } from '../../src/model/order.js';
import { parseSaveText, savedTables } from '../../src/iptables/save-file.js';

interface SimulatedChain {
  policy: string;
  rules: string[];
}

type Table = Map<string, SimulatedChain>;

function emptyTable(name: string): Table {
  return new Map((BUILTIN_CHAINS[name] ?? []).map((chain) => [chain, { policy: 'ACCEPT', rules: [] }]));
}

class Refusal extends Error {}

export class SimulatedDataplane implements Dataplane {
  readonly backend = 'nft' as const;
  readonly restores: { family: Family; script: string }[] = [];
  saves = 0;
  chainReads = 0;
  private readonly tables: Record<Family, Map<string, Table>> = { 4: new Map(), 6: new Map() };

  /** Chains read one by one, in order, as `<family> <chain>`. */
  readonly chainsRead: string[] = [];

  constructor(initial: Partial<Record<Family, string>> = {}) {
    for (const family of [4, 6] as const) {
      const text = initial[family];
      if (text !== undefined) this.load(family, text);
    }
  }

  /** Someone else's hand: the family's tables become what `text` (iptables-save output) says. */
  load(family: Family, text: string): void {
    this.tables[family] = new Map();
    const parsed = parseSaveText(text);
    if (!parsed.ok) throw new Error(`bad initial state: ${JSON.stringify(parsed.error)}`);
    for (const saved of savedTables(parsed.value).values()) {
      const table = this.table(family, saved.name);
      for (const chain of saved.chains.values()) {
        table.set(chain.name, {
          policy: chain.policy,
          rules: chain.specs.map((spec) => this.canonical(family, saved.name, table, spec)),
        });
      }
    }
  }

  /** This dataplane as the host's (no ipsets). */
  get host(): HostDataplane {
    return { tables: this };
  }

  async listChain(family: Family, table: string, chain: string): Promise<readonly string[] | undefined> {
    this.chainReads++;
    this.chainsRead.push(`${family} ${chain}`);
    return this.tables[family].get(table)?.get(chain)?.rules.slice();
  }

  async hasTable(family: Family, table: string): Promise<boolean> {
    return this.tables[family].has(table);
  }

  /** Someone else's hand: `iptables -F` (every chain emptied, none deleted). */
  flushAll(family: Family, table = 'filter'): void {
    for (const chain of this.table(family, table).values()) chain.rules = [];
  }

  /** Someone else's hand: drop a chain (and every rule jumping to it), as `iptables -F/-X` would. */
  removeChain(family: Family, chain: string, table = 'filter'): void {
    const entries = this.table(family, table);
    entries.delete(chain);
    for (const entry of entries.values()) entry.rules = entry.rules.filter((rule) => !tokenizeRestoreLine(rule).includes(chain));
  }

  async save(family: Family, tableName: string): Promise<string> {
    this.saves++;
    // nf_tables prints a table that does not exist as empty, and does not make it.
    const table = this.tables[family].get(tableName) ?? emptyTable(tableName);
    const builtins = (BUILTIN_CHAINS[tableName] ?? []).filter((name) => table.has(name));
    const user = [...table.keys()].filter((name) => !isBuiltinChain(tableName, name)).sort(compareBytewise);
    const names = [...builtins, ...user];
    const lines = [`*${tableName}`, ...names.map((name) => `:${name} ${table.get(name)?.policy ?? '-'} [0:0]`)];
    for (const name of names)
      for (const rule of table.get(name)?.rules ?? []) lines.push(rule === '' ? `-A ${name}` : `-A ${name} ${rule}`);
    return `${[...lines, 'COMMIT'].join('\n')}\n`;
  }

  async restore(family: Family, script: string): Promise<void> {
    this.restores.push({ family, script });
    const working = new Map(
      [...this.tables[family]].map(([name, table]) => [
        name,
        new Map([...table].map(([chain, entry]) => [chain, { policy: entry.policy, rules: [...entry.rules] }])),
      ]),
    );
    const lines = script.split('\n');
    let lineNumber = 0;
    let tableName: string | undefined;
    try {
      for (const line of lines) {
        lineNumber++;
        if (line === '' || line.startsWith('#')) continue;
        if (line.startsWith('*')) {
          tableName = line.slice(1);
          if (!working.has(tableName)) working.set(tableName, emptyTable(tableName));
          continue;
        }
        if (line === 'COMMIT') {
          tableName = undefined;
          continue;
        }
        if (tableName === undefined) throw new Refusal('a line outside a table');
        this.execute(family, tableName, working.get(tableName) as Table, line);
      }
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      throw new RestoreError(family, `line ${lineNumber} failed: ${error.message}`, lineNumber, []);
    }
    this.tables[family] = working;
  }

  private table(family: Family, name: string): Table {
    let table = this.tables[family].get(name);
    if (table === undefined) {
      table = emptyTable(name);
      this.tables[family].set(name, table);
    }
    return table;
  }

  private canonical(family: Family, tableName: string, table: Table, spec: string): string {
    return canonicalSpec(spec, family, (name) => table.has(name) && !isBuiltinChain(tableName, name));
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

  private execute(family: Family, tableName: string, table: Table, line: string): void {
    if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(' ') as [string, string];
      const existing = table.get(name);
      if (isBuiltinChain(tableName, name)) {
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
        chain.rules.push(this.canonical(family, tableName, table, rest));
        return;
      case '-I': {
        const index = Number(words[2]);
        if (!(index >= 1 && index <= chain.rules.length + 1)) throw new Refusal('index of insertion too big');
        const spec = line.slice(command.length + name.length + (words[2] as string).length + 3);
        this.checkTargets(table, spec);
        chain.rules.splice(index - 1, 0, this.canonical(family, tableName, table, spec));
        return;
      }
      case '-D': {
        if (/^\d+$/.test(rest)) {
          const index = Number(rest);
          if (!(index >= 1 && index <= chain.rules.length)) throw new Refusal('index of deletion too big');
          chain.rules.splice(index - 1, 1);
          return;
        }
        const at = chain.rules.indexOf(this.canonical(family, tableName, table, rest));
        if (at < 0) throw new Refusal('bad rule (does a matching rule exist in that chain?)');
        chain.rules.splice(at, 1);
        return;
      }
      case '-F':
        chain.rules = [];
        return;
      case '-X': {
        if (isBuiltinChain(tableName, name) || chain.rules.length > 0)
          throw new Refusal(`chain ${name} is built-in or not empty`);
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
