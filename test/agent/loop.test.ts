import { describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/agent/logger.js';
import { AgentLoop } from '../../src/agent/loop.js';
import type { CycleReport, Syncer } from '../../src/agent/sync.js';

function report(status: CycleReport['status']): CycleReport {
  return {
    status,
    families: {},
    problems: [],
    held: [],
    containers: [],
    startedAt: 0,
    durationMs: 1,
    ms: { fetch: 0, compile: 0 },
  };
}

/** A syncer whose cycles end when the test says so. */
class ScriptedSyncer {
  readonly cycles: { force: boolean; finish: (status: CycleReport['status']) => void }[] = [];
  runCycle(force: boolean): Promise<CycleReport> {
    return new Promise((resolve) => this.cycles.push({ force, finish: (status) => resolve(report(status)) }));
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('the agent loop', () => {
  it('waits the interval with jitter, and backs off exponentially after failures, capped at the interval', async () => {
    const syncer = new ScriptedSyncer();
    let random = 0;
    const loop = new AgentLoop(syncer as unknown as Syncer, {
      intervalMs: 60_000,
      jitter: 0.1,
      backoffMs: 1000,
      random: () => random,
      log: new MemoryLogger(),
    });
    expect(loop.nextDelay()).toBe(54_000);
    random = 1;
    expect(loop.nextDelay()).toBe(66_000);
    loop.start();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      await settle();
      syncer.cycles.at(-1)?.finish('failed');
      await settle();
      delays.push(loop.nextDelay());
      loop.requestSync();
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    await settle();
    syncer.cycles.at(-1)?.finish('applied');
    await settle();
    random = 0.5;
    expect(loop.nextDelay()).toBe(60_000);
    const stopped = loop.stop();
    await settle();
    syncer.cycles.at(-1)?.finish('unchanged');
    await stopped;
  });

  it('answers a force-sync with a cycle that starts after it was asked, and stops only after the running cycle', async () => {
    const syncer = new ScriptedSyncer();
    const loop = new AgentLoop(syncer as unknown as Syncer, {
      intervalMs: 60_000,
      jitter: 0,
      backoffMs: 1000,
      log: new MemoryLogger(),
    });
    loop.start();
    await settle();
    expect(syncer.cycles).toHaveLength(1);
    expect(syncer.cycles[0]?.force).toBe(true);
    let answered: CycleReport | undefined;
    void loop.requestSync().then((r) => (answered = r));
    syncer.cycles[0]?.finish('unchanged');
    await settle();
    expect(answered).toBeUndefined();
    expect(syncer.cycles).toHaveLength(2);
    expect(syncer.cycles[1]?.force).toBe(true);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    syncer.cycles[1]?.finish('applied');
    await stopping;
    expect(answered?.status).toBe('applied');
    expect(syncer.cycles).toHaveLength(2);
  });
});
