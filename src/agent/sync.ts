// One sync cycle: read the container metadata, fetch the policy, compile, and bring each family
// in line, independently. It keeps a verified record of what it last applied: a cycle whose
// inputs did not change reads nothing back (only a canary chain is checked) until the resync
// interval is due. On bad input it never loosens a rule: it keeps the last good documents, and
// holds the containers whose ASGs do not compile on their last applied chains.
import { AsgIndex } from '../compile/asg-index.js';
import { compileCell } from '../compile/compile.js';
import { CompileCache } from '../compile/compile-cache.js';
import { ChainNamer } from '../compile/naming.js';
import type { SourceText } from '../ingest/cell.js';
import { ingestConfig } from '../ingest/config.js';
import { ingestContainers } from '../ingest/containers.js';
import { ingestEndpoints } from '../ingest/endpoints.js';
import { formatInputError, type InputError } from '../ingest/input-error.js';
import { parseJson } from '../ingest/json.js';
import { ingestPolicies } from '../ingest/policies.js';
import { type GroupRulesCache, ingestSecurityGroups } from '../ingest/security-groups.js';
import { GenerationalCache } from '../memo/generational.js';
import { applyFamily, describeSetOutcome, NonConvergenceError } from '../iptables/apply.js';
import { type Dataplane, DataplaneError, RestoreError } from '../iptables/dataplane.js';
import type { Ruleset } from '../ir/ruleset.js';
import type { Family } from '../model/address.js';
import { type AsgcConfig, type C2cPolicy, type Container, DEFAULT_CONFIG, lifecycleOf } from '../model/cell.js';
import { chainSpecs, sameRendering } from '../render/save-text.js';
import { type HeldChains, holdChains } from './hold.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { FetchError } from './policy-server.js';
import { FileReader } from './file-reader.js';
import { MetadataError, type PolicySource, readMetadata } from './sources.js';

export type ProblemKind = 'metadata' | 'fetch' | 'input' | 'compile' | 'apply' | 'lock' | 'converge';

export interface Problem {
  readonly kind: ProblemKind;
  readonly family?: Family;
  readonly message: string;
}

export interface FamilyReport {
  readonly status: 'applied' | 'unchanged' | 'failed';
  readonly restores: number;
}

export interface CycleReport {
  /** failed: some family (or everything) is not in sync with the inputs. */
  readonly status: 'applied' | 'unchanged' | 'failed';
  readonly families: Partial<Record<Family, FamilyReport>>;
  /** What went wrong; also what degraded (held containers, documents replaced by their last good version). */
  readonly problems: readonly Problem[];
  /** Containers kept on their last applied (or default-deny) rules. */
  readonly held: readonly string[];
  /** Every container in the metadata this cycle read. */
  readonly containers: readonly string[];
  readonly startedAt: number;
  readonly durationMs: number;
}

export interface SyncOptions {
  readonly source: PolicySource;
  readonly metadataPath: string;
  readonly endpointsPath?: string;
  readonly asgcConfigPath?: string;
  readonly dataplane: Dataplane;
  readonly families: readonly Family[];
  readonly resyncIntervalMs: number;
  /** Milliseconds, for timestamps (a clock the tests can move). */
  readonly now: () => number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

interface Applied {
  readonly ruleset: Ruleset;
  /** When a read-back last confirmed it; -Infinity when it must be read back before trusted. */
  verifiedAt: number;
}

/** A document that, when a new version is invalid, stands on its last good version. */
class LastGoodDocument<R extends { errors: InputError[] }, T> {
  private last: T | undefined;

  constructor(
    private readonly what: string,
    private readonly ingest: (value: unknown, file: string) => R,
    private readonly pick: (result: R) => T,
    private readonly empty: T,
  ) {}

  take(source: SourceText | undefined, problems: Problem[]): T {
    if (source === undefined) return this.empty;
    const parsed = parseJson(source.text, source.file);
    const result = parsed.ok ? this.ingest(parsed.value, source.file) : undefined;
    const errors = result?.errors ?? (parsed.ok ? [] : [parsed.error]);
    if (result !== undefined && errors.length === 0) {
      this.last = this.pick(result);
      return this.last;
    }
    // An invalid document adds nothing new: its last good version (or nothing) stands.
    problems.push({
      kind: 'input',
      message: `${this.what} invalid, ${this.last ? 'using the last good version' : 'none applied yet'}: ${describeErrors(errors)}`,
    });
    return this.last ?? this.empty;
  }
}

class CycleFailure extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

async function readOptional(files: FileReader, path: string | undefined): Promise<SourceText | undefined> {
  if (path === undefined) return undefined;
  try {
    const text = await files.read(path);
    return text === undefined ? undefined : { file: path, text };
  } catch (error) {
    throw new CycleFailure({ kind: 'input', message: `${path}: ${(error as Error).message}` });
  }
}

function sameTexts(a: readonly (string | undefined)[], b: readonly (string | undefined)[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((text, i) => text === b[i]);
}

function describeErrors(errors: readonly InputError[]): string {
  const shown = errors.slice(0, 5).map(formatInputError).join('; ');
  return errors.length > 5 ? `${shown}; and ${errors.length - 5} more` : shown;
}

function classify(error: DataplaneError): ProblemKind {
  if (error instanceof NonConvergenceError) return 'converge';
  if (error instanceof RestoreError && error.lockBusy) return 'lock';
  return 'apply';
}

export class Syncer {
  /** The input texts of the last cycle that brought every family in line (compared whole: cheaper than hashing them). */
  private appliedInputs: readonly (string | undefined)[] | undefined;
  private readonly applied: Partial<Record<Family, Applied>> = {};
  private readonly policies = new LastGoodDocument('policies', ingestPolicies, (result) => result.policies as C2cPolicy[], []);
  private readonly endpoints = new LastGoodDocument<ReturnType<typeof ingestEndpoints>, ReadonlyMap<string, readonly bigint[]>>(
    'endpoints',
    ingestEndpoints,
    (result) => result.endpoints,
    new Map(),
  );
  private lastGoodConfig: AsgcConfig | undefined;
  // What the last compile built, reused for what did not change (an unchanged group is not
  // validated, compiled or rendered again).
  private readonly groupRules: GroupRulesCache = new GenerationalCache();
  private readonly compileCache = new CompileCache();
  private readonly files = new FileReader();
  private lastMetadata: { readonly text: string; readonly containers: readonly Container[] } | undefined;

  constructor(private options: SyncOptions) {}

  /** New options (SIGHUP) take effect from the next cycle; what was applied stays known. */
  reconfigure(options: SyncOptions): void {
    this.options = options;
    this.appliedInputs = undefined;
  }

  async runCycle(force: boolean): Promise<CycleReport> {
    const { now, log, metrics } = this.options;
    const startedAt = now();
    const problems: Problem[] = [];
    const families: Partial<Record<Family, FamilyReport>> = {};
    let held: string[] = [];
    let containers: string[] = [];
    let status: CycleReport['status'] = 'unchanged';
    try {
      const inputs = await this.readInputs(force, problems);
      containers = inputs.containers.map((container) => container.handle);
      const names = new ChainNamer(inputs.config.chainPrefix);
      if (!force && sameTexts(inputs.texts, this.appliedInputs) && (await this.allFresh(names))) {
        for (const family of this.options.families) families[family] = { status: 'unchanged', restores: 0 };
      } else {
        const compileStart = now();
        const compiled = this.compile(inputs);
        held = compiled.held;
        metrics.observe('asgc_stage_duration_seconds', (now() - compileStart) / 1000, { stage: 'compile' });
        let allApplied = true;
        // The families are independent (own tables, own transactions): they sync side by side,
        // and one failing does not hold the other back.
        const outcomes = await Promise.all(
          this.options.families.map(async (family) => {
            const own: Problem[] = [];
            const report = await this.syncFamily(family, compiled.rulesets[family], compiled.heldChains, names, force, own);
            return { family, report, problems: own };
          }),
        );
        for (const { family, report, problems: own } of outcomes) {
          families[family] = report;
          problems.push(...own);
          if (report.status === 'failed') allApplied = false;
          if (report.status === 'applied') status = 'applied';
        }
        // Only a cycle that brought everything in line may let the next one skip work.
        this.appliedInputs = allApplied ? inputs.texts : undefined;
        if (held.length > 0)
          problems.push({
            kind: 'input',
            message: `holding ${held.length} container(s) on their last applied rules: their ASGs do not compile (${held.slice(0, 5).join(', ')})`,
          });
      }
    } catch (error) {
      if (!(error instanceof CycleFailure)) throw error;
      problems.push(error.problem);
    }
    if (
      problems.some((problem) => problem.kind !== 'input') ||
      Object.values(families).some((report) => report?.status === 'failed') ||
      Object.keys(families).length === 0
    )
      status = 'failed';
    const durationMs = now() - startedAt;
    const report: CycleReport = { status, families, problems, held, containers, startedAt, durationMs };
    this.record(report);
    for (const problem of problems)
      log.log(problem.kind === 'input' ? 'warn' : 'error', `sync.${problem.kind}`, {
        ...(problem.family && { family: problem.family }),
        message: problem.message,
      });
    log.log(status === 'failed' ? 'warn' : status === 'applied' ? 'info' : 'debug', 'sync.cycle', {
      status,
      durationMs: Math.round(durationMs),
      held: held.length,
      families,
    });
    return report;
  }

  private async readInputs(force: boolean, problems: Problem[]) {
    const { now, metrics } = this.options;
    let metadata: SourceText & { readonly value: unknown };
    try {
      metadata = await readMetadata(this.options.metadataPath, this.files);
    } catch (error) {
      if (error instanceof MetadataError) throw new CycleFailure({ kind: 'metadata', message: error.message });
      throw error;
    }
    // The same text as last cycle (the reader hands back the same string): the same containers.
    if (this.lastMetadata?.text !== metadata.text) {
      const ingested = ingestContainers(metadata.value, metadata.file);
      if (ingested.errors.length > 0)
        throw new CycleFailure({
          kind: 'metadata',
          message: `container metadata is invalid: ${describeErrors(ingested.errors)}`,
        });
      this.lastMetadata = { text: metadata.text, containers: ingested.containers };
    }
    const containers = this.lastMetadata.containers;

    const fetchStart = now();
    const spaceGuids = containers.flatMap((container) => (container.spaceGuid ? [container.spaceGuid] : []));
    const ids = containers.flatMap((container) =>
      [container.appGuid, container.spaceGuid].filter((id): id is string => id !== undefined),
    );
    let documents;
    try {
      documents = await this.options.source.fetch({ spaceGuids, ids }, force);
    } catch (error) {
      if (error instanceof FetchError)
        throw new CycleFailure({ kind: 'fetch', message: `${this.options.source.description}: ${error.message}` });
      throw error;
    }
    const endpoints = await readOptional(this.files, this.options.endpointsPath);
    const config = await readOptional(this.files, this.options.asgcConfigPath);
    metrics.observe('asgc_stage_duration_seconds', (now() - fetchStart) / 1000, { stage: 'fetch' });

    const texts = [metadata, documents.securityGroups, documents.policies, endpoints, config].map((source) => source?.text);

    return {
      texts,
      containers,
      securityGroups: documents.securityGroups,
      policies: this.policies.take(documents.policies, problems),
      endpoints: this.endpoints.take(endpoints, problems),
      config: this.configOf(config, problems),
    };
  }

  private configOf(source: SourceText | undefined, problems: Problem[]): AsgcConfig {
    if (source === undefined) return DEFAULT_CONFIG;
    const parsed = parseJson(source.text, source.file);
    const result = parsed.ok ? ingestConfig(parsed.value, source.file) : { config: DEFAULT_CONFIG, errors: [parsed.error] };
    if (result.errors.length === 0) {
      this.lastGoodConfig = result.config;
      return result.config;
    }
    // Defaults could be looser than the configuration (no deny networks): never fall back to them.
    if (this.lastGoodConfig === undefined)
      throw new CycleFailure({
        kind: 'input',
        message: `asgc configuration invalid and none applied yet: ${describeErrors(result.errors)}`,
      });
    problems.push({
      kind: 'input',
      message: `asgc configuration invalid, using the last good version: ${describeErrors(result.errors)}`,
    });
    return this.lastGoodConfig;
  }

  private compile(inputs: Awaited<ReturnType<Syncer['readInputs']>>) {
    const { securityGroups } = inputs;
    let groups: ReturnType<typeof ingestSecurityGroups> | undefined;
    if (securityGroups !== undefined) {
      const parsed = parseJson(securityGroups.text, securityGroups.file);
      if (!parsed.ok) throw new CycleFailure({ kind: 'input', message: `security groups: ${parsed.error.message}` });
      groups = ingestSecurityGroups(parsed.value, securityGroups.file, this.groupRules);
      this.groupRules.endRound();
      if (groups.documentErrors > 0)
        throw new CycleFailure({ kind: 'input', message: `security groups document invalid: ${describeErrors(groups.errors)}` });
    }
    const cell = {
      securityGroups: groups?.groups ?? [],
      policies: inputs.policies,
      containers: inputs.containers,
      endpoints: inputs.endpoints,
      config: inputs.config,
    };
    const compiled = compileCell(cell, { cache: this.compileCache });
    if (!compiled.ok)
      throw new CycleFailure({ kind: 'compile', message: compiled.error.map((error) => error.message).join('; ') });
    const heldChains = this.heldChains(
      inputs.containers,
      groups?.broken ?? new Set(),
      new AsgIndex(cell.securityGroups),
      new ChainNamer(inputs.config.chainPrefix),
    );
    return { rulesets: compiled.value, heldChains: heldChains.chains, held: heldChains.handles };
  }

  /** The chains of every container whose ASG set includes a group whose rules do not compile. */
  private heldChains(
    containers: readonly Container[],
    broken: ReadonlySet<string>,
    asgs: AsgIndex,
    names: ChainNamer,
  ): { chains: HeldChains; handles: string[] } {
    const chains = new Set<string>();
    const egress = new Set<string>();
    const handles: string[] = [];
    if (broken.size === 0) return { chains: { chains, egress }, handles };
    for (const container of containers) {
      const lifecycle = lifecycleOf(container);
      if (lifecycle === undefined) continue;
      const setSpace = asgs.setSpace(lifecycle, container.spaceGuid);
      if (!asgs.groupsFor(lifecycle, setSpace).some((group) => broken.has(group.guid))) continue;
      handles.push(container.handle);
      egress.add(names.egress(container.handle));
      for (const name of [
        names.egress(container.handle),
        names.log(container.handle),
        names.rateLimitLog(container.handle),
        names.asgSet(lifecycle, setSpace),
      ])
        chains.add(name);
    }
    return { chains: { chains, egress }, handles };
  }

  private fresh(family: Family): boolean {
    const applied = this.applied[family];
    return applied !== undefined && this.options.now() - applied.verifiedAt < this.options.resyncIntervalMs;
  }

  /** Whether every family's last apply is recent and its canary chain is still as applied. */
  private async allFresh(names: ChainNamer): Promise<boolean> {
    if (!this.options.families.every((family) => this.fresh(family))) return false;
    const intact = await Promise.all(this.options.families.map((family) => this.canary(family, names)));
    return intact.every(Boolean);
  }

  /**
   * The small host-access chain, read alone and compared with what was applied: a flushed or
   * deleted table, or a restart of the network namespace, shows there at once.
   */
  private async canary(family: Family, names: ChainNamer): Promise<boolean> {
    const chain = names.hostAccess;
    const applied = this.applied[family]?.ruleset.tables[0]?.chains.find((candidate) => candidate.name === chain);
    if (applied === undefined) return false;
    try {
      const live = await this.options.dataplane.listChain(family, chain);
      const expected = chainSpecs(applied.rules, family);
      const intact = live !== undefined && live.length === expected.length && live.every((spec, i) => spec === expected[i]);
      if (!intact)
        this.options.log.log('warn', 'sync.canary_changed', {
          family,
          chain,
          message: live === undefined ? 'chain missing' : 'rules differ from what was applied',
        });
      return intact;
    } catch (error) {
      // Not knowing is not trusting: the family is read back in full.
      this.options.log.log('warn', 'sync.canary_failed', { family, chain, message: (error as Error).message });
      return false;
    }
  }

  private async syncFamily(
    family: Family,
    compiled: Ruleset,
    held: HeldChains,
    names: ChainNamer,
    force: boolean,
    problems: Problem[],
  ): Promise<FamilyReport> {
    const { metrics, now } = this.options;
    const previous = this.applied[family];
    const desired = holdChains(compiled, previous?.ruleset, held);
    // What was applied and verified within the resync interval is trusted without a read: an
    // unchanged family only if its canary stands; a change is planned against it, and the
    // read-back that verifies the change repairs whatever else differs.
    let trusted = previous !== undefined && this.fresh(family) ? previous.ruleset : undefined;
    if (trusted !== undefined && sameRendering(trusted, desired)) {
      if (!force && (await this.canary(family, names))) return { status: 'unchanged', restores: 0 };
      // Forced, or the canary changed: read back in full.
      trusted = undefined;
    }
    try {
      const outcome = await applyFamily(
        this.options.dataplane,
        desired,
        { prefix: names.prefix },
        trusted === undefined ? {} : { assumedLive: trusted },
      );
      metrics.observe('asgc_stage_duration_seconds', (outcome.timings.readMs + outcome.timings.planMs) / 1000, {
        stage: 'diff',
        family: String(family),
      });
      metrics.observe('asgc_stage_duration_seconds', (outcome.timings.restoreMs + outcome.timings.verifyMs) / 1000, {
        stage: 'apply',
        family: String(family),
      });
      metrics.inc('asgc_restores_total', { family: String(family) }, outcome.scripts.length);
      const sets = describeSetOutcome(family, outcome.sets);
      if (sets !== undefined)
        this.options.log.log(outcome.sets?.inUse.length ? 'warn' : 'info', 'sync.ipsets', { family, message: sets });
      const table = desired.tables[0];
      metrics.set('asgc_rules', table?.chains.reduce((sum, chain) => sum + chain.rules.length, 0) ?? 0, {
        family: String(family),
      });
      metrics.set('asgc_chains', table?.chains.length ?? 0, { family: String(family) });
      // Read back at least once since it was last trusted blindly: verified now.
      this.applied[family] = { ruleset: desired, verifiedAt: outcome.reads > 0 ? now() : (previous?.verifiedAt ?? -Infinity) };
      return { status: outcome.scripts.length > 0 ? 'applied' : 'unchanged', restores: outcome.scripts.length };
    } catch (error) {
      if (!(error instanceof DataplaneError)) throw error;
      // Whatever happened, the live state must be read back before it is trusted again.
      if (previous) previous.verifiedAt = -Infinity;
      problems.push({ kind: classify(error), family, message: error.message });
      return { status: 'failed', restores: 0 };
    }
  }

  private record(report: CycleReport): void {
    const { metrics } = this.options;
    metrics.inc('asgc_cycles_total', { result: report.status });
    metrics.observe('asgc_cycle_duration_seconds', report.durationMs / 1000);
    for (const problem of report.problems) metrics.inc('asgc_errors_total', { kind: problem.kind });
    metrics.set('asgc_held_containers', report.held.length);
    const degraded = report.status === 'failed' || report.problems.length > 0;
    metrics.set('asgc_degraded', degraded ? 1 : 0);
    if (report.status !== 'failed')
      metrics.set('asgc_last_success_timestamp_seconds', Math.round((report.startedAt + report.durationMs) / 1000));
    metrics.set('process_resident_memory_bytes', process.memoryUsage().rss);
  }
}
