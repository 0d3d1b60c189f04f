// A cell run as CF runs vxlan-policy-agent's replacement: the real `asgc agent` process started
// with the job's own vxlan-policy-agent.json (only its paths, ports and the policy server's URL
// pointed at the test's), a real HTTPS policy server with mutual TLS, the container metadata
// file the CNI writes, and the CNI's own iptables layout beside asgc's. The CNI's calls are made
// as it makes them: GET, no body.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../src/iptables/backend.js';
import { makeCertificates, type TestCertificates } from './certs.js';
import { restore } from './kernel.js';
import { FakePolicyServer } from './policy-server.js';

export const VPA_FIXTURE = 'test/fixtures/vpa/vxlan-policy-agent.json';

/** A metadata entry as silk's datastore holds it. */
export interface MetadataEntry {
  readonly handle: string;
  readonly ip: string;
  readonly ipv6?: string;
  readonly metadata: Record<string, string>;
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

/** Two ports on loopback for VPA's servers, unlikely to be taken by a parallel test. */
function freePorts(): [number, number] {
  const base = 20_000 + Math.floor(Math.random() * 20_000) * 2;
  return [base, base + 1];
}

export class VpaCell {
  private agent: ChildProcess | undefined;
  output = '';
  readonly ports: { readonly force: number; readonly debug: number };

  private constructor(
    readonly namespace: string,
    readonly directory: string,
    readonly server: FakePolicyServer,
    private readonly certificates: TestCertificates,
    private metadata: Record<string, MetadataEntry>,
  ) {
    const [force, debug] = freePorts();
    this.ports = { force, debug };
  }

  /** A policy server serving `securityGroups`, the metadata file holding `containers`. */
  static async create(namespace: string, securityGroups: unknown[], containers: Record<string, MetadataEntry>): Promise<VpaCell> {
    const directory = await mkdtemp(join(tmpdir(), 'asgc-vpa-cell-'));
    const certificates = await makeCertificates();
    const server = new FakePolicyServer(certificates);
    await server.start();
    server.setDocuments(securityGroups, []);
    const cell = new VpaCell(namespace, directory, server, certificates, { ...containers });
    await cell.writeMetadata();
    return cell;
  }

  get metadataPath(): string {
    return join(this.directory, 'store.json');
  }

  /** The job's rendered file with its paths, ports and policy server pointed at this test. */
  async vpaConfig(): Promise<string> {
    const rendered = JSON.parse(await readFile(VPA_FIXTURE, 'utf8')) as Record<string, unknown>;
    const file = join(this.directory, 'vxlan-policy-agent.json');
    await writeFile(
      file,
      JSON.stringify({
        ...rendered,
        policy_server_url: this.server.url,
        ca_cert_file: this.certificates.caFile,
        client_cert_file: this.certificates.clientCertFile,
        client_key_file: this.certificates.clientKeyFile,
        cni_datastore_path: this.metadataPath,
        iptables_lock_file: join(this.directory, 'iptables.lock'),
        force_policy_poll_cycle_port: this.ports.force,
        debug_server_port: this.ports.debug,
      }),
    );
    return file;
  }

  /** Start `asgc agent --vpa-config` on the namespace; resolves once its first cycle brought the rules in line. */
  async startAgent(backend: Backend): Promise<void> {
    const config = await this.vpaConfig();
    const argv = ['bin/asgc', 'agent', '--vpa-config', config, '--netns', this.namespace, '--backend', backend, '--listen', ''];
    // The CNI's conflist of a real cell is not here: none is read (the default path does not exist).
    this.agent = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.agent.stdout?.on('data', (data: Buffer) => (this.output += data.toString()));
    this.agent.stderr?.on('data', (data: Buffer) => (this.output += data.toString()));
    try {
      await eventually(async () => (await this.debug('/livez')).status === 200, 15_000, 'the debug server');
      await eventually(async () => /"event":"sync.cycle"[^\n]*"status":"applied"/.test(this.output), 60_000, 'the first cycle');
    } catch (error) {
      throw new Error(`${(error as Error).message}; the agent said:\n${this.output.slice(0, 3000)}`);
    }
  }

  async stopAgent(): Promise<number | null> {
    const agent = this.agent;
    if (agent === undefined || agent.exitCode !== null) return agent?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => agent.on('exit', resolve));
    agent.kill('SIGTERM');
    return exited;
  }

  /** A GET to VPA's force server, as the CNI makes it. */
  async force(path: string): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${this.ports.force}${path}`);
    return { status: response.status, body: await response.text() };
  }

  async debug(path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${this.ports.debug}${path}`, init);
    return { status: response.status, body: await response.text() };
  }

  /** The CNI on container create: the metadata entry, then its two calls; their wall time. */
  async createContainer(entry: MetadataEntry): Promise<{ ms: number; poll: number; asgs: { status: number; body: string } }> {
    this.metadata[entry.handle] = entry;
    await this.writeMetadata();
    const start = performance.now();
    const poll = await this.force('/force-policy-poll-cycle');
    const asgs = await this.force(`/force-asgs-for-container?container=${encodeURIComponent(entry.handle)}`);
    return { ms: performance.now() - start, poll: poll.status, asgs };
  }

  /** The CNI on container delete: the entry removed, then the cleanup call. */
  async deleteContainer(handle: string): Promise<{ status: number; body: string }> {
    delete this.metadata[handle];
    await this.writeMetadata();
    return this.force(`/force-orphaned-asgs-cleanup?container=${encodeURIComponent(handle)}`);
  }

  /** As silk's datastore writes it: a whole new file renamed into place. */
  private async writeMetadata(): Promise<void> {
    const temporary = `${this.metadataPath}.tmp`;
    await writeFile(temporary, JSON.stringify(this.metadata));
    await rename(temporary, this.metadataPath);
  }

  async destroy(): Promise<void> {
    this.agent?.kill('SIGKILL');
    await this.server.stop();
    await rm(this.certificates.directory, { recursive: true, force: true });
    await rm(this.directory, { recursive: true, force: true });
  }
}

/**
 * silk's CNI layout for these containers (IPv4), as iptables-restore input: in filter, per
 * container a netout chain (FORWARD, by source and uplink; static default deny), an input chain
 * (INPUT) and an overlay chain (FORWARD); in nat, its port forward; in mangle, the ingress
 * router's mark; and the masquerade of the overlay. Chain names are cut to 28 characters as
 * the CNI cuts them, from the handle's end (the test's handles share their beginning).
 */
export function cniLayout(containers: readonly MetadataEntry[], uplink: string, hostAddress: string): Record<string, string> {
  const name = (kind: string, handle: string) => `${kind}--${handle.replace(/-/g, '').slice(-(26 - kind.length))}`;
  const filter = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  const nat = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]'];
  const mangle = [
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
  ];
  const rules = { filter: [] as string[], nat: [] as string[], mangle: [] as string[] };
  containers.forEach(({ handle, ip }, index) => {
    const [netout, input, overlay, netin] = ['netout', 'input', 'overlay', 'netin'].map((kind) => name(kind, handle)) as [
      string,
      string,
      string,
      string,
    ];
    const port = 61000 + index;
    filter.push(`:${netout} - [0:0]`, `:${input} - [0:0]`, `:${overlay} - [0:0]`);
    nat.push(`:${netin} - [0:0]`);
    mangle.push(`:${netin} - [0:0]`);
    rules.filter.push(
      `-A FORWARD -s ${ip}/32 -o ${uplink} -j ${netout}`,
      `-A INPUT -s ${ip}/32 -j ${input}`,
      `-A FORWARD -j ${overlay}`,
      `-A ${netout} -m state --state RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${netout} -j REJECT --reject-with icmp-port-unreachable`,
      `-A ${input} -m state --state RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${input} -j REJECT --reject-with icmp-port-unreachable`,
      `-A ${overlay} -s ${ip}/32 -o silk-vtep -m mark ! --mark 0x0 -j ACCEPT`,
      `-A ${overlay} -d ${ip}/32 -m state --state RELATED,ESTABLISHED -j ACCEPT`,
      `-A ${overlay} -d ${ip}/32 -m mark --mark 0xffff0000 -j ACCEPT`,
      `-A ${overlay} -d ${ip}/32 -j REJECT --reject-with icmp-port-unreachable`,
    );
    rules.nat.push(
      `-A PREROUTING -j ${netin}`,
      `-A ${netin} -d ${hostAddress}/32 -p tcp -m tcp --dport ${port} -j DNAT --to-destination ${ip}:8080`,
    );
    rules.mangle.push(
      `-A PREROUTING -j ${netin}`,
      `-A ${netin} -d ${hostAddress}/32 -p tcp -m tcp --dport ${port} -j MARK --set-xmark 0xffff0000/0xffffffff`,
    );
  });
  rules.nat.push('-A POSTROUTING -s 10.255.0.0/16 ! -d 10.255.0.0/16 -j MASQUERADE');
  const text = [...filter, ...rules.filter, 'COMMIT', ...nat, ...rules.nat, 'COMMIT', ...mangle, ...rules.mangle, 'COMMIT', ''];
  return { 4: text.join('\n') };
}

/** Load the CNI's layout into a namespace (IPv4: the CNI writes no ip6tables rules). */
export async function loadCniLayout(namespace: string, backend: Backend, layout: Record<string, string>): Promise<void> {
  const loaded = await restore(namespace, backend, 4, layout[4] as string);
  if (loaded.code !== 0) throw new Error(`the CNI layout did not load: ${loaded.stderr}`);
}
