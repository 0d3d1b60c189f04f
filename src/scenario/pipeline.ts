// ingest -> compile -> render for one scenario, as pure functions of the documents' texts.
import { compileCell, type CompileError, type CompiledCell } from '../compile/compile.js';
import { ingestScenario, type ScenarioTexts } from '../ingest/cell.js';
import { formatInputError, type InputError, oneLine } from '../ingest/input-error.js';
import { type Family, FAMILIES } from '../model/address.js';
import { type Result, fail, ok } from '../model/result.js';
import type { AsgcConfig, CellPolicy } from '../model/cell.js';
import { renderSetScript } from '../ipset/script.js';
import { renderRuleset } from '../render/save-text.js';
import { printChains } from '../render/text-memo.js';

export type ScenarioProblem =
  | { readonly kind: 'input'; readonly errors: readonly InputError[] }
  | { readonly kind: 'compile'; readonly errors: readonly CompileError[] };

export interface CompiledScenario {
  readonly cell: CompiledCell;
  readonly config: AsgcConfig;
  /** What it was compiled from (containers, policies), for questions about it (asgc check). */
  readonly policy: CellPolicy;
  /** What was reported but compiled all the same (two containers with one address). */
  readonly warnings: readonly InputError[];
}

export interface ScenarioOptions {
  /** Merge and drop rules without changing any verdict (default on). */
  readonly optimise?: boolean;
  /**
   * Each chain printed as soon as it is built, its rules then known only by their text: for
   * commands that only print or apply the rules (faster, and far less memory at cell scale).
   * Questions about the rules (asgc check) need them whole.
   */
  readonly printed?: boolean;
}

export function compileScenario(texts: ScenarioTexts, options: ScenarioOptions = {}): Result<CompiledScenario, ScenarioProblem> {
  const { optimise = true, printed = false } = options;
  const ingested = ingestScenario(texts);
  if (!ingested.ok) return fail({ kind: 'input', errors: ingested.error });
  const { cell, warnings } = ingested.value;
  const compiled = compileCell(cell, printed ? { optimise, memo: printChains } : { optimise });
  return compiled.ok
    ? ok({ cell: compiled.value, config: cell.config, policy: cell, warnings })
    : fail({ kind: 'compile', errors: compiled.error });
}

export function renderCell(cell: CompiledCell): Record<Family, string> {
  return { 4: renderRuleset(cell[4]), 6: renderRuleset(cell[6]) };
}

export function describeProblem(problem: ScenarioProblem): string[] {
  return problem.kind === 'input'
    ? problem.errors.map(formatInputError)
    : problem.errors.map((error) => `asgc: ${oneLine(error.message)}`);
}

export const RULES_FILE: Record<Family, string> = { 4: 'iptables.rules', 6: 'ip6tables.rules' };
/** The `ipset restore` script of the sets both families' rules name, when there are any. */
export const IPSETS_FILE = 'ipsets.rules';

export function renderCellSets(cell: CompiledCell, families: readonly Family[] = FAMILIES): string | undefined {
  const sets = families.flatMap((family) => cell[family].sets ?? []);
  return sets.length === 0 ? undefined : renderSetScript(sets);
}
