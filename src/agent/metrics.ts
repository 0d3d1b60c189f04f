// The agent's metrics, in the Prometheus text exposition format.
type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'summary';
  readonly values: Map<string, { labels: Labels; value: number; count?: number }>;
}

const DEFINITIONS = {
  asgc_cycles_total: ['counter', 'Sync cycles, by result (applied, unchanged, failed).'],
  asgc_cycle_duration_seconds: ['summary', 'Wall time of sync cycles.'],
  asgc_stage_duration_seconds: [
    'summary',
    'Wall time of each stage of a cycle (fetch, compile, diff, apply), per family where it applies.',
  ],
  asgc_restores_total: ['counter', 'iptables-restore runs, per family.'],
  asgc_rules: ['gauge', 'Rules asgc last applied, per family.'],
  asgc_chains: ['gauge', 'Chains asgc last applied, per family.'],
  asgc_errors_total: ['counter', 'Errors by kind (metadata, fetch, input, compile, apply, lock, converge).'],
  asgc_held_containers: [
    'gauge',
    'Containers kept on their last applied (or default-deny) rules because their ASGs do not compile.',
  ],
  asgc_degraded: ['gauge', '1 when the last cycle left something out of sync, else 0.'],
  asgc_last_success_timestamp_seconds: ['gauge', 'When a cycle last brought every family in sync (Unix time).'],
  process_resident_memory_bytes: ['gauge', 'Resident memory of the agent process.'],
} as const satisfies Record<string, readonly ['counter' | 'gauge' | 'summary', string]>;

export type MetricName = keyof typeof DEFINITIONS;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${labels[name]}`)
    .join(',');
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  private readonly families = new Map<MetricName, Family>();

  constructor() {
    for (const [name, [type, help]] of Object.entries(DEFINITIONS))
      this.families.set(name as MetricName, { type, help, values: new Map() });
  }

  inc(name: MetricName, labels: Labels = {}, by = 1): void {
    const entry = this.entry(name, labels);
    entry.value += by;
  }

  set(name: MetricName, value: number, labels: Labels = {}): void {
    this.entry(name, labels).value = value;
  }

  observe(name: MetricName, value: number, labels: Labels = {}): void {
    const entry = this.entry(name, labels);
    entry.value += value;
    entry.count = (entry.count ?? 0) + 1;
  }

  get(name: MetricName, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(key(labels))?.value ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const { labels, value, count } of family.values.values()) {
        const text = Object.entries(labels)
          .map(([label, labelValue]) => `${label}="${escape(labelValue)}"`)
          .join(',');
        const suffix = text === '' ? '' : `{${text}}`;
        if (family.type === 'summary') lines.push(`${name}_sum${suffix} ${value}`, `${name}_count${suffix} ${count ?? 0}`);
        else lines.push(`${name}${suffix} ${value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  private entry(name: MetricName, labels: Labels) {
    const family = this.families.get(name) as Family;
    const id = key(labels);
    let entry = family.values.get(id);
    if (entry === undefined) {
      entry = { labels, value: 0 };
      family.values.set(id, entry);
    }
    return entry;
  }
}
