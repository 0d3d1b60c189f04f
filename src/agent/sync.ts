// One sync cycle: read the container metadata, fetch the policy, compile, and hand each family
// to its reconciler, which brings the kernel in line and decides what to read back. A cycle
// whose inputs did not change compiles nothing: the reconcilers only run the checks that are
// due (canary, resync, a deferred post-write check). On bad input nothing is loosened: an
// invalid document stands on its last good version, and containers whose ASGs do not compile
// are held by the compile on their last good chains.
import { type CompiledCell, compileCell } from '../compile/compile.js';
import { ChainNamer } from '../compile/naming.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import { LockTimeoutError } from '../exec/flock.js';
import type { SourceText } from '../ingest/cell.js';
import { ingestConfig } from '../ingest/config.js';
import { ingestContainers } from '../ingest/containers.js';
import { ingestEndpoints } from '../ingest/endpoints.js';
import { formatInputError, type InputError } from '../ingest/input-error.js';
import { parseJson } from '../ingest/json.js';
import { ingestPolicies } from '../ingest/policies.js';
import { type GroupRulesCache, ingestSecurityGroups } from '../ingest/security-groups.js';
import { RestoreError } from '../iptables/dataplane.js';
import { GenerationalCache } from '../memo/generational.js';
import type { Family } from '../model/address.js';
import { type AsgcConfig, type C2cPolicy, type Container, DEFAULT_CONFIG } from '../model/cell.js';
import { NonConvergenceError } from '../reconcile/errors.js';
import { type FamilyOutcome, FamilyReconciler, type HostDataplane, type ReconcilePolicy } from '../reconcile/family.js';
import { describeSetOutcome } from '../reconcile/sets.js';
import { textRuleset } from '../render/save-text.js';
import { TextChainMemo } from '../render/text-memo.js';
import { FileReader } from './file-reader.js';
import type { Logger } from './logger.js';
import type { Metrics, ProblemKind } from './metrics.js';
import { FetchError } from './policy-server.js';
import { MetadataError, type PolicySource, readMetadata } from './sources.js';

export type { ProblemKind } from './metrics.js';

export interface Problem {
  readonly kind: ProblemKind;
  readonly family?: Family;
  readonly message: string;
}

export interface FamilyReport {
  readonly status: 'applied' | 'unchanged' | 'failed';
  readonly restores: number;
  /** Reads of the live rules: whole tables and single chains (absent when the family failed). */
  readonly reads?: { readonly tables: number; readonly chains: number };
  /** Milliseconds spent reading, planning, restoring and verifying. */
  readonly ms?: { readonly read: number; readonly plan: number; readonly restore: number; readonly verify: number };
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
  /** Milliseconds spent fetching the inputs and compiling them (0: nothing to compile). */
  readonly ms: { readonly fetch: number; readonly compile: number };
}

/** asgc configuration keys from elsewhere (VPA's file, the CNI's), under those of asgc's own file. */
export interface BaseConfig {
  /** Where they come from, for messages. */
  readonly file: string;
  readonly document: Readonly<Record<string, unknown>>;
}

export interface SyncOptions {
  readonly source: PolicySource;
  readonly metadataPath: string;
  readonly endpointsPath?: string;
  readonly asgcConfigPath?: string;
  readonly baseConfig?: BaseConfig;
  readonly dataplane: HostDataplane;
  readonly families: readonly Family[];
  /** When to read the kernel back (see reconcile/family.ts). */
  readonly policy: ReconcilePolicy;
  /** Milliseconds, for timestamps (a clock the tests can move). */
  readonly now: () => number;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** A document that, when a new version is invalid, stands on its last good version. */
class LastGoodDocument<R extends { errors: InputError[] }, T> {
  private last: { readonly text: string; readonly value: T } | undefined;

  constructor(
    private readonly what: string,
    private readonly ingest: (value: unknown, file: string) => R,
    private readonly pick: (result: R) => T,
    private readonly empty: T,
    /** An invalid first version stops the cycle (the empty value could be looser than any real one). */
    private readonly required = false,
  ) {}

  take(source: SourceText | undefined, problems: Problem[]): T {
    if (source === undefined) return this.empty;
    // The same text as last time: the same value (the compile's memo compares it by identity).
    if (source.text === this.last?.text) return this.last.value;
    const parsed = parseJson(source.text, source.file);
    const result = parsed.ok ? this.ingest(parsed.value, source.file) : undefined;
    const errors = result?.errors ?? (parsed.ok ? [] : [parsed.error]);
    if (result !== undefined && errors.length === 0) {
      this.last = { text: source.text, value: this.pick(result) };
      return this.last.value;
    }
    if (this.last === undefined && this.required)
      throw new CycleFailure({ kind: 'input', message: `${this.what} invalid and none applied yet: ${describeErrors(errors)}` });
    // An invalid document adds nothing new: its last good version (or nothing) stands.
    problems.push({
      kind: 'input',
      message: `${this.what} invalid, ${this.last ? 'using the last good version' : 'none applied yet'}: ${describeErrors(errors)}`,
    });
    return this.last?.value ?? this.empty;
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
  if (error instanceof LockTimeoutError) return 'lock';
  if (error instanceof RestoreError && error.lockBusy) return 'lock';
  return 'apply';
}

export class Syncer {
  /** The input texts of the last cycle that brought every family in line (compared whole: cheaper than hashing them). */
  private appliedInputs: readonly (string | undefined)[] | undefined;
  /** One per family, made at the first compile (their ownership is the configured chain prefix). */
  private reconcilers: Map<Family, FamilyReconciler> | undefined;
  private readonly policies = new LastGoodDocument('policies', ingestPolicies, (result) => result.policies as C2cPolicy[], []);
  private readonly endpoints = new LastGoodDocument<ReturnType<typeof ingestEndpoints>, ReadonlyMap<string, readonly bigint[]>>(
    'endpoints',
    ingestEndpoints,
    (result) => result.endpoints,
    new Map(),
  );
  // Defaults could be looser than the configuration (no deny networks): never fall back to them.
  private readonly config = new LastGoodDocument(
    'asgc configuration',
    ingestConfig,
    (result) => result.config,
    DEFAULT_CONFIG,
    true,
  );
  // What the last compile built, reused for what did not change: a group is checked again
  // only when its text changed, a chain built again only when what it is built from did.
  private readonly groupRules: GroupRulesCache = new GenerationalCache();
  private readonly memo = new TextChainMemo();
  private names: ChainNamer | undefined;
  private readonly files = new FileReader();
  private lastMetadata:
    { readonly text: string; readonly containers: readonly Container[]; readonly warnings: readonly InputError[] } | undefined;
  /** The security groups of the last compile, by their text: a c2c change does not read them again. */
  private lastGroups: { readonly text: string; readonly value: ReturnType<typeof ingestSecurityGroups> } | undefined;
  /** Settings changed at run time (VPA's /iptables-c2c-logging), over every configuration file. */
  private readonly overrides: Record<string, unknown> = {};
  /** The configuration the last cycle compiled with. */
  private lastConfig: AsgcConfig = DEFAULT_CONFIG;

  constructor(private options: SyncOptions) {}

  /** New options (SIGHUP) take effect from the next cycle; what each reconciler knows stays. */
  reconfigure(options: SyncOptions): void {
    this.options = options;
    this.appliedInputs = undefined;
  }

  /** Whether c2c logging is on: as configured, or as last switched at run time. */
  get c2cLogging(): boolean {
    return (this.overrides.c2c_logging as boolean | undefined) ?? this.lastConfig.c2cLogging;
  }

  /** Switch c2c logging at run time, over the configuration; the next cycle compiles with it. */
  setC2cLogging(enabled: boolean): void {
    this.overrides.c2c_logging = enabled;
    this.appliedInputs = undefined;
  }

  /** When the next deferred check of the kernel is due (epoch ms), if any: the loop wakes for it. */
  get nextCheckAt(): number | undefined {
    const due = [...(this.reconcilers?.values() ?? [])].flatMap((reconciler) => reconciler.nextCheckAt ?? []);
    return due.length === 0 ? undefined : Math.min(...due);
  }

  /** `force`: fetch and compile even when no input seems to have changed. */
  async runCycle(force: boolean): Promise<CycleReport> {
    const { now, log } = this.options;
    const startedAt = now();
    const problems: Problem[] = [];
    const families: Partial<Record<Family, FamilyReport>> = {};
    let held: readonly string[] = [];
    let containers: string[] = [];
    const ms = { fetch: 0, compile: 0 };
    try {
      const fetchStart = performance.now();
      const inputs = await this.readInputs(force, problems);
      ms.fetch = performance.now() - fetchStart;
      containers = inputs.containers.map((container) => container.handle);
      let compiled: CompiledCell | undefined;
      if (force || !sameTexts(inputs.texts, this.appliedInputs)) {
        const compileStart = performance.now();
        compiled = this.compile(inputs);
        held = compiled.held;
        ms.compile = performance.now() - compileStart;
        this.options.metrics.stage('compile', ms.compile / 1000);
      }
      // The families are independent (own tables, own transactions): they sync side by side,
      // and one failing does not hold the other back.
      const written = new Set<string>();
      const outcomes = await Promise.all(
        this.options.families.map(async (family) => {
          const own: Problem[] = [];
          const report = await this.syncFamily(family, compiled, inputs.config.chainPrefix, own, written);
          return { family, report, problems: own };
        }),
      );
      if (compiled !== undefined) this.tellApps(compiled, inputs.containers, written);
      for (const { family, report, problems: own } of outcomes) {
        families[family] = report;
        problems.push(...own);
      }
      const allApplied = outcomes.every(({ report }) => report.status !== 'failed');
      // Only a cycle that brought everything in line may let the next one skip the compile.
      if (compiled !== undefined || !allApplied) this.appliedInputs = allApplied ? inputs.texts : undefined;
      if (compiled === undefined) held = this.lastHeld;
      this.lastHeld = held;
      if (held.length > 0)
        problems.push({
          kind: 'input',
          message: `holding ${held.length} container(s) on their last applied rules: their ASGs do not compile (${held.slice(0, 5).join(', ')})`,
        });
    } catch (error) {
      if (!(error instanceof CycleFailure)) throw error;
      problems.push(error.problem);
    }
    const reports = Object.values(families);
    const status: CycleReport['status'] =
      problems.some((problem) => problem.kind !== 'input') || reports.length === 0 || reports.some((r) => r.status === 'failed')
        ? 'failed'
        : reports.some((r) => r.status === 'applied')
          ? 'applied'
          : 'unchanged';
    const durationMs = now() - startedAt;
    const report: CycleReport = {
      status,
      families,
      problems,
      held,
      containers,
      startedAt,
      durationMs,
      ms: { fetch: Math.round(ms.fetch), compile: Math.round(ms.compile) },
    };
    this.record(report);
    for (const problem of problems)
      log.log(problem.kind === 'input' ? 'warn' : 'error', `sync.${problem.kind}`, {
        ...(problem.family && { family: problem.family }),
        message: problem.message,
      });
    log.log(status === 'failed' ? 'warn' : status === 'applied' ? 'info' : 'debug', 'sync.cycle', {
      status,
      durationMs: Math.round(durationMs),
      ms: report.ms,
      held: held.length,
      families,
    });
    return report;
  }

  private lastHeld: readonly string[] = [];

  /** The reconciler of a family, for asgc's chains of `prefix` (new ones when the prefix or the families changed). */
  private reconciler(family: Family, prefix: string): FamilyReconciler {
    let reconciler = this.reconcilers?.get(family);
    if (reconciler === undefined || reconciler.ownership.prefix !== prefix) {
      const { dataplane, policy, now } = this.options;
      reconciler = new FamilyReconciler(family, dataplane, { prefix }, policy, now);
      this.reconcilers ??= new Map();
      this.reconcilers.set(family, reconciler);
    }
    return reconciler;
  }

  private async readInputs(force: boolean, problems: Problem[]) {
    const { metrics } = this.options;
    let metadata: SourceText & { readonly value?: unknown };
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
      this.lastMetadata = { text: metadata.text, containers: ingested.containers, warnings: ingested.warnings };
    }
    const containers = this.lastMetadata.containers;
    if (this.lastMetadata.warnings.length > 0)
      problems.push({ kind: 'input', message: `container metadata: ${describeErrors(this.lastMetadata.warnings)}` });

    const fetchStart = performance.now();
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
    const config = this.mergedConfig(await readOptional(this.files, this.options.asgcConfigPath));
    metrics.stage('fetch', (performance.now() - fetchStart) / 1000);

    const texts = [metadata, documents.securityGroups, documents.policies, endpoints, config].map((source) => source?.text);
    const taken = this.config.take(config, problems);
    this.lastConfig = taken;
    return {
      texts,
      containers,
      securityGroups: documents.securityGroups,
      config: taken,
      policies: this.policies.take(documents.policies, problems),
      endpoints: this.endpoints.take(endpoints, problems),
    };
  }

  /** asgc's own configuration file over the base configuration (VPA's, the CNI's), under run-time switches. */
  private mergedConfig(file: SourceText | undefined): SourceText | undefined {
    const base = this.options.baseConfig;
    if (base === undefined && Object.keys(this.overrides).length === 0) return file;
    let own: Record<string, unknown> = {};
    if (file !== undefined) {
      const parsed = parseJson(file.text, file.file);
      // A file that is not a JSON object stands as it is: its last good version is taken, with the reason.
      if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) return file;
      own = parsed.value as Record<string, unknown>;
    }
    const from = [base?.file, file?.file, Object.keys(this.overrides).length > 0 ? 'run-time switches' : undefined];
    return {
      file: from.filter((part) => part !== undefined).join(' + '),
      text: JSON.stringify({ ...base?.document, ...own, ...this.overrides }),
    };
  }

  /**
   * VPA tells an app when its security group rules change (on its log stream, by log_config):
   * asgc says it as a log event, for each container whose chains a sync wrote.
   */
  private tellApps(compiled: CompiledCell, containers: readonly Container[], written: ReadonlySet<string>): void {
    if (written.size === 0) return;
    for (const container of containers) {
      const logConfig = container.logConfig;
      const entry = compiled.manifest.get(container.handle);
      if (logConfig === undefined || entry === undefined) continue;
      const chains = Object.values(entry).flatMap((family) => [...family.chains, ...(family.asgChain ? [family.asgChain] : [])]);
      if (!chains.some((chain) => written.has(chain))) continue;
      this.options.log.log('info', 'app.security_groups_updated', {
        container: container.handle,
        app_log: {
          message: 'Security group rules were updated',
          source_name: logConfig.sourceName,
          tags: { source_id: logConfig.guid, instance_id: String(logConfig.index), ...logConfig.tags },
        },
      });
    }
  }

  private compile(inputs: Awaited<ReturnType<Syncer['readInputs']>>): CompiledCell {
    const { securityGroups } = inputs;
    let groups: ReturnType<typeof ingestSecurityGroups> | undefined;
    if (securityGroups !== undefined && securityGroups.text === this.lastGroups?.text) groups = this.lastGroups.value;
    else if (securityGroups !== undefined) {
      const parsed = parseJson(securityGroups.text, securityGroups.file);
      if (!parsed.ok) throw new CycleFailure({ kind: 'input', message: `security groups: ${parsed.error.message}` });
      groups = ingestSecurityGroups(parsed.value, securityGroups.file, this.groupRules);
      this.groupRules.endRound();
      if (groups.documentErrors > 0)
        throw new CycleFailure({ kind: 'input', message: `security groups document invalid: ${describeErrors(groups.errors)}` });
      this.lastGroups = { text: securityGroups.text, value: groups };
    }
    const cell = {
      securityGroups: groups?.groups ?? [],
      policies: inputs.policies,
      containers: inputs.containers,
      endpoints: inputs.endpoints,
      config: inputs.config,
    };
    if (this.names?.prefix !== inputs.config.chainPrefix) this.names = new ChainNamer(inputs.config.chainPrefix);
    const compiled = compileCell(cell, { memo: this.memo, names: this.names });
    if (!compiled.ok)
      throw new CycleFailure({ kind: 'compile', message: compiled.error.map((error) => error.message).join('; ') });
    return compiled.value;
  }

  private async syncFamily(
    family: Family,
    compiled: CompiledCell | undefined,
    prefix: string,
    problems: Problem[],
    written: Set<string>,
  ): Promise<FamilyReport> {
    const { metrics, log } = this.options;
    const reconciler = this.reconciler(family, prefix);
    const desired = compiled === undefined ? undefined : textRuleset(compiled[family]);
    let outcome: FamilyOutcome;
    try {
      outcome = await reconciler.sync(desired);
    } catch (error) {
      if (!(error instanceof DataplaneError)) throw error;
      problems.push({ kind: classify(error), family, message: error.message });
      return { status: 'failed', restores: 0 };
    }
    for (const plan of outcome.plans) for (const change of plan.chains) written.add(change.chain);
    const label = String(family);
    const { timings } = outcome;
    metrics.stage('read', timings.readMs / 1000, family);
    metrics.stage('plan', timings.planMs / 1000, family);
    metrics.stage('restore', timings.restoreMs / 1000, family);
    metrics.stage('verify', timings.verifyMs / 1000, family);
    metrics.restores.inc({ family: label }, outcome.scripts.length);
    metrics.reads.inc({ family: label, kind: 'table' }, outcome.reads.full);
    metrics.reads.inc({ family: label, kind: 'chain' }, outcome.reads.chains);
    if (outcome.repaired) {
      metrics.driftRepairs.inc({ family: label });
      log.log('warn', 'sync.drift_repaired', { family, message: 'the live rules had been changed by someone else' });
    }
    const sets = describeSetOutcome(family, outcome.sets);
    if (sets !== undefined) log.log(outcome.sets?.inUse.length ? 'warn' : 'info', 'sync.ipsets', { family, message: sets });
    if (desired !== undefined) {
      const chains = desired.tables.flatMap((table) => [...table.chains.values()]);
      metrics.rules.set(
        { family: label },
        chains.reduce((sum, chain) => sum + chain.specs.length, 0),
      );
      metrics.chains.set({ family: label }, chains.length);
    }
    return {
      status: outcome.scripts.length > 0 ? 'applied' : 'unchanged',
      restores: outcome.scripts.length,
      reads: { tables: outcome.reads.full, chains: outcome.reads.chains },
      ms: {
        read: Math.round(timings.readMs),
        plan: Math.round(timings.planMs),
        restore: Math.round(timings.restoreMs),
        verify: Math.round(timings.verifyMs),
      },
    };
  }

  private record(report: CycleReport): void {
    const { metrics } = this.options;
    metrics.cycles.inc({ result: report.status });
    metrics.cycleDuration.observe(report.durationMs / 1000);
    for (const problem of report.problems) metrics.errors.inc({ kind: problem.kind });
    metrics.heldContainers.set(report.held.length);
    metrics.degraded.set(report.status === 'failed' || report.problems.length > 0 ? 1 : 0);
    if (report.status !== 'failed') metrics.lastSuccess.set(Math.round((report.startedAt + report.durationMs) / 1000));
  }
}
