// The CNI's container create against asgc in place of vxlan-policy-agent: the real agent
// process, started with the job's vxlan-policy-agent.json, 1,000 containers (every one in its
// own space: the worst case; and in 20 spaces, a typical cell), on nf_tables and legacy. A
// new container is written to the metadata store, then the CNI's two calls are timed until
// the second answers 200 (its rules are in the kernel, both families). Baseline, measured in
// the same run: the kernel's own restore of one ASG chain in each family.
import { runProcess } from '../../src/exec/process.js';
import type { Backend } from '../../src/iptables/backend.js';
import { type MetadataEntry, VpaCell } from '../support/vpa-cell.js';
import { oneChainRestoreMs } from './agent-cases.js';
import { generateCell } from './cell-generator.js';
import { fmt, median } from './stats.js';

const TARGET_MS: Record<Backend, number> = { nft: 150, legacy: 600 };

export async function vpaBenchmark(containers: number, runs: number, backends: readonly Backend[]): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n== VPA drop-in: skipped (needs root for network namespaces)');
    return;
  }
  console.log(
    `\n== VPA drop-in: the CNI's create calls (GET /force-policy-poll-cycle, then /force-asgs-for-container), ${containers} containers`,
  );
  for (const backend of backends) {
    for (const [label, spaces] of [
      ['a space per container', containers],
      ['20 spaces', 20],
    ] as const) {
      const generated = generateCell(containers, spaces);
      const groups = (generated.securityGroups as { security_groups: { running_space_guids: string[] }[] }).security_groups;
      const namespace = `asgc-bench-vpa-${process.pid}`;
      await runProcess(['ip', 'netns', 'add', namespace]);
      const cell = await VpaCell.create(namespace, groups, generated.containers as Record<string, MetadataEntry>);
      try {
        await cell.startAgent(backend);
        const walls: number[] = [];
        const baselines: number[] = [];
        for (let run = 0; run < runs; run++) {
          const handle = `bench-${run}-0000-4000-8000-000000000000`;
          const created = await cell.createContainer({
            handle,
            ip: `10.254.0.${run + 1}`,
            ipv6: `2001:db8:fe::${run + 1}`,
            metadata: {
              policy_group_id: `bench-app-${run}`,
              space_id: groups[run % groups.length]?.running_space_guids[0] as string,
              container_workload: 'app',
            },
          });
          if (created.poll !== 200 || created.asgs.status !== 200)
            throw new Error(`create call failed: ${JSON.stringify(created)}`);
          walls.push(created.ms);
          baselines.push((await oneChainRestoreMs(namespace, backend, 4)) + (await oneChainRestoreMs(namespace, backend, 6)));
          const deleted = await cell.deleteContainer(handle);
          if (deleted.status !== 200) throw new Error(`cleanup call failed: ${JSON.stringify(deleted)}`);
        }
        const [wall, baseline] = [median(walls), median(baselines)];
        console.log(
          `${backend.padEnd(6)} ${label.padEnd(22)} ${fmt(wall)} (target <= ${TARGET_MS[backend]} ms) vs the kernel's one-chain restore in each family ${fmt(baseline)} -> ${(wall / baseline).toFixed(2)}x (median of ${runs})`,
        );
      } finally {
        await cell.stopAgent();
        await cell.destroy();
        await runProcess(['ip', 'netns', 'del', namespace]);
      }
    }
  }
}
