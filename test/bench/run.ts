// npm run bench: benchmarks with medians, and ratios against baselines measured in the same run.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runProcess } from '../../src/exec/process.js';
import { agentBenchmark } from './agent-cases.js';
import { checkBenchmark } from './check-cases.js';
import { applyBenchmark } from './apply-cases.js';
import { vpaBenchmark } from './vpa-cases.js';
import { reviewBenchmark } from './review-cases.js';
import { generateCell, type RuleShape } from './cell-generator.js';
import { fmt, median } from './stats.js';

const exec = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CONTAINERS = Number(process.env.BENCH_CONTAINERS ?? 1000);

/** Wall time of loading `text` with `tool` into a fresh network namespace, or undefined without root. */
async function kernelLoadMs(tool: string, text: string): Promise<number | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const namespace = `asgc-bench-${process.pid}`;
  if ((await runProcess(['ip', 'netns', 'add', namespace])).code !== 0) return undefined;
  try {
    const start = performance.now();
    const result = await runProcess(['ip', 'netns', 'exec', namespace, tool], { input: text, timeoutMs: 300_000 });
    if (result.code !== 0) throw new Error(`${tool}: ${result.stderr}`);
    return performance.now() - start;
  } finally {
    await runProcess(['ip', 'netns', 'del', namespace]);
  }
}

/** Medians of `asgc compile` run in fresh processes, with the optimiser on or off. */
async function compileRuns(directory: string, ipv4File: string, optimise: boolean): Promise<(key: string) => number> {
  const worker = new URL('./compile-once.js', import.meta.url).pathname;
  const samples: Record<string, number>[] = [];
  for (let i = 0; i < RUNS; i++) {
    const args = [worker, directory, optimise ? ipv4File : '-', ...(optimise ? [] : ['--no-optimize'])];
    const { stdout } = await exec(process.execPath, args);
    samples.push(JSON.parse(stdout) as Record<string, number>);
  }
  return (key) => median(samples.map((sample) => sample[key] as number));
}

async function compileCase(label: string, spaces: number, shape: RuleShape, withKernelBaseline: boolean): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'asgc-bench-'));
  try {
    const scenario = generateCell(CONTAINERS, spaces, new Set(), new Set(), shape);
    await writeFile(join(directory, 'security_groups.json'), JSON.stringify(scenario.securityGroups));
    await writeFile(join(directory, 'containers.json'), JSON.stringify(scenario.containers));
    const ipv4File = join(directory, 'iptables.rules');
    const m = await compileRuns(directory, ipv4File, true);
    const plain = await compileRuns(directory, ipv4File, false);
    const rules = m('rules');
    const total = m('totalMs');
    console.log(
      `\n== compile, ${label}: ${CONTAINERS} containers x ${scenario.rulesPerFamily} ASG rule elements per family, dual stack`,
    );
    console.log(`   (median of ${RUNS} fresh processes, each doing what \`asgc compile\` does)`);
    console.log(
      `output               ${rules.toLocaleString()} rules optimised, ${plain('rules').toLocaleString()} plain, ${(m('bytes') / 1e6).toFixed(1)} MB of iptables-save text`,
    );
    console.log(
      `stages               read ${fmt(m('readMs'))} | ingest+validate ${fmt(m('ingestMs'))} | compile ${fmt(m('compileMs'))} | render ${fmt(m('renderMs'))}`,
    );
    console.log(
      `total                ${fmt(total)} (target <= 1 s), ${Math.round(rules / (total / 1000)).toLocaleString()} rules/s; peak RSS ${m('maxRssMb').toFixed(0)} MB (target <= 300 MB)`,
    );
    console.log(
      `without the optimiser ${fmt(plain('totalMs'))} (compile ${fmt(plain('compileMs'))}, render ${fmt(plain('renderMs'))}) -> the optimiser costs ${fmt(m('compileMs') - plain('compileMs'))}, ${((100 * (total - plain('totalMs'))) / total).toFixed(0)}% of the whole compile (target <= 20% where nothing merges)`,
    );
    console.log(
      `baseline JSON.parse  ${fmt(m('jsonParseMs'))} of the same input -> asgc is ${(total / m('jsonParseMs')).toFixed(1)}x that`,
    );
    if (!withKernelBaseline) return;
    const text = await readFile(ipv4File, 'utf8');
    for (const tool of ['iptables-legacy-restore', 'iptables-nft-restore']) {
      const load = await kernelLoadMs(tool, text);
      const half = Math.round(rules / 2).toLocaleString();
      if (load === undefined) console.log(`baseline ${tool}: skipped (needs root and ip netns)`);
      else
        console.log(
          `baseline ${tool.padEnd(24)} ${fmt(load)} to load the IPv4 half (${half} rules) -> asgc's whole dual-stack compile is ${((100 * total) / load).toFixed(0)}% of it`,
        );
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

const which = process.argv[2] ?? 'all';
if (which === 'all' || which === 'compile') {
  await compileCase('worst case (every container in its own space, nothing shared)', CONTAINERS, 'mixed', true);
  await compileCase('nothing to merge (every destination distinct, one port each, nothing shared)', CONTAINERS, 'distinct', true);
  await compileCase('typical cell (20 spaces, ASG chains shared)', 20, 'mixed', false);
}
if (which === 'all' || which === 'apply') {
  await applyBenchmark(CONTAINERS, Number(process.env.BENCH_APPLY_RUNS ?? 3), ['nft', 'legacy'], [4, 6]);
}
if (which === 'all' || which === 'check') {
  await checkBenchmark(CONTAINERS);
}
if (which === 'all' || which === 'agent') {
  await agentBenchmark(CONTAINERS, Number(process.env.BENCH_AGENT_RUNS ?? 5), Number(process.env.BENCH_SOAK_CYCLES ?? 1000), [
    'nft',
    'legacy',
  ]);
}
if (which === 'all' || which === 'vpa') {
  await vpaBenchmark(CONTAINERS, Number(process.env.BENCH_VPA_RUNS ?? 5), ['nft', 'legacy']);
}
if (which === 'all' || which === 'review') {
  await reviewBenchmark(CONTAINERS, Number(process.env.BENCH_REVIEW_RUNS ?? 5));
}
