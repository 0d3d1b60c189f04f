// asgc review at cell scale: two cells of 1,000 containers x 100 rules per family that differ in
// 1% of their ASG rules (10 spaces' rules moved), and asgc explain of one container. Baseline:
// compiling one of the cells, measured in the same run.
import { accessOf, decideContext, DIRECTIONS, reviewCells, type ReviewSide } from '../../src/check/review.js';
import { contextLines, EXPLAIN_VERBS } from '../../src/check/review-text.js';
import { FAMILIES } from '../../src/model/address.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import { generateCell } from './cell-generator.js';
import { fmt, median } from './stats.js';

function side(containers: number, changed: ReadonlySet<number>): { side: ReviewSide; ms: number } {
  const scenario = generateCell(containers, containers, changed);
  const start = performance.now();
  const compiled = compileScenario({
    securityGroups: { file: 'security_groups.json', text: JSON.stringify(scenario.securityGroups) },
    containers: { file: 'containers.json', text: JSON.stringify(scenario.containers) },
  });
  const ms = performance.now() - start;
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return { side: { rulesets: compiled.value.cell, cell: compiled.value.policy }, ms };
}

export async function reviewBenchmark(containers: number, runs: number): Promise<void> {
  const changed = new Set(Array.from({ length: Math.max(1, Math.round(containers / 100)) }, (_, index) => index + 1));
  const before = side(containers, new Set());
  const after = side(containers, changed);
  const reviewMs: number[] = [];
  const explainMs: number[] = [];
  let changes = 0;
  for (let run = 0; run < runs; run++) {
    let start = performance.now();
    changes = reviewCells(before.side, after.side).length;
    reviewMs.push(performance.now() - start);
    const container = after.side.cell.containers[run % after.side.cell.containers.length];
    if (container === undefined) continue;
    start = performance.now();
    for (const family of FAMILIES)
      for (const direction of DIRECTIONS) {
        const pieces = decideContext(after.side, container, family, direction) ?? [];
        const allowed = pieces.filter((piece) => piece.verdict === 'ACCEPT').map(accessOf);
        contextLines({ container, family, direction, gained: allowed, lost: [] }, EXPLAIN_VERBS);
      }
    explainMs.push(performance.now() - start);
  }
  const review = median(reviewMs);
  process.stdout.write(
    `review: ${containers} containers x 100 rules per family, ${changed.size} spaces' rules changed (${changes} container/family/direction changes):\n` +
      `  review ${fmt(review)} median of ${runs} (target 2 s) = ${(review / after.ms).toFixed(2)}x compiling one cell (${fmt(after.ms)})\n` +
      `  explain of one container ${fmt(median(explainMs))} median (target 50 ms)\n`,
  );
}
