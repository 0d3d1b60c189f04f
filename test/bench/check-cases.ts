// The evaluator and the optimiser at cell scale: how many packets a second `asgc check` can
// judge over a 1,000-container ruleset (optimised and plain, with and without the trace), and
// how many rules the optimiser saves on realistic inputs. Everything measured in this run.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Evaluator } from '../../src/check/evaluate.js';
import { cellEvaluator, silkInterfaceName } from '../../src/check/cell-links.js';
import type { Packet } from '../../src/ir/packet.js';
import type { CompiledCell } from '../../src/compile/compile.js';
import type { Family } from '../../src/model/address.js';
import { readScenario } from '../../src/scenario/files.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import { generateCell, type GeneratedScenario } from './cell-generator.js';
import { median } from './stats.js';
import { tableNamed } from '../../src/ir/ruleset.js';

function compiledScenario(scenario: GeneratedScenario | Parameters<typeof compileScenario>[0], optimise: boolean) {
  const texts =
    'rulesPerFamily' in scenario
      ? {
          securityGroups: { file: 'security_groups.json', text: JSON.stringify(scenario.securityGroups) },
          containers: { file: 'containers.json', text: JSON.stringify(scenario.containers) },
        }
      : scenario;
  const result = compileScenario(texts, { optimise });
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return result.value;
}

const compiled = (scenario: Parameters<typeof compiledScenario>[0], optimise: boolean): CompiledCell =>
  compiledScenario(scenario, optimise).cell;

const ruleCount = (cell: CompiledCell, family: Family) =>
  tableNamed(cell[family], 'filter')?.chains.reduce((sum, chain) => sum + chain.rules.length, 0) ?? 0;

/** A deterministic stream of packets from the cell's containers to destinations their ASGs name, and others. */
function packets(containers: number, family: Family, count: number): Packet[] {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const result: Packet[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(random() * containers);
    const a = n & 255;
    const b = (n >> 8) & 255;
    const last = Math.floor(random() * 30);
    const ipv4 = (10n << 24n) | (255n << 16n) | (BigInt(n >> 8) << 8n) | BigInt(n & 255);
    const source = family === 4 ? ipv4 : (0x20010db830000001n << 64n) | BigInt(n);
    const destination =
      family === 4
        ? (198n << 24n) | (BigInt(b) << 16n) | (BigInt(a) << 8n) | BigInt(last)
        : (0x20010db8n << 96n) | (BigInt(n) << 80n) | BigInt(last);
    const tcp = random() < 0.7;
    result.push({
      family,
      source,
      destination,
      state: 'NEW',
      mark: 0,
      inInterface: silkInterfaceName(ipv4),
      ...(tcp
        ? { protocol: 6, sourcePort: 40000, destinationPort: random() < 0.5 ? 443 : 22 }
        : { protocol: 17, sourcePort: 40000, destinationPort: 53 }),
    });
  }
  return result;
}

function throughput(evaluator: Evaluator, stream: readonly Packet[], trace: boolean): { perSecond: number; allowed: number } {
  const samples: number[] = [];
  let allowed = 0;
  for (let run = 0; run < 5; run++) {
    allowed = 0;
    const start = performance.now();
    for (const packet of stream) if (evaluator.evaluate(packet, { hook: 'FORWARD', trace }).verdict === 'ACCEPT') allowed++;
    samples.push(stream.length / ((performance.now() - start) / 1000));
  }
  return { perSecond: median(samples), allowed };
}

/** One ASG rule with 6,000 destinations and 3 ports, as CF's agent would write it: 18,000 rules. */
function bigListScenario(contiguous: boolean, config: Readonly<Record<string, unknown>> = {}) {
  const destinations: string[] = [];
  for (let i = 0; i < 6000; i++) {
    const host = contiguous ? i : i * 7 + (i % 3);
    destinations.push(`10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}`);
  }
  const group = {
    guid: 'big-list',
    name: 'partner-hosts',
    rules: JSON.stringify([{ protocol: 'tcp', destination: destinations.join(','), ports: '80,443,8443' }]),
    running_default: true,
    staging_default: false,
    running_space_guids: [],
    staging_space_guids: [],
  };
  const containers = { c1: { handle: 'c1', ip: '10.255.0.2', metadata: { space_id: 's', container_workload: 'app' } } };
  return {
    securityGroups: { file: 'security_groups.json', text: JSON.stringify({ next: 0, security_groups: [group] }) },
    containers: { file: 'containers.json', text: JSON.stringify(containers) },
    config: { file: 'config.json', text: JSON.stringify(config) },
  };
}

export async function checkBenchmark(containers: number): Promise<void> {
  console.log('\n== optimiser: rules before (plain) and after (optimised), per family');
  const rows: [string, CompiledCell, CompiledCell][] = [];
  for (const name of (await readdir('rules')).sort()) {
    const texts = await readScenario({ directory: join('rules', name), paths: {}, required: ['containers'] });
    if (!texts.ok) throw new Error(JSON.stringify(texts.error));
    rows.push([`rules/${name}`, compiled(texts.value, false), compiled(texts.value, true)]);
  }
  for (const contiguous of [false, true]) {
    const texts = bigListScenario(contiguous);
    rows.push([
      `6,000 destinations x 3 ports (${contiguous ? 'one contiguous run' : 'scattered'})`,
      compiled(texts, false),
      compiled(texts, true),
    ]);
  }
  const asSet = bigListScenario(false, { ipset_min_destinations: 16 });
  const withSet = compiled(asSet, true);
  rows.push(['6,000 destinations x 3 ports (scattered), as an ipset', compiled(asSet, false), withSet]);
  const cell = generateCell(containers);
  const plainScenario = compiledScenario(cell, false);
  const optimisedScenario = compiledScenario(cell, true);
  const [plainCell, optimisedCell] = [plainScenario.cell, optimisedScenario.cell];
  rows.push([`${containers} containers x 100 rule elements (bench cell)`, plainCell, optimisedCell]);
  for (const [label, plain, optimised] of rows) {
    const cells = ([4, 6] as const).map((family) => {
      const [before, after] = [ruleCount(plain, family), ruleCount(optimised, family)];
      return `IPv${family} ${before.toLocaleString()} -> ${after.toLocaleString()} (${before === 0 ? 0 : Math.round((100 * (before - after)) / before)}% fewer)`;
    });
    console.log(`${label.padEnd(58)} ${cells.join(' | ')}`);
  }

  const sets = withSet[4].sets ?? [];
  console.log(
    `   (the ipset form names ${sets.length} set of ${sets.map((set) => set.members.length).join(', ')} CIDRs; ipset_min_destinations 16)`,
  );

  console.log(
    `\n== evaluator: packets judged per second, ${containers} containers x 100 rule elements per family (median of 5 passes)`,
  );
  for (const family of [4, 6] as const) {
    const stream = packets(containers, family, 20_000);
    const fast = throughput(cellEvaluator(optimisedCell[family], optimisedScenario.policy), stream, false);
    const plain = throughput(cellEvaluator(plainCell[family], plainScenario.policy), stream, false);
    const traced = throughput(cellEvaluator(optimisedCell[family], optimisedScenario.policy), stream, true);
    console.log(
      `IPv${family}  optimised ${Math.round(fast.perSecond).toLocaleString()}/s | plain rules ${Math.round(plain.perSecond).toLocaleString()}/s (optimised is ${(fast.perSecond / plain.perSecond).toFixed(2)}x) | with the full trace ${Math.round(traced.perSecond).toLocaleString()}/s | ${((100 * fast.allowed) / stream.length).toFixed(0)}% of ${stream.length.toLocaleString()} packets allowed`,
    );
    if (fast.allowed !== plain.allowed) throw new Error('optimised and plain rules disagree on the benchmark packets');
  }
}
