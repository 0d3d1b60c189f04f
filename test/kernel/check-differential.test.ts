// The evaluator against the kernel: random ASGs and deny networks compiled and loaded on a
// "cell" namespace that routes a container namespace to an outside host; for 200 generated
// probes per family (TCP, UDP, ICMP/ICMPv6 echo), what the evaluator says must be what the
// kernel does: answered (accepted) or refused by the REJECT (rejected). The outside host takes
// every destination of the test range as its own (AnyIP routes) and answers from it. Once with
// plain rules and once with every destination list as an ipset.
import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellEvaluator } from '../../src/check/cell-links.js';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import type { CompiledCell } from '../../src/compile/compile.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import {
  allowedByAsgs,
  asgWorld,
  type DenyNetworks,
  type Probe,
  packetOf,
  type RawGroup,
  type WorldContainer,
  routeDestinationsOutside,
  worldTexts,
} from '../support/asg-world.js';
import { type BatchProbe, runBatch, startBatchServer } from '../support/batch-probes.js';
import { kernelTestsEnabled } from '../support/kernel.js';
import { createTopology, type HostSpec, OUTSIDE, type Topology } from '../support/topology.js';

const enabled = kernelTestsEnabled('check-differential');
const PROBES_PER_FAMILY = 200;
const PORT_BASE = 7000;

const HOSTS: HostSpec[] = [
  { name: 'c1', kind: 'container', ipv4: '192.0.2.2', ipv6: '2001:db8:c1::2', linkLocal: 'fe80::2' },
  OUTSIDE,
];
const CONTAINER: WorldContainer = { handle: 'c1', ip: '192.0.2.2', ipv6: '2001:db8:c1::2', space: 'space-a', workload: 'app' };

interface World {
  readonly seed: number;
  readonly cell: CompiledCell;
  readonly probes: Record<4 | 6, Probe[]>;
  readonly verdicts: Record<4 | 6, string[]>;
}

/**
 * A world (seeded, so a failure can be replayed) in which both verdicts are common for each
 * family: a test where everything is accepted or rejected would prove little. Chosen by the
 * ASG semantics read directly, not by the evaluator under test.
 */
function pickWorld(ipsets: boolean): World {
  const world = asgWorld({ portBase: PORT_BASE, icmpTypes: [8] });
  const wanted = fc.tuple(
    world.groups.filter((groups) => groups.length >= 2),
    world.denyNetworks,
  );
  for (let seed = 1; ; seed++) {
    const [groups, deny] = fc.sample(wanted, { seed, numRuns: 1 })[0] as [RawGroup[], DenyNetworks];
    const compiled = compileScenario(worldTexts(groups, deny, [CONTAINER], ipsets ? { ipset_min_destinations: 2 } : {}));
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
    const cell = compiled.value.cell;
    const probes = { 4: [] as Probe[], 6: [] as Probe[] };
    const verdicts = { 4: [] as string[], 6: [] as string[] };
    for (const family of [4, 6] as const) {
      const evaluator = cellEvaluator(cell[family], compiled.value.policy);
      const sample = fc.sample(
        world.probe([CONTAINER]).filter((probe) => probe.family === family),
        { seed: seed * 7919 + family, numRuns: PROBES_PER_FAMILY },
      );
      probes[family] = sample;
      verdicts[family] = sample.map((probe) => evaluator.evaluate(packetOf(probe), { hook: 'FORWARD' }).verdict);
    }
    const mixed = ([4, 6] as const).every((family) => {
      const accepted = probes[family].filter((probe) => allowedByAsgs(groups, deny, probe)).length;
      return accepted >= PROBES_PER_FAMILY * 0.25 && accepted <= PROBES_PER_FAMILY * 0.75;
    });
    // With ipsets on, each family's rules must name some: the kernel then answers through them.
    const setsUsed = !ipsets || ([4, 6] as const).every((family) => (cell[family].sets?.length ?? 0) > 0);
    if (mixed && setsUsed) return { seed, cell, probes, verdicts };
    if (seed > 500) throw new Error('no world with both verdicts in 500 seeds');
  }
}

const asBatch = (probe: Probe): BatchProbe =>
  probe.protocol === 'icmp'
    ? { protocol: 'icmp', to: probe.destination, type: probe.icmpType, code: probe.icmpCode }
    : { protocol: probe.protocol, to: probe.destination, port: probe.port };

const SUITES = BACKENDS.flatMap((backend) =>
  [false, true].map((ipsets) => ({ backend, ipsets, rules: ipsets ? 'lists as ipsets' : 'rules only' })),
);

describe.skipIf(!enabled).each(SUITES)('the evaluator agrees with the kernel ($backend, $rules)', ({ backend, ipsets }) => {
  let topology: Topology;
  let server: ChildProcess;
  const world = pickWorld(ipsets);

  beforeAll(async () => {
    topology = await createTopology(HOSTS);
    await routeDestinationsOutside(topology);
    const ports = Array.from({ length: 10 }, (_, i) => PORT_BASE + i);
    server = await startBatchServer(topology.namespace('outside'), ports);
    const dataplane = hostDataplane(backend, { namespace: topology.cell });
    for (const family of [4, 6] as const) await applyFamily(dataplane, world.cell[family], { prefix: 'asgc-' });
  }, 60_000);

  afterAll(async () => {
    server?.kill();
    await topology?.destroy();
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: ${PROBES_PER_FAMILY} probes, the evaluator's verdict is the kernel's`, async () => {
      const results = await runBatch(topology.namespace('c1'), world.probes[family].map(asBatch));
      const differences = world.probes[family].flatMap((probe, i) => {
        const expected = world.verdicts[family][i] === 'ACCEPT' ? 'accepted' : 'rejected';
        return results[i] === expected
          ? []
          : [`${probe.protocol} ${probe.destination} port ${probe.port}: evaluator ${expected}, kernel ${results[i]}`];
      });
      expect(differences, `world seed ${world.seed}`).toEqual([]);
      // Both verdicts were exercised, on every protocol the probes used.
      expect(new Set(results)).toEqual(new Set(['accepted', 'rejected']));
    }, 120_000);
  }
});
