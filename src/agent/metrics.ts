// The agent's metrics, with prom-client: histograms with buckets (they aggregate across cells,
// where summaries without quantiles do not), every label set present at 0 from the start, the
// default process metrics, and asgc_build_info.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Family } from '../model/address.js';

export const PROBLEM_KINDS = ['metadata', 'fetch', 'input', 'compile', 'apply', 'lock', 'converge'] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export const CYCLE_RESULTS = ['applied', 'unchanged', 'failed'] as const;

/** Stages of a cycle: fetch and compile are the cell's; the others each family's. */
export const CELL_STAGES = ['fetch', 'compile'] as const;
export const FAMILY_STAGES = ['read', 'plan', 'restore', 'verify'] as const;
export type Stage = (typeof CELL_STAGES)[number] | (typeof FAMILY_STAGES)[number];

/** From a few milliseconds (a no-change cycle) to a full resync of a large cell. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const FAMILIES = ['4', '6'] as const;

export class Metrics {
  readonly registry = new Registry();
  readonly cycles: Counter<'result'>;
  readonly cycleDuration: Histogram;
  readonly stageDuration: Histogram<'stage' | 'family'>;
  readonly restores: Counter<'family'>;
  readonly reads: Counter<'family' | 'kind'>;
  readonly driftRepairs: Counter<'family'>;
  readonly errors: Counter<'kind'>;
  readonly rules: Gauge<'family'>;
  readonly chains: Gauge<'family'>;
  readonly heldContainers: Gauge;
  readonly degraded: Gauge;
  readonly lastSuccess: Gauge;

  constructor(version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'asgc_build_info', help: 'asgc version (always 1).', labelNames: ['version'], registers }).set(
      { version },
      1,
    );
    this.cycles = new Counter({
      name: 'asgc_cycles_total',
      help: 'Sync cycles, by result (applied, unchanged, failed).',
      labelNames: ['result'],
      registers,
    });
    this.cycleDuration = new Histogram({
      name: 'asgc_cycle_duration_seconds',
      help: 'Wall time of sync cycles.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.stageDuration = new Histogram({
      name: 'asgc_stage_duration_seconds',
      help: 'Wall time of each stage of a cycle: fetch and compile (family "all"); read, plan, restore and verify per family.',
      labelNames: ['stage', 'family'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.restores = new Counter({
      name: 'asgc_restores_total',
      help: 'iptables-restore runs, per family.',
      labelNames: ['family'],
      registers,
    });
    this.reads = new Counter({
      name: 'asgc_reads_total',
      help: 'Reads of the live rules, per family: whole tables (kind "table") and single chains (kind "chain").',
      labelNames: ['family', 'kind'],
      registers,
    });
    this.driftRepairs = new Counter({
      name: 'asgc_drift_repairs_total',
      help: 'Syncs that found the live rules changed by someone else and repaired them, per family.',
      labelNames: ['family'],
      registers,
    });
    this.errors = new Counter({
      name: 'asgc_errors_total',
      help: `Errors by kind (${PROBLEM_KINDS.join(', ')}).`,
      labelNames: ['kind'],
      registers,
    });
    this.rules = new Gauge({
      name: 'asgc_rules',
      help: 'Rules asgc last applied, per family.',
      labelNames: ['family'],
      registers,
    });
    this.chains = new Gauge({
      name: 'asgc_chains',
      help: 'Chains asgc last applied, per family.',
      labelNames: ['family'],
      registers,
    });
    this.heldContainers = new Gauge({
      name: 'asgc_held_containers',
      help: 'Containers kept on their last applied (or default-deny) rules because their ASGs do not compile.',
      registers,
    });
    this.degraded = new Gauge({
      name: 'asgc_degraded',
      help: '1 when the last cycle left something out of sync, else 0.',
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'asgc_last_success_timestamp_seconds',
      help: 'When a cycle last brought every family in sync (Unix time).',
      registers,
    });
    // Every label set from the start, at 0: a rate over a series that appears late is wrong.
    for (const result of CYCLE_RESULTS) this.cycles.inc({ result }, 0);
    for (const kind of PROBLEM_KINDS) this.errors.inc({ kind }, 0);
    for (const stage of CELL_STAGES) this.stageDuration.zero({ stage, family: 'all' });
    for (const family of FAMILIES) {
      this.restores.inc({ family }, 0);
      this.driftRepairs.inc({ family }, 0);
      for (const kind of ['table', 'chain']) this.reads.inc({ family, kind }, 0);
      for (const stage of FAMILY_STAGES) this.stageDuration.zero({ stage, family });
      this.rules.set({ family }, 0);
      this.chains.set({ family }, 0);
    }
  }

  stage(stage: Stage, seconds: number, family?: Family): void {
    this.stageDuration.observe({ stage, family: family === undefined ? 'all' : String(family) }, seconds);
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One sample's value (tests). */
  async value(name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    const found = values.find((entry) => Object.entries(labels).every(([key, value]) => String(entry.labels[key]) === value));
    return found?.value ?? 0;
  }
}
