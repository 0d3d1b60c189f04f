// The agent benchmark: sync cycles of `asgc agent` at cell scale, in a network namespace it
// creates, against baselines measured in the same run (iptables-save of both families, and
// the restore the cycle itself ran). Needs root.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/agent/logger.js';
import { Metrics } from '../../src/agent/metrics.js';
import { FileSource } from '../../src/agent/sources.js';
import { type CycleReport, Syncer } from '../../src/agent/sync.js';
import type { Backend } from '../../src/iptables/backend.js';
import { type Dataplane, IptablesDataplane } from '../../src/iptables/dataplane.js';
import { runProcess } from '../../src/iptables/exec.js';
import type { Family } from '../../src/model/address.js';
import { generateCell } from './cell-generator.js';
import { fmt, median } from './stats.js';

/** Counts and times what a cycle asks of iptables. */
class CountingDataplane implements Dataplane {
  saves = 0;
  restores = 0;
  canaries = 0;
  restoreMs = 0;

  constructor(private readonly inner: Dataplane) {}

  get backend(): Backend {
    return this.inner.backend;
  }

  save(family: Family): Promise<string> {
    this.saves++;
    return this.inner.save(family);
  }

  async restore(family: Family, script: string): Promise<void> {
    this.restores++;
    const start = performance.now();
    try {
      await this.inner.restore(family, script);
    } finally {
      this.restoreMs += performance.now() - start;
    }
  }

  chainExists(family: Family, chain: string): Promise<boolean> {
    this.canaries++;
    return this.inner.chainExists(family, chain);
  }

  reset(): void {
    this.saves = this.restores = this.canaries = 0;
    this.restoreMs = 0;
  }
}

const quiet: Logger = { log: () => undefined };

/** CPU time of this process and of its reaped children (the iptables tools), in ms. */
async function cpuMs(): Promise<{ self: number; children: number }> {
  const usage = process.cpuUsage();
  const fields = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[13]) + Number(fields[14]); // cutime + cstime, in clock ticks (100/s)
  return { self: (usage.user + usage.system) / 1000, children: ticks * 10 };
}

interface CycleSample {
  wallMs: number;
  selfCpuMs: number;
  childCpuMs: number;
  saves: number;
  restores: number;
  canaries: number;
  restoreMs: number;
  report: CycleReport;
}

async function measuredCycle(syncer: Syncer, dataplane: CountingDataplane): Promise<CycleSample> {
  dataplane.reset();
  const before = await cpuMs();
  const start = performance.now();
  const report = await syncer.runCycle(false);
  const wallMs = performance.now() - start;
  const after = await cpuMs();
  if (report.status === 'failed') throw new Error(`cycle failed: ${JSON.stringify(report.problems)}`);
  const { saves, restores, canaries, restoreMs } = dataplane;
  return { wallMs, selfCpuMs: after.self - before.self, childCpuMs: after.children - before.children, saves, restores, canaries, restoreMs, report };
}

export async function agentBenchmark(containers: number, runs: number, soakCycles: number, backends: readonly Backend[]): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n== agent: skipped (needs root for network namespaces)');
    return;
  }
  const directory = await mkdtemp(join(tmpdir(), 'asgc-bench-agent-'));
  const groupsFile = join(directory, 'security_groups.json');
  const metadataFile = join(directory, 'containers.json');
  const base = generateCell(containers);
  // Each variant changes one space's ASG (a different one each time, so every change is real).
  const variant = (n: number) => JSON.stringify(generateCell(containers, containers, new Set([1 + ((n * 37) % containers)])).securityGroups);
  const baseGroups = JSON.stringify(base.securityGroups);
  try {
    for (const backend of backends) {
      const namespace = `asgc-bench-agent-${process.pid}`;
      await writeFile(groupsFile, baseGroups);
      await writeFile(metadataFile, JSON.stringify(base.containers));
      await runProcess(['ip', 'netns', 'add', namespace]);
      try {
        const dataplane = new CountingDataplane(new IptablesDataplane(backend, { namespace }));
        const syncer = new Syncer({
          source: new FileSource(directory),
          metadataPath: metadataFile,
          dataplane,
          families: [4, 6],
          resyncIntervalMs: 3_600_000,
          now: Date.now,
          log: quiet,
          metrics: new Metrics(),
        });
        console.log(`\n== agent, ${backend}: ${containers} containers x ${base.rulesPerFamily} ASG rule elements per family, both families`);
        const first = await measuredCycle(syncer, dataplane);
        console.log(`first cycle from empty: ${fmt(first.wallMs)} (${first.restores} restores)`);

        const idle: CycleSample[] = [];
        for (let run = 0; run < runs * 4; run++) idle.push(await measuredCycle(syncer, dataplane));
        const mi = (key: keyof Omit<CycleSample, 'report'>) => median(idle.map((sample) => sample[key]));
        console.log(
          `(a) inputs unchanged   wall ${fmt(mi('wallMs'))} | CPU ${fmt(mi('selfCpuMs'))} asgc + ${fmt(mi('childCpuMs'))} iptables (target <= 100 ms) | ${mi('saves')} saves, ${mi('restores')} restores, ${mi('canaries')} canary checks (median of ${idle.length})`,
        );

        const changed: (CycleSample & { saveBaselineMs: number })[] = [];
        for (let run = 0; run < runs; run++) {
          await writeFile(groupsFile, variant(run));
          const sample = await measuredCycle(syncer, dataplane);
          if (sample.report.status !== 'applied') throw new Error(`expected an applied cycle, got ${sample.report.status}`);
          // Baseline in the same state: what reading both families' live state costs.
          const start = performance.now();
          for (const family of [4, 6] as const) await dataplane.save(family);
          changed.push({ ...sample, saveBaselineMs: performance.now() - start });
        }
        const mc = (key: keyof Omit<(typeof changed)[number], 'report'>) => median(changed.map((sample) => sample[key]));
        const budget = mc('saveBaselineMs') + 500 + mc('restoreMs');
        console.log(
          `(b) one ASG changed    wall ${fmt(mc('wallMs'))} vs budget ${fmt(budget)} = iptables-save x2 families ${fmt(mc('saveBaselineMs'))} + 0.5 s + its minimal restores ${fmt(mc('restoreMs'))} -> ${((100 * mc('wallMs')) / budget).toFixed(0)}% of budget | ${mc('saves')} saves, ${mc('restores')} restores | CPU ${fmt(mc('selfCpuMs'))} asgc (median of ${changed.length})`,
        );

        // Soak: a change every 10th cycle, no change otherwise; memory is what the agent holds.
        const rssBefore = process.memoryUsage().rss;
        for (let cycle = 0; cycle < soakCycles; cycle++) {
          if (cycle % 10 === 0) await writeFile(groupsFile, variant(runs + cycle));
          await measuredCycle(syncer, dataplane);
        }
        globalThis.gc?.();
        const rssAfter = process.memoryUsage().rss;
        console.log(
          `RSS after ${soakCycles} more cycles (1 in 10 changed): ${(rssAfter / 2 ** 20).toFixed(0)} MB (before them ${(rssBefore / 2 ** 20).toFixed(0)} MB), heap used ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MB`,
        );
      } finally {
        await runProcess(['ip', 'netns', 'del', namespace]);
      }
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
