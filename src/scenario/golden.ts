// Golden files: every scenario in rules/<name>/ compiles to golden/<name>/{iptables,ip6tables}.rules
// (and ipsets.rules when its rules name ipsets).
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Family } from '../model/address.js';
import { FAMILIES } from '../model/address.js';
import { readScenario, SCENARIO_FILES } from './files.js';
import { compileScenario, describeProblem, IPSETS_FILE, renderCell, renderCellSets, RULES_FILE } from './pipeline.js';

export type GoldenOutcome =
  | { readonly scenario: string; readonly status: 'same' | 'updated' }
  | { readonly scenario: string; readonly status: 'differs'; readonly diffs: readonly GoldenDiff[] }
  | { readonly scenario: string; readonly status: 'failed'; readonly problems: readonly string[] }
  | { readonly scenario: string; readonly status: 'stale' | 'removed' };

export interface GoldenDiff {
  readonly file: string;
  /** Unified-style lines: " ctx", "-expected", "+actual". */
  readonly lines: readonly string[];
}

export async function listScenarios(rulesDir: string): Promise<string[]> {
  const entries = await readdir(rulesDir, { withFileTypes: true });
  const names: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const files = await readdir(join(rulesDir, entry.name));
    if (files.includes(SCENARIO_FILES.containers)) names.push(entry.name);
  }
  return names.sort();
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The changed middle of two texts (common head and tail trimmed), with a little context. */
export function diffLines(expected: string, actual: string, context = 2): string[] {
  const a = expected.split('\n');
  const b = actual.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const from = Math.max(0, head - context);
  const lines = [`@@ line ${head + 1} @@`];
  for (let i = from; i < head; i++) lines.push(` ${a[i]}`);
  for (let i = head; i < a.length - tail; i++) lines.push(`-${a[i]}`);
  for (let i = head; i < b.length - tail; i++) lines.push(`+${b[i]}`);
  for (let i = a.length - tail; i < Math.min(a.length, a.length - tail + context); i++) lines.push(` ${a[i]}`);
  return lines;
}

export async function runGolden(rulesDir: string, goldenDir: string, update: boolean): Promise<GoldenOutcome[]> {
  const scenarios = await listScenarios(rulesDir);
  const outcomes: GoldenOutcome[] = [];
  for (const scenario of scenarios) {
    const texts = await readScenario({ directory: join(rulesDir, scenario), required: ['containers'] });
    if (!texts.ok) {
      outcomes.push({ scenario, status: 'failed', problems: describeProblem({ kind: 'input', errors: texts.error }) });
      continue;
    }
    const compiled = compileScenario(texts.value, { printed: true });
    if (!compiled.ok) {
      outcomes.push({ scenario, status: 'failed', problems: describeProblem(compiled.error) });
      continue;
    }
    const rendered = renderCell(compiled.value.cell);
    const directory = join(goldenDir, scenario);
    // Each output file and its text; undefined: the file must not exist (no ipsets).
    const outputs: [string, string | undefined][] = [
      ...(FAMILIES as Family[]).map((family): [string, string] => [RULES_FILE[family], rendered[family]]),
      [IPSETS_FILE, renderCellSets(compiled.value.cell)],
    ];
    const diffs: GoldenDiff[] = [];
    for (const [name, actual] of outputs) {
      const file = join(directory, name);
      const expected = await readIfPresent(file);
      if (expected !== actual) diffs.push({ file, lines: diffLines(expected ?? '', actual ?? '') });
    }
    if (diffs.length === 0) {
      outcomes.push({ scenario, status: 'same' });
    } else if (update) {
      await mkdir(directory, { recursive: true });
      for (const [name, text] of outputs) {
        if (text === undefined) await rm(join(directory, name), { force: true });
        else await writeFile(join(directory, name), text);
      }
      outcomes.push({ scenario, status: 'updated' });
    } else {
      outcomes.push({ scenario, status: 'differs', diffs });
    }
  }
  const goldenEntries = await readdir(goldenDir, { withFileTypes: true }).catch(() => []);
  for (const entry of goldenEntries) {
    if (!entry.isDirectory() || scenarios.includes(entry.name)) continue;
    if (update) await rm(join(goldenDir, entry.name), { recursive: true });
    outcomes.push({ scenario: entry.name, status: update ? 'removed' : 'stale' });
  }
  return outcomes;
}
