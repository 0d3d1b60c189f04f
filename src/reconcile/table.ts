// One table of one family as asgc last knew it in the kernel (in the spirit of Calico Felix's
// Table): the owned chains and the built-in chains that hold its hooks, as last read or
// written. Changes are planned against that knowledge; reads go to the kernel only when the
// reconciler decides (see family.ts), and each read corrects the knowledge.
import { isEmptyPlan, type Ownership, type Plan, planChanges } from '../diff/plan.js';
import { renderPlanScripts } from '../diff/script.js';
import { isBuiltinChain } from '../ir/ruleset.js';
import type { TextChain, TextTable } from '../ir/text-table.js';
import { type Dataplane, RestoreError } from '../iptables/dataplane.js';
import { parseSaveText, savedTables } from '../iptables/save-file.js';
import type { Family } from '../model/address.js';
import { LiveStateError } from './errors.js';
import { ownedStateMatches } from './live-check.js';
import { chainsCheaper } from './read-costs.js';

/** A copy of a string that does not keep the text it was cut from alive (V8 slices do). */
function detached(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** How many chain reads run at once. */
const PARALLEL_READS = 4;

/** The reads and writes one sync made of a table. */
export interface TableActivity {
  /** Whole-table reads (iptables-save). */
  fullReads: number;
  /** Single-chain reads (iptables -S <chain>). */
  chainReads: number;
  readonly scripts: string[];
}

export class LiveTable {
  /** Owned and built-in chains as the kernel holds them, as far as known; undefined: unknown. */
  private known: Map<string, TextChain> | undefined;
  /** When the whole table was last read. */
  fullReadAt = -Infinity;

  constructor(
    readonly family: Family,
    readonly name: string,
    private readonly dataplane: Dataplane,
    private readonly ownership: Ownership,
    private readonly now: () => number,
  ) {}

  /** Whether the table must be read whole before anything is trusted (never read, or after a failure). */
  get unknown(): boolean {
    return this.known === undefined;
  }

  invalidate(): void {
    this.known = undefined;
  }

  /** Rules in the table as known (a size for cost estimates). */
  get knownRules(): number {
    let count = 0;
    for (const chain of this.known?.values() ?? []) count += chain.specs.length;
    return count;
  }

  /**
   * Read the whole table. When it already holds exactly `desired` (one scan of the text), the
   * desired chains become the knowledge as they are; otherwise the owned and built-in chains
   * as read. Returns whether asgc's rules there name asgc's ipsets.
   */
  async readFull(desired: TextTable, activity: TableActivity): Promise<{ namesSets: boolean }> {
    const text = await this.dataplane.save(this.family, this.name);
    activity.fullReads++;
    this.fullReadAt = this.now();
    const namesSets = text.includes(`--match-set ${this.ownership.prefix}s`);
    if (ownedStateMatches(text, desired, this.ownership)) {
      this.known = new Map(desired.chains);
      return { namesSets };
    }
    const parsed = parseSaveText(text);
    if (!parsed.ok) {
      this.known = undefined;
      const detail = parsed.error.map((error) => `line ${error.line}: ${error.message}`).join('; ');
      throw new LiveStateError(`ip${this.family === 6 ? '6' : ''}tables-save -t ${this.name} output cannot be read: ${detail}`);
    }
    this.known = this.knowledgeOf(savedTables(parsed.value).get(this.name));
    return { namesSets };
  }

  /**
   * What to keep of a table as read: owned chains whole, built-in chains whole (copied: they
   * are short), and of other chains only their name and the rules that jump to an owned chain
   * (what decides whether an unwanted chain may go). Nothing kept points into the save text,
   * so a read of 100,000 rules is not held on to until the next one.
   */
  private knowledgeOf(live: TextTable | undefined): Map<string, TextChain> {
    const known = new Map<string, TextChain>();
    const prefix = this.ownership.prefix;
    for (const chain of live?.chains.values() ?? []) {
      if (chain.name.startsWith(prefix)) known.set(chain.name, chain);
      else if (isBuiltinChain(this.name, chain.name)) known.set(chain.name, { ...chain, specs: chain.specs.map(detached) });
      else
        known.set(chain.name, {
          ...chain,
          specs: chain.specs.filter((spec) => spec.includes(` ${prefix}`) || spec.startsWith(`-j ${prefix}`)).map(detached),
        });
    }
    return known;
  }

  /** Read these chains one by one (a missing one is known missing from then on). */
  async readChains(names: readonly string[], activity: TableActivity): Promise<void> {
    const known = this.known;
    if (known === undefined) throw new Error('internal error: chains read into an unknown table');
    const queue = [...names];
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const specs = await this.dataplane.listChain(this.family, this.name, name);
        activity.chainReads++;
        if (specs === undefined) {
          known.delete(name);
        } else {
          const policy = known.get(name)?.policy ?? (isBuiltinChain(this.name, name) ? 'ACCEPT' : '-');
          known.set(name, { name, policy, specs });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, names.length) }, worker));
  }

  /** Whether reading `count` chains is expected to cost less than reading the whole table. */
  chainsCheaper(count: number): boolean {
    return chainsCheaper(this.dataplane.backend, count, PARALLEL_READS, this.knownRules);
  }

  /**
   * The plan from what is known to `desired`; `editable` chains may be edited by rule index.
   * An owned chain the plan leaves alone is known as the desired chain from then on (equal,
   * perhaps written differently): the next plan sees it unchanged at a glance.
   */
  plan(desired: TextTable, editable: boolean | ((chain: string) => boolean)): Plan {
    const known = this.known;
    const plan = planChanges(
      this.family,
      desired,
      known === undefined ? undefined : { name: this.name, chains: known },
      this.ownership,
      {
        ruleEdits: editable,
      },
    );
    if (known !== undefined) {
      const changed = new Set(plan.chains.map((change) => change.chain));
      for (const chain of desired.chains.values())
        if (
          !changed.has(chain.name) &&
          known.get(chain.name)?.specs !== chain.specs &&
          chain.name.startsWith(this.ownership.prefix)
        )
          known.set(chain.name, chain);
    }
    return plan;
  }

  /** The known rules of a chain (undefined when it is not known to exist). */
  knownChain(name: string): TextChain | undefined {
    return this.known?.get(name);
  }

  /**
   * Run the plan in one transaction (two when an older nf_tables refuses to delete a chain
   * still referenced at the start). On success the knowledge becomes what the plan made; on
   * failure the table must be read before it is trusted again.
   */
  async write(plan: Plan, desired: TextTable, activity: TableActivity): Promise<void> {
    if (isEmptyPlan(plan)) return;
    try {
      activity.scripts.push(...(await this.run(plan)));
    } catch (error) {
      // A busy lock changed nothing; anything else may have, in ways restore does not say.
      if (!(error instanceof RestoreError && error.lockBusy)) this.known = undefined;
      throw error;
    }
    const known = this.known ?? new Map<string, TextChain>();
    this.known = known;
    for (const change of plan.chains) {
      if (change.kind === 'delete') known.delete(change.chain);
      else known.set(change.chain, desired.chains.get(change.chain) as TextChain);
    }
    for (const hook of plan.hooks) {
      const desiredHooks = desired.chains.get(hook.chain)?.specs ?? [];
      const before = known.get(hook.chain);
      const others = (before?.specs ?? []).filter((spec) => !hook.remove.includes(spec));
      known.set(hook.chain, { name: hook.chain, policy: before?.policy ?? 'ACCEPT', specs: [...desiredHooks, ...others] });
    }
  }

  private async run(plan: Plan): Promise<string[]> {
    const scripts = renderPlanScripts(plan);
    try {
      await this.dataplane.restore(plan.family, scripts[0] as string);
      return scripts;
    } catch (error) {
      // Older nf_tables backends refuse to delete a chain that was referenced when the
      // transaction began; then the deletions go in a second transaction.
      if (!(error instanceof RestoreError && error.chainBusy && this.dataplane.backend === 'nft')) throw error;
      const separate = renderPlanScripts(plan, { separateDeletions: true });
      for (const script of separate) await this.dataplane.restore(plan.family, script);
      return separate;
    }
  }
}
