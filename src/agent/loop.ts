// The agent's schedule: a cycle every interval (with jitter, so cells do not poll in step), at
// once when asked (force-sync), earlier when a deferred check of the kernel is due, and after a
// failure again with exponential backoff capped at the interval. Stopping lets the running cycle finish: a family is never left half-applied.
import type { Logger } from './logger.js';
import type { CycleReport, Syncer } from './sync.js';

export interface LoopOptions {
  readonly intervalMs: number;
  /** Fraction of the interval each wait may move by, e.g. 0.1 for ±10 %. */
  readonly jitter: number;
  /** First wait after a failure; doubled per consecutive failure, capped at the interval. */
  readonly backoffMs: number;
  readonly random?: () => number;
  readonly log: Logger;
}

export class AgentLoop {
  private stopping = false;
  /** A cycle is asked for: 'force' fetches and compiles whatever the stamps say. */
  private pending: 'force' | 'sync' | undefined = 'force';
  private waiters: ((report: CycleReport) => void)[] = [];
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  lastReport: CycleReport | undefined;
  lastSuccessAt: number | undefined;
  /** When the loop last started or ended a cycle (epoch ms): its liveness. */
  private heartbeat: number | undefined;

  constructor(
    private readonly syncer: Syncer,
    private options: LoopOptions,
  ) {}

  /** New settings (SIGHUP) for the waits to come; a cycle runs at once with them. */
  reconfigure(options: LoopOptions): void {
    this.options = options;
    this.requestSoon();
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * Run a cycle as soon as the current one (if any) is done; resolves with its report. `force`
   * fetches and compiles even what the stamps say did not change (POST /force-sync); without
   * it, the cycle reads what changed (VPA's endpoints: the container metadata, above all).
   * Requests that arrive while a cycle waits to start share it.
   */
  requestSync({ force = true } = {}): Promise<CycleReport> {
    const report = new Promise<CycleReport>((resolve) => this.waiters.push(resolve));
    this.requestSoon(force);
    return report;
  }

  /**
   * Whether the loop runs: started, not stopped, and no cycle has taken longer than `stuckMs`
   * (a cycle that never ends, waiting on a hung command). Degraded cycles are alive.
   */
  alive(stuckMs: number, now = Date.now()): boolean {
    return (
      this.running !== undefined &&
      !this.stopping &&
      this.heartbeat !== undefined &&
      now - this.heartbeat < stuckMs + this.options.intervalMs * (1 + this.options.jitter)
    );
  }

  /** Stop after the running cycle, if any; resolves when the loop has ended (at once if it never started). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  /** The wait before the next cycle: the interval with jitter, or the backoff after failures. */
  nextDelay(): number {
    const { intervalMs, jitter, backoffMs } = this.options;
    if (this.failures > 0) return Math.min(intervalMs, backoffMs * 2 ** (this.failures - 1));
    const random = this.options.random ?? Math.random;
    return intervalMs * (1 + jitter * (2 * random() - 1));
  }

  private requestSoon(force = true): void {
    this.pending = force || this.pending === 'force' ? 'force' : 'sync';
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const force = this.pending === 'force';
      this.pending = undefined;
      const waiters = this.waiters.splice(0);
      this.heartbeat = Date.now();
      const report = await this.syncer.runCycle(force);
      this.heartbeat = Date.now();
      this.lastReport = report;
      if (report.status === 'failed') this.failures++;
      else {
        this.failures = 0;
        this.lastSuccessAt = report.startedAt + report.durationMs;
      }
      for (const resolve of waiters) resolve(report);
      if (this.stopping) break;
      if (this.pending !== undefined) continue;
      // A deferred check of the kernel (legacy backend) may be due before the next cycle.
      const checkAt = this.syncer.nextCheckAt;
      const delay = checkAt === undefined ? this.nextDelay() : Math.max(0, Math.min(this.nextDelay(), checkAt - Date.now()));
      this.options.log.log('debug', 'loop.wait', { ms: Math.round(delay), failures: this.failures });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    // Nobody waits for a cycle that will never run.
    for (const resolve of this.waiters.splice(0)) if (this.lastReport) resolve(this.lastReport);
  }
}
