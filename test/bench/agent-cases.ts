// The agent benchmark, at cell scale in a network namespace it creates, each figure against a
// baseline the kernel sets in the same run. Needs root.
//  (a) a cycle whose inputs did not change, in process: wall time, asgc's and iptables' CPU,
//      the reads it made;
//  (b) one ASG change applied by the real `asgc agent` process, from POST /force-sync to its
//      answer: on nf_tables against one full read-back of both families (iptables-save of each,
//      one after the other); on legacy against the kernel's restore of that one chain in each
//      family the change touches (the lock runs them one after the other);
//  a soak: the real agent cycling every 50 ms, one ASG changed every 10th cycle, its resident
//  memory along 1,000 cycles.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/agent/logger.js';
import { Metrics } from '../../src/agent/metrics.js';
import { FileSource } from '../../src/agent/sources.js';
import { type CycleReport, Syncer } from '../../src/agent/sync.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { runProcess } from '../../src/exec/process.js';
import { type Backend, tools } from '../../src/iptables/backend.js';
import { type Dataplane, IptablesCommand } from '../../src/iptables/dataplane.js';
import type { Family } from '../../src/model/address.js';
import { defaultPolicy } from '../../src/reconcile/family.js';
import { IpsetCommand } from '../../src/ipset/dataplane.js';
import { generateCell } from './cell-generator.js';
import { fmt, median } from './stats.js';

/** Counts what a cycle asks of iptables. */
class CountingDataplane implements Dataplane {
  saves = 0;
  restores = 0;
  chainReads = 0;

  constructor(private readonly inner: Dataplane) {}

  get backend(): Backend {
    return this.inner.backend;
  }

  save(family: Family, table: string): Promise<string> {
    this.saves++;
    return this.inner.save(family, table);
  }

  restore(family: Family, script: string): Promise<void> {
    this.restores++;
    return this.inner.restore(family, script);
  }

  listChain(family: Family, table: string, chain: string): Promise<readonly string[] | undefined> {
    this.chainReads++;
    return this.inner.listChain(family, table, chain);
  }

  hasTable(family: Family, table: string): Promise<boolean> {
    return this.inner.hasTable(family, table);
  }

  reset(): void {
    this.saves = this.restores = this.chainReads = 0;
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
  chainReads: number;
}

async function measuredCycle(syncer: Syncer, dataplane: CountingDataplane): Promise<CycleSample & { report: CycleReport }> {
  dataplane.reset();
  const before = await cpuMs();
  const start = performance.now();
  const report = await syncer.runCycle(false);
  const wallMs = performance.now() - start;
  const after = await cpuMs();
  if (report.status === 'failed') throw new Error(`cycle failed: ${JSON.stringify(report.problems)}`);
  const { saves, restores, chainReads } = dataplane;
  return {
    wallMs,
    selfCpuMs: after.self - before.self,
    childCpuMs: after.children - before.children,
    saves,
    restores,
    chainReads,
    report,
  };
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** VmRSS of a process, in MB. */
async function residentMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

/** The real sidecar, `asgc agent`, on the scenario directory and namespace; resolves once it listens. */
async function startAgent(directory: string, namespace: string, backend: Backend, interval: number) {
  const cli = new URL('../../../bin/asgc', import.meta.url).pathname;
  const agent = spawn(
    process.execPath,
    [
      cli,
      'agent',
      '--scenario-dir',
      directory,
      '--netns',
      namespace,
      '--backend',
      backend,
      '--interval',
      String(interval),
      '--jitter',
      '0',
      '--listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    agent.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const started = /"event":"agent\.started".*?"listen":"[^"]*:(\d+)"/.exec(buffered);
      if (started) resolve(Number(started[1]));
      buffered = buffered.slice(-4096);
    });
    agent.once('exit', (code) => reject(new Error(`asgc agent exited ${code} before it started`)));
  });
  const stop = async () => {
    if (agent.exitCode !== null || agent.signalCode !== null) return;
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    agent.kill('SIGTERM');
    await exited;
  };
  return { agent, port, stop };
}

async function forceSync(port: number): Promise<{ status: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/force-sync`, { method: 'POST' });
  return (await response.json()) as { status: string };
}

async function cyclesRun(port: number): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...metrics.matchAll(/^asgc_cycles_total\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Write a file as a real writer would (atomically): the agent never sees half of it. */
async function replace(path: string, text: string): Promise<void> {
  await writeFile(`${path}.new`, text);
  await rename(`${path}.new`, path);
}

/** The kernel's cost of replacing one chain of the cell (its rules as they are) in one family. */
/** The kernel's own cost of rewriting one ASG chain of the family (restore --noflush). */
export async function oneChainRestoreMs(namespace: string, backend: Backend, family: Family): Promise<number> {
  const saved = await runProcess(inNamespace(namespace, [tools(backend, family).save, '-t', 'filter']));
  const chain = /^:(asgc-r-\S+)/m.exec(saved.stdout)?.[1] as string;
  const rules = saved.stdout.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
  const script = ['*filter', `:${chain} - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
  return timed(async () => {
    const result = await runProcess(inNamespace(namespace, [tools(backend, family).restore, '--noflush', '-w', '10']), {
      input: script,
    });
    if (result.code !== 0) throw new Error(result.stderr);
  });
}

async function fullReadBackMs(namespace: string, backend: Backend): Promise<number> {
  return timed(async () => {
    for (const family of [4, 6] as const) await runProcess(inNamespace(namespace, [tools(backend, family).save, '-t', 'filter']));
  });
}

export async function agentBenchmark(
  containers: number,
  runs: number,
  soakCycles: number,
  backends: readonly Backend[],
): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n== agent: skipped (needs root for network namespaces)');
    return;
  }
  const directory = await mkdtemp(join(tmpdir(), 'asgc-bench-agent-'));
  const groupsFile = join(directory, 'security_groups.json');
  const base = generateCell(containers);
  // Variant n has the ASGs of the first n of a list of spaces changed, the next m spaces' in
  // their IPv4 destinations only: from one variant to the next exactly one ASG changes.
  const spaces = (from: number, count: number) =>
    new Set(Array.from({ length: count }, (_, i) => 1 + (((from + i) * 37) % containers)));
  const variant = (n: number, ipv4Only = 0) =>
    JSON.stringify(generateCell(containers, containers, spaces(0, n), spaces(n, ipv4Only)).securityGroups);
  try {
    for (const backend of backends) {
      const namespace = `asgc-bench-agent-${process.pid}`;
      await writeFile(groupsFile, JSON.stringify(base.securityGroups));
      await writeFile(join(directory, 'containers.json'), JSON.stringify(base.containers));
      await runProcess(['ip', 'netns', 'add', namespace]);
      try {
        console.log(
          `\n== agent, ${backend}: ${containers} containers x ${base.rulesPerFamily} ASG rule elements per family, both families`,
        );
        // (a) in process, as the agent runs its cycles.
        const dataplane = new CountingDataplane(new IptablesCommand(backend, { namespace }));
        let clock = Date.now();
        const syncer = new Syncer({
          source: new FileSource(directory),
          metadataPath: join(directory, 'containers.json'),
          dataplane: { tables: dataplane, sets: new IpsetCommand(namespace) },
          families: [4, 6],
          policy: defaultPolicy(backend, 3_600_000),
          now: () => clock,
          log: quiet,
          metrics: new Metrics('bench'),
        });
        const first = await timed(() => syncer.runCycle(false));
        console.log(`first cycle from empty: ${fmt(first)}`);
        clock += 60_000; // past any deferred check of what the first cycle wrote
        await syncer.runCycle(false);
        const idle: CycleSample[] = [];
        for (let run = 0; run < runs * 4; run++) {
          clock += 1_000;
          idle.push(await measuredCycle(syncer, dataplane));
        }
        const mi = (key: keyof CycleSample) => median(idle.map((sample) => sample[key]));
        const budget = backend === 'nft' ? 60 : 100;
        console.log(
          `(a) inputs unchanged   wall ${fmt(mi('wallMs'))} (target <= ${budget} ms) | CPU ${fmt(mi('selfCpuMs'))} asgc + ${fmt(mi('childCpuMs'))} iptables | ${mi('saves')} table reads, ${mi('chainReads')} chain reads, ${mi('restores')} restores (median of ${idle.length})`,
        );
        if (backend === 'legacy') {
          clock += 31_000; // the canary is due: on legacy one whole-table read per family
          const canary = await measuredCycle(syncer, dataplane);
          console.log(`    with the canary due (every 30 s on legacy): wall ${fmt(canary.wallMs)} | ${canary.saves} table reads`);
        }

        // (b) the real agent process, changes pushed through POST /force-sync.
        const { port, stop } = await startAgent(directory, namespace, backend, 3600);
        try {
          await forceSync(port); // its first cycle: it reads the state the in-process syncer left
          for (const [label, families] of [
            ['IPv4 and IPv6', 'both'],
            ['IPv4 only', 'ipv4'],
          ] as const) {
            const walls: number[] = [];
            const baselines: number[] = [];
            for (let run = 0; run < runs; run++) {
              await replace(groupsFile, families === 'both' ? variant(run + 1) : variant(runs, run + 1));
              const start = performance.now();
              const answer = await forceSync(port);
              walls.push(performance.now() - start);
              if (answer.status !== 'applied') throw new Error(`expected an applied cycle, got ${JSON.stringify(answer)}`);
              if (backend === 'nft') baselines.push(await fullReadBackMs(namespace, backend));
              else {
                let sum = await oneChainRestoreMs(namespace, backend, 4);
                if (families === 'both') sum += await oneChainRestoreMs(namespace, backend, 6);
                baselines.push(sum);
              }
            }
            const [wall, baseline] = [median(walls), median(baselines)];
            const against =
              backend === 'nft'
                ? `one full read-back of both families ${fmt(baseline)} -> ${(wall / baseline).toFixed(2)}x (target <= 0.1x, <= 100 ms)`
                : `the kernel's one-chain restore in ${families === 'both' ? 'each family' : 'IPv4'} ${fmt(baseline)} -> ${(wall / baseline).toFixed(2)}x (target <= 1.5x)`;
            console.log(
              `(b) one ASG changed (${label}), POST /force-sync to answer: ${fmt(wall)} vs ${against} (median of ${runs})`,
            );
          }
        } finally {
          await stop();
        }

        // Memory does not depend on the backend: one soak, on the first.
        if (soakCycles > 0 && backend === backends[0]) await soak(directory, namespace, backend, soakCycles, variant);
      } finally {
        await runProcess(['ip', 'netns', 'del', namespace]);
      }
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * The real sidecar cycling every 50 ms on the same inputs, one ASG changed every 10th cycle:
 * its resident memory along `cycles` cycles, and its growth over the second half.
 */
async function soak(
  directory: string,
  namespace: string,
  backend: Backend,
  cycles: number,
  variant: (n: number) => string,
): Promise<void> {
  const { agent, port, stop } = await startAgent(directory, namespace, backend, 0.05);
  try {
    let changes = 0;
    let done = await cyclesRun(port);
    const series = new Map<number, number>();
    while (done < cycles) {
      const decile = Math.floor((10 * done) / cycles);
      if (!series.has(decile)) series.set(decile, await residentMb(agent.pid as number));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = await cyclesRun(port);
      if (Math.floor(now / 10) > changes) {
        changes = Math.floor(now / 10);
        await replace(join(directory, 'security_groups.json'), variant(changes % 500));
      }
      done = now;
    }
    const end = await residentMb(agent.pid as number);
    const half = series.get(5) ?? NaN;
    console.log(
      `soak: RSS of \`asgc agent\` after ${done} cycles (${changes} with an ASG change): ${end.toFixed(0)} MB (target <= 256 MB); over the last half ${half.toFixed(0)} -> ${end.toFixed(0)} MB (${(100 * (end / half - 1)).toFixed(1)}%, target <= 5%); along the way (tenth of the run: MB) ${[...series].map(([tenth, mb]) => `${tenth}:${mb.toFixed(0)}`).join(' ')}`,
    );
  } finally {
    await stop();
  }
}
