// The agent's metrics as Prometheus scrapes them: every label set there at 0 from the start,
// histograms with buckets, the process metrics, the build info; and a cycle counted in them.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CYCLE_RESULTS, Metrics, PROBLEM_KINDS } from '../../src/agent/metrics.js';
import { VERSION } from '../../src/version.js';

describe('the agent metrics', () => {
  it('start with every label set at 0, histograms with buckets, the process metrics and the build info', async () => {
    const text = await new Metrics(VERSION).render();
    for (const result of CYCLE_RESULTS) expect(text).toContain(`asgc_cycles_total{result="${result}"} 0`);
    for (const kind of PROBLEM_KINDS) expect(text).toContain(`asgc_errors_total{kind="${kind}"} 0`);
    for (const family of ['4', '6']) {
      expect(text).toContain(`asgc_restores_total{family="${family}"} 0`);
      expect(text).toContain(`asgc_reads_total{family="${family}",kind="table"} 0`);
      for (const stage of ['read', 'plan', 'restore', 'verify'])
        expect(text).toContain(`asgc_stage_duration_seconds_bucket{le="0.005",stage="${stage}",family="${family}"} 0`);
    }
    expect(text).toContain('asgc_stage_duration_seconds_count{stage="compile",family="all"} 0');
    expect(text).toMatch(/^# TYPE asgc_cycle_duration_seconds histogram$/m);
    expect(text).toMatch(/^asgc_cycle_duration_seconds_bucket\{le="\+Inf"\} 0$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    expect(text).toContain(`asgc_build_info{version="${VERSION}"} 1`);
  });

  it('count what happens, and observe into buckets', async () => {
    const metrics = new Metrics(VERSION);
    metrics.cycles.inc({ result: 'applied' });
    metrics.stage('restore', 0.03, 6);
    expect(await metrics.value('asgc_cycles_total', { result: 'applied' })).toBe(1);
    const text = await metrics.render();
    expect(text).toContain('asgc_stage_duration_seconds_bucket{le="0.025",stage="restore",family="6"} 0');
    expect(text).toContain('asgc_stage_duration_seconds_bucket{le="0.05",stage="restore",family="6"} 1');
  });
});

describe('the version', () => {
  it('is the one package.json gives', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
