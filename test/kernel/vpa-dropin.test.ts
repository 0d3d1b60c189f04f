// asgc in place of vxlan-policy-agent on a cell of 1,000 containers, both backends: the real
// agent process started with the BOSH job's own vxlan-policy-agent.json, silk's CNI layout for
// the same containers already in the tables, and the CNI played for real. A container is added
// to the metadata store and the endpoints are called as the CNI calls them; the answer is 200
// only once its rules are in the kernel in both families; its real packets then pass or are
// refused as its ASGs say, decided by asgc before the CNI's chains; on delete, the cleanup
// call removes exactly its chains; every line of the CNI's layout is as it was.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, type Backend, tools } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import type { Family } from '../../src/model/address.js';
import { generateCell } from '../bench/cell-generator.js';
import { kernelTestsEnabled, mustRun, ruleCounters, save } from '../support/kernel.js';
import { connect, createTopology, type HostSpec, OUTSIDE, startServers, type Topology } from '../support/topology.js';
import { cniLayout, loadCniLayout, type MetadataEntry, VpaCell } from '../support/vpa-cell.js';

const enabled = kernelTestsEnabled('VPA drop-in');
const CONTAINERS = 1000;
const NEW: MetadataEntry & { readonly ipv6: string } = {
  handle: 'f6e5d4c3-b2a1-4f9e-8d7c-6b5a49382716',
  ip: '192.0.2.11',
  ipv6: '2001:db8:c::11',
  metadata: {},
};
const HOSTS: HostSpec[] = [{ name: 'new', kind: 'container', ipv4: NEW.ip, ipv6: NEW.ipv6, linkLocal: 'fe80::11' }, OUTSIDE];

/**
 * 1,000 containers in 20 spaces of 100 ASG rule elements per family (the benchmark times the
 * create call with a space per container too); the new one joins the first space, whose ASG
 * also allows tcp 443 outside.
 */
function cell() {
  const generated = generateCell(CONTAINERS, 20);
  const groups = (generated.securityGroups as { security_groups: { rules: string; running_space_guids: string[] }[] })
    .security_groups;
  const first = groups[0] as { rules: string; running_space_guids: string[] };
  first.rules = JSON.stringify([
    ...(JSON.parse(first.rules) as unknown[]),
    { protocol: 'tcp', destination: '203.0.113.0/24,2001:db8:e::/64', ports: '443' },
  ]);
  const containers = generated.containers as Record<string, MetadataEntry>;
  const entry: MetadataEntry = {
    ...NEW,
    metadata: {
      policy_group_id: 'app-new',
      space_id: first.running_space_guids[0] as string,
      container_workload: 'app',
      ports: '8080',
    },
  };
  return { groups, containers, entry };
}

/** The lines of every table that are not asgc's (the CNI's layout), both families. */
async function othersLines(namespace: string, backend: Backend): Promise<Record<Family, string[]>> {
  const lines = async (family: Family) =>
    (await mustRun(inNamespace(namespace, [tools(backend, family).save]))).stdout
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#') && !line.includes('asgc-'))
      .map((line) => line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]'))
      .sort();
  return { 4: await lines(4), 6: await lines(6) };
}

/** asgc's chains of one container (by the handle's readable part), in each family. */
async function containerChains(namespace: string, backend: Backend): Promise<Record<Family, string[]>> {
  const chains = async (family: Family) =>
    (await save(namespace, backend, family)).split('\n').filter((line) => /^:asgc-[io]-f6e5d4c3b2a1-/.test(line));
  return { 4: await chains(4), 6: await chains(6) };
}

describe.skipIf(!enabled).each(BACKENDS)('asgc in place of vxlan-policy-agent, 1,000 containers (%s)', (backend) => {
  let topology: Topology;
  let vpa: VpaCell;
  let outsideServer: ChildProcess;
  const { groups, containers, entry } = cell();

  beforeAll(async () => {
    topology = await createTopology(HOSTS);
    const all = [...Object.values(containers), entry];
    await loadCniLayout(topology.cell, backend, cniLayout(all, topology.link('outside'), OUTSIDE.cellIpv4));
    outsideServer = await startServers(topology.namespace('outside'), [443, 8443], []);
    vpa = await VpaCell.create(topology.cell, groups, containers);
    await vpa.startAgent(backend);
  }, 120_000);

  afterAll(async () => {
    outsideServer?.kill();
    expect(await vpa?.stopAgent()).toBe(0);
    await vpa?.destroy();
    await topology?.destroy();
  });

  it("answers the CNI's create calls with 200 once the new container's rules are live in both families, and its packets go as its ASGs say", async () => {
    const cni = await othersLines(topology.cell, backend);
    const otherChains = async () =>
      Object.fromEntries(
        await Promise.all(
          ([4, 6] as const).map(async (family) => [
            family,
            (await save(topology.cell, backend, family))
              .split('\n')
              .filter((line) => /^:asgc-/.test(line) && !line.includes('f6e5d4c3b2a1')),
          ]),
        ),
      );
    const before = await otherChains();
    expect(await containerChains(topology.cell, backend)).toEqual({ 4: [], 6: [] });

    const created = await vpa.createContainer(entry);
    expect(created.poll).toBe(200);
    expect(created.asgs).toEqual({ status: 200, body: `updated container ${entry.handle}` });
    // Live on the kernel the moment the CNI is told so, in both families.
    const live = await containerChains(topology.cell, backend);
    expect(live[4]).toHaveLength(2);
    expect(live[6]).toHaveLength(2);
    for (const family of [4, 6] as const)
      expect(await save(topology.cell, backend, family)).toContain(
        `-A asgc-forward -s ${family === 4 ? NEW.ip : NEW.ipv6}/${family === 4 ? 32 : 128} -j asgc-o-f6e5d4c3b2a1-`,
      );
    process.stdout.write(`VPA drop-in (${backend}): the CNI's create calls took ${Math.round(created.ms)} ms\n`);

    // Its packets, decided by asgc before the CNI's chains (whose netout chain rejects everything).
    const container = topology.namespace('new');
    for (const family of [4, 6] as const) {
      const outside = family === 4 ? OUTSIDE.ipv4 : OUTSIDE.ipv6;
      expect(await connect(container, 'tcp', outside, 443)).toBe('connected');
      expect(await connect(container, 'tcp', outside, 8443)).toBe('refused');
    }
    const netout = (await ruleCounters(topology.cell, backend, 4, 'filter')).filter(({ rule }) => rule.startsWith('-A netout--'));
    expect(netout.reduce((sum, { packets }) => sum + packets, 0)).toBe(0);

    // Deleted: the cleanup call removes its chains and nothing else.
    expect(await vpa.deleteContainer(entry.handle)).toEqual({
      status: 200,
      body: `cleaned up ASGs for container ${entry.handle}`,
    });
    expect(await containerChains(topology.cell, backend)).toEqual({ 4: [], 6: [] });
    expect(await otherChains()).toEqual(before);
    // Every line of the CNI's layout is as it was.
    expect(await othersLines(topology.cell, backend)).toEqual(cni);
  }, 120_000);
});
