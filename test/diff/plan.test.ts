import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shortestEdit } from '../../src/diff/edit-script.js';
import { isEmptyPlan } from '../../src/diff/plan.js';
import { renderPlanScripts } from '../../src/diff/script.js';
import { RestoreError } from '../../src/iptables/dataplane.js';
import { applyFamily } from '../../src/reconcile/apply.js';
import { NonConvergenceError } from '../../src/reconcile/errors.js';
import { FamilyReconciler } from '../../src/reconcile/family.js';
import { withRestore } from '../support/dataplanes.js';
import { renderRuleset, textRuleset } from '../../src/render/save-text.js';
import { ownedMatch, planFor } from '../support/plans.js';
import { cell, compileText, container, securityGroup } from '../support/cell.js';
import { compileCell } from '../../src/compile/compile.js';
import { diffCase, expectConverged, filterTable, PREFIX } from '../support/random-state.js';
import { SimulatedDataplane } from '../support/simulated-dataplane.js';

const ownership = { prefix: PREFIX };

function compiled(
  groups = [securityGroup('dns', [{ protocol: 'udp', destination: '192.0.2.53', ports: '53' }], { runningDefault: true })],
  handles = ['c1', 'c2'],
) {
  const result = compileCell(
    cell(
      groups,
      handles.map((handle, i) => container(handle, [`10.255.0.${i + 2}`])),
    ),
    // The planner's cases are written rule by rule, in the plain form.
    { optimise: false },
  );
  if (!result.ok) throw new Error('compile failed');
  return result.value;
}

describe('shortest edit script', () => {
  it('finds the minimal deletions and insertions (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 12 }),
        fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 12 }),
        (before, after) => {
          const script = shortestEdit(before, after, 100);
          if (!script) throw new Error('no script');
          const kept = before.filter((_, i) => !script.deletions.includes(i));
          expect(kept).toEqual(after.filter((_, i) => !script.insertions.includes(i)));
          // Minimal: edits = |a| + |b| - 2 LCS.
          const lcs = (x: string[], y: string[]): number => {
            const table = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
            for (let i = 1; i <= x.length; i++)
              for (let j = 1; j <= y.length; j++)
                table[i]![j] = x[i - 1] === y[j - 1] ? table[i - 1]![j - 1]! + 1 : Math.max(table[i - 1]![j]!, table[i]![j - 1]!);
            return table[x.length]![y.length]!;
          };
          expect(script.deletions.length + script.insertions.length).toBe(before.length + after.length - 2 * lcs(before, after));
        },
      ),
    );
  });

  it('gives up beyond its bound', () => {
    expect(shortestEdit(['a', 'b', 'c'], ['x', 'y', 'z'], 4)).toBeUndefined();
  });
});

describe('plans', () => {
  it('is empty when the live state is what was compiled, even when written differently', () => {
    const desired = compiled()[4];
    const text = renderRuleset(desired)
      .replace(/-p udp -m udp --dport 53/g, '-p 17 --dport 53:53')
      .replace('-m state --state RELATED,ESTABLISHED', '-m state --state ESTABLISHED,RELATED');
    expect(isEmptyPlan(planFor(desired, filterTable(text), ownership))).toBe(true);
  });

  it('creates everything from an empty table, hook last in the script', () => {
    const plan = planFor(compiled()[4], undefined, ownership);
    expect(plan.chains.every((change) => change.kind === 'create')).toBe(true);
    const script = renderPlanScripts(plan)[0] as string;
    expect(script.indexOf('-I FORWARD 1 -j asgc-forward')).toBeGreaterThan(script.lastIndexOf('-A asgc-'));
  });

  it('edits one rule by index, on a copy simulated in restore order', () => {
    const desired = compiled()[4];
    const live = renderRuleset(desired).replace('-A asgc-forward -s 10.255.0.3/32', '-A asgc-forward -s 10.255.0.9/32');
    const plan = planFor(desired, filterTable(live), ownership);
    expect(plan.chains).toEqual([
      expect.objectContaining({
        kind: 'edit',
        chain: 'asgc-forward',
        // Dispatch: -d c1, -d c2, -s c1, -s c2; the fourth rule is wrong.
        edits: [
          { op: 'delete', index: 4 },
          { op: 'append', rule: expect.stringMatching(/^-s 10\.255\.0\.3\/32 -j asgc-o-c2-/) },
        ],
      }),
    ]);
    expect(plan.hooks).toEqual([]);
  });

  it('removes a foreign rule found inside an owned chain', () => {
    const desired = compiled()[4];
    const live = renderRuleset(desired).replace('COMMIT', '-A asgc-forward -j ACCEPT\nCOMMIT');
    const plan = planFor(desired, filterTable(live), ownership);
    expect(renderPlanScripts(plan)).toEqual(['*filter\n-D asgc-forward 5\nCOMMIT\n']);
  });

  it('moves its hook back to the top of FORWARD, deleting by full spec, leaving foreign rules alone', () => {
    const desired = compiled()[4];
    const live = renderRuleset(desired).replace(
      '-A FORWARD -j asgc-forward',
      '-A FORWARD -i eth9 -j ACCEPT\n-A FORWARD -j asgc-forward',
    );
    const plan = planFor(desired, filterTable(live), ownership);
    expect(renderPlanScripts(plan)).toEqual(['*filter\n-D FORWARD -j asgc-forward\n-I FORWARD 1 -j asgc-forward\nCOMMIT\n']);
  });

  it('unhooks, flushes and deletes chains no longer wanted, last', () => {
    const before = compiled(undefined, ['c1', 'c2'])[4];
    const after = compiled(undefined, ['c1'])[4];
    const script = renderPlanScripts(planFor(after, filterTable(renderRuleset(before)), ownership))[0] as string;
    const lines = script.split('\n');
    const deleted = lines.findIndex((line) => line.startsWith('-X asgc-o-c2-'));
    expect(lines.findIndex((line) => line.startsWith('-F asgc-o-c2-'))).toBeLessThan(deleted);
    expect(lines.findIndex((line) => line.startsWith('-D asgc-forward'))).toBeLessThan(deleted);
    expect(
      renderPlanScripts(planFor(after, filterTable(renderRuleset(before)), ownership), { separateDeletions: true }),
    ).toHaveLength(2);
  });

  it('rewrites a chain when that is shorter than editing it', () => {
    const many = securityGroup(
      'web',
      [{ protocol: 'tcp', destination: '203.0.113.1,203.0.113.2,203.0.113.3', ports: '80,443' }],
      { runningDefault: true },
    );
    const other = securityGroup(
      'web',
      [{ protocol: 'tcp', destination: '198.51.100.1,198.51.100.2,198.51.100.3', ports: '80,443' }],
      { runningDefault: true },
    );
    const plan = planFor(compiled([other])[4], filterTable(renderRuleset(compiled([many])[4])), ownership);
    expect(plan.chains).toEqual([expect.objectContaining({ kind: 'rewrite', chain: expect.stringMatching(/^asgc-r-global-/) })]);
    expect(renderPlanScripts(plan)[0]).toMatch(
      /^\*filter\n:asgc-r-global-\S+ - \[0:0\]\n(-A asgc-r-global-\S+ .*\n){6}COMMIT\n$/,
    );
  });

  it('never writes a line for a chain or rule it does not own', () => {
    const desired = compiled()[4];
    const live = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':asgcx - [0:0]',
      ':DOCKER-USER - [0:0]',
      '-A FORWARD -j DOCKER-USER',
      '-A DOCKER-USER -j RETURN',
      '-A asgcx -j ACCEPT',
      'COMMIT',
      '',
    ].join('\n');
    const script = renderPlanScripts(planFor(desired, filterTable(live), { prefix: 'asgc-' }))[0] as string;
    expect(script).not.toMatch(/DOCKER-USER|asgcx/);
  });
});

describe('applying a plan to a strict simulated dataplane (property)', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: owned chains end as desired, foreign state is untouched, the next plan is empty`, async () => {
      await fc.assert(
        fc.asyncProperty(diffCase(family), async (testCase) => {
          const dataplane = new SimulatedDataplane({ [family]: testCase.live });
          const outcome = await applyFamily(dataplane.host, testCase.desired, { prefix: PREFIX });
          expectConverged(testCase, filterTable(await dataplane.save(family, 'filter')));
          expect(
            isEmptyPlan(planFor(testCase.desired, filterTable(await dataplane.save(family, 'filter')), { prefix: PREFIX })),
          ).toBe(true);
          expect(dataplane.restores.length).toBe(outcome.scripts.length);
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('apply', () => {
  it('runs no restore when nothing differs', async () => {
    const desired = compiled()[6];
    const dataplane = new SimulatedDataplane({ 6: renderRuleset(desired) });
    expect((await applyFamily(dataplane.host, desired, ownership)).scripts).toEqual([]);
    expect(dataplane.restores).toEqual([]);
  });

  it('on nf_tables "chain busy", moves deletions into a second transaction', async () => {
    const before = compiled(undefined, ['c1', 'c2'])[4];
    const after = compiled(undefined, ['c1'])[4];
    const simulated = new SimulatedDataplane({ 4: renderRuleset(before) });
    let first = true;
    const busyOnce = withRestore(simulated, async (family, script) => {
      if (first && script.includes('-X ')) {
        first = false;
        throw new RestoreError(
          family,
          'iptables-restore v1.8.9 (nf_tables): \nline 9: CHAIN_DEL failed (Device or resource busy): chain x',
          9,
          [],
        );
      }
      await simulated.restore(family, script);
    });
    const outcome = await applyFamily({ tables: busyOnce }, after, ownership);
    expect(outcome.scripts).toHaveLength(2);
    expect(outcome.scripts[1]).toMatch(/^\*filter\n-X asgc-i-c2-\S+\n-X asgc-o-c2-\S+\nCOMMIT\n$/);
  });

  it('reports non-convergence loudly instead of looping', async () => {
    const desired = compiled()[4];
    const simulated = new SimulatedDataplane();
    const ignoring = withRestore(simulated, async () => undefined);
    await expect(applyFamily({ tables: ignoring }, desired, ownership)).rejects.toBeInstanceOf(NonConvergenceError);
  });

  it('keeps the old state when a restore fails midway', async () => {
    const before = compileText(cell([], [container('c1', ['10.255.0.2'])]))[4];
    const simulated = new SimulatedDataplane({ 4: before });
    const failing = withRestore(simulated, (f, script) =>
      simulated.restore(f, script.replace('COMMIT', '-A asgc-forward -j asgc-missing\nCOMMIT')),
    );
    await expect(applyFamily({ tables: failing }, compiled()[4], ownership)).rejects.toBeInstanceOf(RestoreError);
    expect(await simulated.save(4, 'filter')).toBe(before);
  });
});

describe('the fast read-back check', () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: says "equal" only when the full diff finds nothing, and always once converged (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(diffCase(family), async (testCase) => {
          if (ownedMatch(testCase.live, testCase.desired, ownership)) {
            expect(isEmptyPlan(planFor(testCase.desired, filterTable(testCase.live), ownership))).toBe(true);
          }
          const dataplane = new SimulatedDataplane({ [family]: testCase.live });
          await applyFamily(dataplane.host, testCase.desired, ownership);
          const kept = planFor(testCase.desired, filterTable(await dataplane.save(family, 'filter')), ownership).kept;
          // An owned chain kept for a foreign chain's sake is not "equal": the full diff decides that case.
          expect(ownedMatch(await dataplane.save(family, 'filter'), testCase.desired, ownership)).toBe(kept.length === 0);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('notices every kind of difference in owned state, and ignores foreign state', () => {
    const desired = compiled()[4];
    const text = renderRuleset(desired);
    const check = (live: string) => ownedMatch(live, desired, ownership);
    expect(check(text)).toBe(true);
    const withForeign = text
      .replace(':OUTPUT ACCEPT [0:0]\n', ':OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n')
      .replace('COMMIT', '-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT');
    expect(check(withForeign)).toBe(true);
    const firstOwnedRule = text.split('\n').find((line) => line.startsWith('-A asgc-o-')) as string;
    expect(check(text.replace(`${firstOwnedRule}\n`, ''))).toBe(false);
    expect(check(text.replace(firstOwnedRule, `${firstOwnedRule}\n${firstOwnedRule}`))).toBe(false);
    expect(check(text.replace(firstOwnedRule, firstOwnedRule.replace('ACCEPT', 'DROP')))).toBe(false);
    expect(check(text.replace(':asgc-forward - [0:0]\n', ':asgc-forward - [0:0]\n:asgc-stale - [0:0]\n'))).toBe(false);
    expect(check(text.replace('COMMIT', '-A FORWARD -j asgc-forward\nCOMMIT'))).toBe(false);
    expect(check(text.replace('-A FORWARD -j asgc-forward', '-A FORWARD -i eth9 -j ACCEPT\n-A FORWARD -j asgc-forward'))).toBe(
      false,
    );
    expect(check(text.replace('-A asgc-o-', '[3:180] -A asgc-o-'))).toBe(false);
    expect(check('')).toBe(false);
  });
});

describe('reconciling against a remembered state', () => {
  const patient = { resyncIntervalMs: Infinity, canaryIntervalMs: Infinity, verify: 'now', postWriteDelayMs: 0 } as const;

  for (const family of [4, 6] as const) {
    it(`IPv${family}: a change converges whatever the memory got wrong, never touching foreign state (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(diffCase(family), diffCase(family), async (testCase, other) => {
          // The reconciler applies (and so remembers) \`other\`; then someone else replaces the
          // whole table behind its back.
          const dataplane = new SimulatedDataplane({ [family]: renderRuleset(other.desired) });
          const reconciler = new FamilyReconciler(family, dataplane.host, ownership, patient);
          await reconciler.sync(textRuleset(other.desired));
          dataplane.load(family, testCase.live);
          const [saves, restores, reads] = [dataplane.saves, dataplane.restores.length, dataplane.chainsRead.length];
          const outcome = await reconciler.sync(textRuleset(testCase.desired));
          if (isEmptyPlan(planFor(testCase.desired, filterTable(renderRuleset(other.desired)), ownership))) {
            // Nothing to change by memory: nothing is read or written (drift waits for the resync).
            expect([dataplane.saves - saves, dataplane.restores.length - restores, outcome.reads]).toEqual([
              0,
              0,
              { full: 0, chains: 0 },
            ]);
            return;
          }
          // What it wrote is as desired, and so are the hooks; other drift waits for the resync.
          const after = filterTable(await dataplane.save(family, 'filter'));
          const wanted = textRuleset(testCase.desired).tables.find((table) => table.name === 'filter')?.chains;
          for (const change of outcome.plans.flatMap((plan) => [...plan.chains, ...plan.hooks]))
            expect(after.chains.get(change.chain)?.specs.slice(0, wanted?.get(change.chain)?.specs.length), change.chain).toEqual(
              wanted?.get(change.chain)?.specs ?? undefined,
            );
          // Planned against memory, a chain is edited by rule index only where it was just read.
          const read = new Set(dataplane.chainsRead.slice(reads).map((entry) => entry.split(' ')[1]));
          const edited = [...(dataplane.restores[restores]?.script ?? '').matchAll(/^-[DI] (asgc-\S+)/gm)].map(
            (match) => match[1],
          );
          for (const chain of edited) expect(read.has(chain as string), `${chain} edited by index unread`).toBe(true);
          // The resync reads it all and converges, never touching foreign state.
          await reconciler.sync(undefined, { fullRead: true });
          expectConverged(testCase, filterTable(await dataplane.save(family, 'filter')));
          expect(isEmptyPlan(planFor(testCase.desired, filterTable(await dataplane.save(family, 'filter')), ownership))).toBe(
            true,
          );
        }),
        { numRuns: 300 },
      );
    });
  }

  it('reads nothing and restores nothing when the memory already is the desired state', async () => {
    const desired = compiled()[4];
    const dataplane = new SimulatedDataplane({ 4: renderRuleset(desired) });
    const reconciler = new FamilyReconciler(4, dataplane.host, ownership, patient);
    await reconciler.sync(textRuleset(desired));
    const [saves, restores, reads] = [dataplane.saves, dataplane.restores.length, dataplane.chainReads];
    const outcome = await reconciler.sync(textRuleset(desired));
    expect([outcome.reads, dataplane.saves - saves, dataplane.restores.length - restores, dataplane.chainReads - reads]).toEqual([
      { full: 0, chains: 0 },
      0,
      0,
      0,
    ]);
  });
});
