// What reconciling can fail with, beyond a failed restore (iptables/dataplane RestoreError).
import { DataplaneError } from '../exec/dataplane-error.js';
import type { Plan } from '../diff/plan.js';
import type { Family } from '../model/address.js';

/** The live state could not be read as iptables-save (or ipset save) output. */
export class LiveStateError extends DataplaneError {}

/** After applying, the live state still differs from what was wanted: reported, never retried in a loop. */
export class NonConvergenceError extends DataplaneError {
  constructor(
    readonly family: Family,
    readonly remaining: Plan,
  ) {
    super(
      `IPv${family} ${remaining.table} did not converge: after applying, ${remaining.chains.length} chains and ${remaining.hooks.length} hook sets still differ (${[
        ...remaining.chains.map((change) => change.chain),
        ...remaining.hooks.map((hook) => hook.chain),
      ]
        .slice(0, 5)
        .join(', ')})`,
    );
  }
}
