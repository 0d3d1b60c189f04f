// diff and apply against the real kernel, in namespaces the tests create: golden scenarios
// from empty, foreign state surviving, minimal updates at cell scale, atomic failure, and a
// sample of random (live, desired) pairs. Both backends, both families.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEmptyPlan, type Plan } from '../../src/diff/plan.js';
import { applyFamily, hostDataplane, planFamily } from '../../src/reconcile/apply.js';
import { BACKENDS, type Backend, tools } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { RestoreError } from '../../src/iptables/dataplane.js';
import { withRestore } from '../support/dataplanes.js';
import { type Family, FAMILIES } from '../../src/model/address.js';
import { listScenarios } from '../../src/scenario/golden.js';
import { RULES_FILE } from '../../src/scenario/pipeline.js';
import { generateCell } from '../bench/cell-generator.js';
import {
  kernelTestsEnabled,
  mustRun,
  recordingRunner,
  restore,
  save,
  withNamespace,
  FOREIGN_RAW_TABLE,
} from '../support/kernel.js';
import { diffCase, expectConverged, filterTable, PREFIX, savedTable } from '../support/random-state.js';
import { compileDirectory, compileGenerated } from '../support/scenarios.js';
import { tableNamed } from '../../src/ir/ruleset.js';

const enabled = kernelTestsEnabled('diff and apply');
const combos = BACKENDS.flatMap((backend) => FAMILIES.map((family) => ({ backend, family })));
const ownership = { prefix: 'asgc-' };

const restoresIn = (commands: string[][]) => commands.filter((argv) => argv.some((word) => word.endsWith('-restore'))).length;

describe.skipIf(!enabled)('apply against the kernel', () => {
  it.each(combos)(
    'golden scenarios from an empty namespace, then a second apply runs no restore ($backend, IPv$family)',
    async ({ backend, family }) => {
      for (const scenario of await listScenarios('rules')) {
        const compiled = await compileDirectory(join('rules', scenario));
        const golden = await readFile(join('golden', scenario, RULES_FILE[family]), 'utf8');
        await withNamespace(async (namespace) => {
          const recorder = recordingRunner();
          const dataplane = hostDataplane(backend, { namespace, run: recorder.run });
          const first = await applyFamily(dataplane, compiled.cell[family], ownership);
          // One transaction per table.
          expect(first.scripts.length).toBe(compiled.cell[family].tables.length);
          expect(await save(namespace, backend, family)).toBe(golden);
          const before = restoresIn(recorder.commands);
          const second = await applyFamily(dataplane, compiled.cell[family], ownership);
          expect(second.scripts).toEqual([]);
          expect(restoresIn(recorder.commands)).toBe(before);
          expect((await planFamily(dataplane, compiled.cell[family], ownership)).every(isEmptyPlan)).toBe(true);
        });
      }
    },
    120_000,
  );

  /**
   * Someone else's rules: no connection tracking for VXLAN in the raw table (a chain of its own
   * hooked into PREROUTING), a nat masquerade, and a DOCKER-USER chain hooked into FORWARD.
   */
  const foreignState = (masquerade: string, blocked: string) =>
    [
      ...FOREIGN_RAW_TABLE,
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      `-A POSTROUTING ${masquerade} -j MASQUERADE`,
      'COMMIT',
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':DOCKER-USER - [0:0]',
      '-A INPUT -i lo -j ACCEPT',
      '-A FORWARD -i eth9 -o eth9 -j ACCEPT',
      '-A FORWARD -j DOCKER-USER',
      `-A DOCKER-USER -s ${blocked} -m comment --comment "block list" -j DROP`,
      '-A DOCKER-USER -j RETURN',
      'COMMIT',
      '',
    ].join('\n');
  const FOREIGN: Record<Family, string> = {
    4: foreignState('-s 10.255.0.0/16 ! -o silk-vtep', '203.0.113.0/24'),
    6: foreignState('-s fd00:255::/64 -o eth0', '2001:db8:bad::/48'),
  };

  /** The lines of a full save (all tables) that are not asgc's. */
  async function foreignLines(namespace: string, backend: Backend, family: Family): Promise<string[]> {
    const all = await mustRun(inNamespace(namespace, [tools(backend, family).save]));
    return all.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('#') && !line.includes('asgc-'));
  }

  it.each(combos)(
    'foreign chains and rules survive apply, change and removal of every container ($backend, IPv$family)',
    async ({ backend, family }) => {
      await withNamespace(async (namespace) => {
        expect((await restore(namespace, backend, family, FOREIGN[family])).code).toBe(0);
        const foreign = await foreignLines(namespace, backend, family);
        const dataplane = hostDataplane(backend, { namespace });
        // Anti-spoofing in both families, then in IPv6 only: asgc's raw chain comes and goes in
        // IPv4 beside the foreign one, each table a transaction of its own.
        for (const scenario of ['ingress-and-host-access', 'dual-stack-cell', 'lifecycles-two-spaces', 'deny-networks']) {
          const compiled = (await compileDirectory(join('rules', scenario))).cell[family];
          await applyFamily(dataplane, compiled, ownership);
          expect(await foreignLines(namespace, backend, family)).toEqual(foreign);
          const saved = await save(namespace, backend, family);
          expect(filterTable(saved).chains.get('FORWARD')?.specs).toEqual([
            '-j asgc-forward',
            '-i eth9 -o eth9 -j ACCEPT',
            '-j DOCKER-USER',
          ]);
          const antiSpoofing = tableNamed(compiled, 'raw') !== undefined;
          expect(savedTable(saved, 'raw').chains.get('PREROUTING')?.specs).toEqual([
            ...(antiSpoofing ? ['-j asgc-antispoof'] : []),
            '-j VXLAN-NOTRACK',
          ]);
          expect(savedTable(saved, 'raw').chains.has('asgc-antispoof')).toBe(antiSpoofing);
          // And diff finds nothing left to do beside the foreign rules.
          expect((await planFamily(dataplane, compiled, ownership)).every(isEmptyPlan)).toBe(true);
        }
        // No containers left: asgc keeps only its hook and an empty dispatch chain.
        const empty = compileGenerated(generateCell(0));
        await applyFamily(dataplane, empty.cell[family], ownership);
        expect(await foreignLines(namespace, backend, family)).toEqual(foreign);
        const after = filterTable(await save(namespace, backend, family));
        expect([...after.chains.keys()].filter((chain) => chain.startsWith('asgc-'))).toEqual([
          'asgc-forward',
          'asgc-host',
          'asgc-input',
        ]);
      });
    },
    60_000,
  );

  it.each(combos)(
    'a restore that fails midway leaves the tables exactly as before ($backend, IPv$family)',
    async ({ backend, family }) => {
      await withNamespace(async (namespace) => {
        const real = hostDataplane(backend, { namespace });
        await applyFamily(real, (await compileDirectory('rules/dual-stack-cell')).cell[family], ownership);
        const before = await save(namespace, backend, family);
        const broken = withRestore(real.tables, (f, script) => {
          const lines = script.split('\n');
          lines.splice(Math.floor(lines.length / 2), 0, '-A asgc-forward -m bogus-module --bogus -j ACCEPT');
          return real.tables.restore(f, lines.join('\n'));
        });
        const next = (await compileDirectory('rules/lifecycles-two-spaces')).cell[family];
        const failure = await applyFamily({ tables: broken }, next, ownership).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(RestoreError);
        expect((failure as RestoreError).line).toBeGreaterThan(1);
        expect((failure as RestoreError).message).toContain('-m bogus-module');
        expect(await save(namespace, backend, family)).toBe(before);
      });
    },
    60_000,
  );

  it.each(combos)(
    'random live/desired pairs converge and leave foreign state alone ($backend, IPv$family)',
    async ({ backend, family }) => {
      const cases = fc.sample(diffCase(family), { numRuns: 12, seed: 20261123 + family });
      for (const testCase of cases) {
        await withNamespace(async (namespace) => {
          const loaded = await restore(namespace, backend, family, testCase.live);
          expect(loaded.code, loaded.stderr).toBe(0);
          const dataplane = hostDataplane(backend, { namespace });
          await applyFamily(dataplane, testCase.desired, { prefix: PREFIX });
          expectConverged(testCase, filterTable(await save(namespace, backend, family)));
        });
      }
    },
    120_000,
  );
});

describe.skipIf(!enabled)('minimal updates at cell scale (1,000 containers x 100 rules per family)', () => {
  const CONTAINERS = 1000;
  const base = compileGenerated(generateCell(CONTAINERS));

  /** The plans an apply made, one per table it changed (a second for a table would be a repair after reading back). */
  function byTable(plans: readonly Plan[]): Map<string, Plan> {
    const tables = new Map(plans.map((plan) => [plan.table, plan]));
    expect(tables.size).toBe(plans.length);
    return tables;
  }

  /** The one plan an apply made, in the filter table. */
  function only(plans: readonly Plan[]): Plan {
    const tables = byTable(plans);
    expect([...tables.keys()]).toEqual(['filter']);
    return tables.get('filter') as Plan;
  }

  function touched(plan: Plan): string[] {
    return [
      ...plan.chains.map((change) => `${change.kind} ${change.chain}`),
      ...plan.hooks.map((hook) => `hooks ${hook.chain}`),
    ].sort();
  }

  it.each(combos)(
    '$backend, IPv$family',
    async ({ backend, family }) => {
      await withNamespace(async (namespace) => {
        const dataplane = hostDataplane(backend, { namespace });
        await applyFamily(dataplane, base.cell[family], ownership);
        const spaceChain = (n: number) =>
          tableNamed(base.cell[family], 'filter')?.chains.find(
            (chain) =>
              chain.name.startsWith('asgc-r-') &&
              chain.rules.some(
                (rule) => rule.kind === 'rule' && rule.origin?.kind === 'asg' && rule.origin.groupName === `space-${n}-egress`,
              ),
          );

        // One container's ASGs change: only its space's chain, with a restore no bigger than 2x its rules.
        const changed = compileGenerated(generateCell(CONTAINERS, CONTAINERS, new Set([500])));
        const target = spaceChain(500);
        const plan = await applyFamily(dataplane, changed.cell[family], ownership);
        expect(touched(only(plan.plans)).map((entry) => entry.split(' ')[1])).toEqual([target?.name]);
        expect(plan.scripts.join('').split('\n').length - 3).toBeLessThanOrEqual(2 * (target?.rules.length ?? 0));

        // A container added: its ingress and egress chains (and its space's ASG chain), one rule
        // each way in the forward dispatch; in IPv6, one in the anti-spoofing chain (its address
        // from outside). Host access goes by interface: the input dispatch does not change.
        const added = compileGenerated(generateCell(CONTAINERS + 1, CONTAINERS + 1, new Set([500])));
        const addedPlans = byTable((await applyFamily(dataplane, added.cell[family], ownership)).plans);
        const addedPlan = addedPlans.get('filter') as Plan;
        const newChains = addedPlan.chains.filter((change) => change.kind === 'create').map((change) => change.chain.slice(0, 7));
        expect(newChains.sort()).toEqual(['asgc-i-', 'asgc-o-', 'asgc-r-']);
        const edits = (plan: Plan | undefined) =>
          (plan?.chains ?? [])
            .filter((change) => change.kind === 'edit')
            .map((change) => [change.chain, change.kind === 'edit' ? change.edits.map((edit) => edit.op) : []]);
        const insertion = expect.stringMatching(/^(insert|append)$/);
        expect(edits(addedPlan)).toEqual([['asgc-forward', [insertion, insertion]]]);
        expect(addedPlan.chains).toHaveLength(4);
        expect(edits(addedPlans.get('raw'))).toEqual(family === 6 ? [['asgc-antispoof', [insertion]]] : []);

        // ... and removed again: those chains deleted, those dispatch rules deleted.
        const removedPlans = byTable((await applyFamily(dataplane, changed.cell[family], ownership)).plans);
        const removedPlan = removedPlans.get('filter') as Plan;
        expect(removedPlan.chains.filter((change) => change.kind === 'delete')).toHaveLength(3);
        expect(edits(removedPlan)).toEqual([['asgc-forward', ['delete', 'delete']]]);
        expect(removedPlan.chains).toHaveLength(4);
        expect(edits(removedPlans.get('raw'))).toEqual(family === 6 ? [['asgc-antispoof', ['delete']]] : []);

        // A rule deleted and a chain flushed by hand: repaired, nothing else touched.
        const egress = tableNamed(base.cell[family], 'filter')?.chains.find((chain) => chain.name.startsWith('asgc-o-'))
          ?.name as string;
        const other = spaceChain(7)?.name as string;
        const iptables = family === 4 ? `iptables-${backend}` : `ip6tables-${backend}`;
        await mustRun(inNamespace(namespace, [iptables, '-w', '-D', egress, '2']));
        await mustRun(inNamespace(namespace, [iptables, '-w', '-F', other]));
        const repaired = only((await applyFamily(dataplane, changed.cell[family], ownership)).plans);
        expect(touched(repaired).map((entry) => entry.split(' ')[1])).toEqual([egress, other].sort());
        expect((await planFamily(dataplane, changed.cell[family], ownership)).every(isEmptyPlan)).toBe(true);
      });
    },
    300_000,
  );
});
