// The apply benchmark: minimal updates vs rewriting the whole ruleset, on the same kernel in
// the same run, at cell scale. Needs root (it works in a network namespace it creates).
import { isEmptyPlan, type Plan, planChanges } from '../../src/diff/plan.js';
import { renderPlanScripts } from '../../src/diff/script.js';
import { type Backend, tools } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { type Ruleset, type Table, tableNamed } from '../../src/ir/ruleset.js';
import { parseSaveText, savedTables } from '../../src/iptables/save-file.js';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import { ownedStateMatches } from '../../src/reconcile/live-check.js';
import { runProcess } from '../../src/exec/process.js';
import type { Family } from '../../src/model/address.js';
import { renderRuleset, textTable } from '../../src/render/save-text.js';
import type { CompiledScenario } from '../../src/scenario/pipeline.js';
import { compileGenerated } from '../support/scenarios.js';
import { generateCell } from './cell-generator.js';
import { fmt, median } from './stats.js';

const ownership = { prefix: 'asgc-' };

/** What apply does with a table it just read: the fast scan, else parse and diff. */
function planFromText(text: string, desired: Ruleset): Plan {
  const table = textTable(tableNamed(desired, 'filter') as Table, desired.family);
  if (ownedStateMatches(text, table, ownership))
    return { family: desired.family, table: 'filter', chains: [], hooks: [], kept: [] };
  const parsed = parseSaveText(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error.slice(0, 3)));
  return planChanges(desired.family, table, savedTables(parsed.value).get('filter'), ownership);
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await work();
  return [value, performance.now() - start];
}

interface CaseResult {
  saveMs: number;
  parseDiffRenderMs: number;
  restores: number;
  lines: number;
  bytes: number;
  applyMs: number;
  rewriteMs: number;
}

export async function applyBenchmark(
  containers: number,
  runs: number,
  backends: readonly Backend[],
  families: readonly Family[],
): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n== apply: skipped (needs root for network namespaces)');
    return;
  }
  const base = compileGenerated(generateCell(containers));
  const tenth = new Set(Array.from({ length: Math.round(containers / 10) }, (_, i) => 1 + i * 10));
  const cases: [string, CompiledScenario][] = [
    ['(a) no change', base],
    ['(b) one container changed', compileGenerated(generateCell(containers, containers, new Set([Math.ceil(containers / 2)])))],
    ['(c) one container added', compileGenerated(generateCell(containers + 1))],
    ['(d) 10% of containers changed', compileGenerated(generateCell(containers, containers, tenth))],
  ];
  for (const backend of backends) {
    for (const family of families) {
      const namespace = `asgc-bench-${process.pid}`;
      await runProcess(['ip', 'netns', 'add', namespace]);
      try {
        const dataplane = hostDataplane(backend, { namespace });
        const fullText = renderRuleset(base.cell[family]);
        const rules = fullText.split('\n-A ').length - 1;
        console.log(
          `\n== apply, ${backend}, IPv${family}: ${containers} containers, ${rules.toLocaleString()} rules (median of ${runs})`,
        );
        const [, loadMs] = await timed(() => applyFamily(dataplane, base.cell[family], ownership));
        console.log(`first apply from empty (create everything, verify): ${fmt(loadMs)}`);
        for (const [label, target] of cases) {
          const results: CaseResult[] = [];
          for (let run = 0; run < runs; run++) {
            await applyFamily(dataplane, base.cell[family], ownership);
            const [saved, saveMs] = await timed(() => dataplane.tables.save(family, 'filter'));
            const start = performance.now();
            const plan = planFromText(saved, target.cell[family]);
            const scripts = isEmptyPlan(plan) ? [] : renderPlanScripts(plan);
            const parseDiffRenderMs = performance.now() - start;
            const [, applyMs] = await timed(async () => {
              for (const script of scripts) await dataplane.tables.restore(family, script);
            });
            // The baseline: what a tool that rewrites everything pays for the same state.
            const rewrite = renderRuleset(target.cell[family]);
            const [result, rewriteMs] = await timed(() =>
              runProcess(inNamespace(namespace, [tools(backend, family).restore]), { input: rewrite, timeoutMs: 300_000 }),
            );
            if (result.code !== 0) throw new Error(result.stderr);
            results.push({
              saveMs,
              parseDiffRenderMs,
              restores: scripts.length,
              lines: scripts.reduce((sum, script) => sum + script.split('\n').length - 3, 0),
              bytes: scripts.reduce((sum, script) => sum + Buffer.byteLength(script), 0),
              applyMs,
              rewriteMs,
            });
          }
          const m = (key: keyof CaseResult) => median(results.map((result) => result[key]));
          const ratio =
            m('applyMs') > 0 ? `${(m('rewriteMs') / m('applyMs')).toFixed(1)}x less than the rewrite` : 'no restore at all';
          console.log(
            `${label.padEnd(32)} save ${fmt(m('saveMs'))} | parse+diff+render ${fmt(m('parseDiffRenderMs'))} | ${m('restores')} restore(s), ${m('lines')} lines, ${(m('bytes') / 1024).toFixed(1)} KiB | apply ${fmt(m('applyMs'))} vs full rewrite ${fmt(m('rewriteMs'))} (${ratio})`,
          );
        }
      } finally {
        await runProcess(['ip', 'netns', 'del', namespace]);
      }
    }
  }
}
