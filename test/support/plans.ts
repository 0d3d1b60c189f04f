// Planning a compiled ruleset's filter table against a text table, as the reconciler does.
import { type Ownership, type Plan, type PlanOptions, planChanges } from '../../src/diff/plan.js';
import type { Ruleset } from '../../src/ir/ruleset.js';
import type { TextTable } from '../../src/ir/text-table.js';
import { ownedStateMatches } from '../../src/reconcile/live-check.js';
import { textTable } from '../../src/render/save-text.js';

function filterText(desired: Ruleset): TextTable {
  const filter = desired.tables.find((table) => table.name === 'filter');
  if (filter === undefined) throw new Error('no filter table');
  return textTable(filter, desired.family);
}

export function planFor(desired: Ruleset, live: TextTable | undefined, ownership: Ownership, options?: PlanOptions): Plan {
  return planChanges(desired.family, filterText(desired), live, ownership, options);
}

export function ownedMatch(saveText: string, desired: Ruleset, ownership: Ownership): boolean {
  return ownedStateMatches(saveText, filterText(desired), ownership);
}
