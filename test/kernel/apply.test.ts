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
import { kernelTestsEnabled, mustRun, recordingRunner, restore, save, withNamespace } from '../support/kernel.js';
import { diffCase, expectConverged, filterTable, PREFIX } from '../support/random-state.js';
import { compileDirectory, compileGenerated } from '../support/scenarios.js';

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
          expect(first.scripts.length).toBe(1);
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

  /** Someone else's rules: a nat masquerade, and a DOCKER-USER chain hooked into FORWARD. */
  const foreignState = (masquerade: string, blocked: string) =>
    [
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
        for (const scenario of ['dual-stack-cell', 'lifecycles-two-spaces', 'deny-networks']) {
          await applyFamily(dataplane, (await compileDirectory(join('rules', scenario))).cell[family], ownership);
          expect(await foreignLines(namespace, backend, family)).toEqual(foreign);
          const forward = filterTable(await save(namespace, backend, family)).chains.get('FORWARD')?.specs;
          expect(forward).toEqual(['-j asgc-forward', '-i eth9 -o eth9 -j ACCEPT', '-j DOCKER-USER']);
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

  /** The one plan an apply made (a second would be a repair after reading back). */
  function only(plans: readonly Plan[]): Plan {
    expect(plans).toHaveLength(1);
    return plans[0] as Plan;
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
          base.cell[family].tables[0]?.chains.find(
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
        // each way in the forward dispatch, one in the input dispatch.
        const added = compileGenerated(generateCell(CONTAINERS + 1, CONTAINERS + 1, new Set([500])));
        const addedPlan = only((await applyFamily(dataplane, added.cell[family], ownership)).plans);
        const newChains = addedPlan.chains.filter((change) => change.kind === 'create').map((change) => change.chain.slice(0, 7));
        expect(newChains.sort()).toEqual(['asgc-i-', 'asgc-o-', 'asgc-r-']);
        const edits = (plan: Plan) =>
          plan.chains
            .filter((change) => change.kind === 'edit')
            .map((change) => [change.chain, change.kind === 'edit' ? change.edits.map((edit) => edit.op) : []]);
        expect(edits(addedPlan)).toEqual([
          ['asgc-forward', [expect.stringMatching(/^(insert|append)$/), expect.stringMatching(/^(insert|append)$/)]],
          ['asgc-input', ['append']],
        ]);
        expect(addedPlan.chains).toHaveLength(5);

        // ... and removed again: those chains deleted, those dispatch rules deleted.
        const removedPlan = only((await applyFamily(dataplane, changed.cell[family], ownership)).plans);
        expect(removedPlan.chains.filter((change) => change.kind === 'delete')).toHaveLength(3);
        expect(edits(removedPlan)).toEqual([
          ['asgc-forward', ['delete', 'delete']],
          ['asgc-input', ['delete']],
        ]);
        expect(removedPlan.chains).toHaveLength(5);

        // A rule deleted and a chain flushed by hand: repaired, nothing else touched.
        const egress = base.cell[family].tables[0]?.chains.find((chain) => chain.name.startsWith('asgc-o-'))?.name as string;
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
