// The iptables lock file silk's CNI, garden and VPA share (/var/vcap/data/garden-cni/iptables.lock):
// a command that changes the tables runs under util-linux's `flock`, which waits a bounded time
// for it and gives up with its own exit code. asgc never changes a table without it, then.
import { DataplaneError } from './dataplane-error.js';
import type { ProcessResult } from './process.js';

export interface SharedLock {
  readonly file: string;
  readonly waitSeconds: number;
}

/** flock's exit code when the wait ran out (never one of the commands it runs). */
const TIMED_OUT = 75;

/** `argv` to run while holding the lock (unchanged without one). */
export function underLock(lock: SharedLock | undefined, argv: readonly string[]): string[] {
  return lock === undefined ? [...argv] : ['flock', '-E', String(TIMED_OUT), '-w', String(lock.waitSeconds), lock.file, ...argv];
}

/** Another process held the shared lock for the whole wait: nothing was changed. */
export class LockTimeoutError extends DataplaneError {
  constructor(lock: SharedLock) {
    super(`the iptables lock ${lock.file} stayed held by another process for ${lock.waitSeconds} s: nothing was changed`);
  }
}

/** Throws LockTimeoutError when `result` is flock giving up. */
export function checkLock(lock: SharedLock | undefined, result: ProcessResult): void {
  if (lock !== undefined && result.code === TIMED_OUT) throw new LockTimeoutError(lock);
}
