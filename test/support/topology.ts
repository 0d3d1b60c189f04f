// A small network of namespaces for packet tests: a "cell" that routes between hosts (container
// namespaces, an outside host, an ingress router), documentation and ULA addresses only. A
// container is linked as silk links one: a veth named `s-<its IPv4 as 12 digits>` on the cell,
// 169.254.0.1 point-to-point to its IPv4 address, fe80::1 on the link and a host route to its
// IPv6 address, its default routes through those. Other hosts sit on a /30 and a /64 each.
// Probes send real TCP, UDP and ICMP/ICMPv6 and say what came back.
import { type ChildProcess, spawn } from 'node:child_process';
import { runProcess } from '../../src/exec/process.js';
import { silkInterfaceName } from '../../src/check/cell-links.js';
import { parseIPv4 } from '../../src/model/address.js';
import { mustRun } from './kernel.js';

export interface ContainerSpec {
  readonly name: string;
  readonly kind: 'container';
  readonly ipv4: string;
  readonly ipv6: string;
  /** Its link-local address (besides the one the kernel makes). */
  readonly linkLocal: string;
  /** The MTU of the cell's side of its link. */
  readonly mtu?: number;
}

export interface NetworkSpec {
  readonly name: string;
  readonly kind: 'network';
  /** Host and cell addresses of the link, IPv4 in a /30 and IPv6 in a /64. */
  readonly ipv4: string;
  readonly cellIpv4: string;
  readonly ipv6: string;
  readonly cellIpv6: string;
}

export type HostSpec = ContainerSpec | NetworkSpec;

/** The cell's address on every container link, as silk has it. */
export const CELL_LINK = { ipv4: '169.254.0.1', ipv6: 'fe80::1' } as const;

export interface Topology {
  readonly cell: string;
  namespace(host: string): string;
  /** The cell's interface to a host. */
  link(host: string): string;
  destroy(): Promise<void>;
}

let counter = 0;

/** The argument vector that runs a Python script inside a namespace. */
export const inPython = (namespace: string, script: string, ...args: string[]): string[] => [
  'ip',
  'netns',
  'exec',
  namespace,
  'python3',
  '-c',
  script,
  ...args,
];

/** The outside host of a test cell: the uplink's other end. */
export const OUTSIDE: NetworkSpec = {
  name: 'outside',
  kind: 'network',
  ipv4: '203.0.113.2',
  cellIpv4: '203.0.113.1',
  ipv6: '2001:db8:e::2',
  cellIpv6: '2001:db8:e::1',
};

/** The cell-side interface silk would give a container of this IPv4 address. */
export function containerLink(ipv4: string): string {
  const parsed = parseIPv4(ipv4);
  if (!parsed.ok) throw new Error(parsed.error);
  return silkInterfaceName(parsed.value);
}

async function linkContainer(cell: string, namespace: string, link: string, host: ContainerSpec): Promise<void> {
  await mustRun(['ip', '-n', cell, 'addr', 'add', CELL_LINK.ipv4, 'peer', `${host.ipv4}/32`, 'dev', link]);
  await mustRun(['ip', '-n', cell, '-6', 'addr', 'add', `${CELL_LINK.ipv6}/64`, 'dev', link, 'nodad']);
  if (host.mtu !== undefined) await mustRun(['ip', '-n', cell, 'link', 'set', link, 'mtu', String(host.mtu)]);
  await mustRun(['ip', '-n', cell, 'link', 'set', link, 'up']);
  await mustRun(['ip', '-n', cell, '-6', 'route', 'add', `${host.ipv6}/128`, 'dev', link]);
  await mustRun(['ip', '-n', namespace, 'addr', 'add', host.ipv4, 'peer', `${CELL_LINK.ipv4}/32`, 'dev', 'eth0']);
  await mustRun(['ip', '-n', namespace, '-6', 'addr', 'add', `${host.ipv6}/128`, 'dev', 'eth0', 'nodad']);
  await mustRun(['ip', '-n', namespace, '-6', 'addr', 'add', `${host.linkLocal}/64`, 'dev', 'eth0', 'nodad']);
  await mustRun(['ip', '-n', namespace, 'link', 'set', 'eth0', 'up']);
  await mustRun(['ip', '-n', namespace, 'route', 'add', 'default', 'via', CELL_LINK.ipv4, 'src', host.ipv4]);
  await mustRun(['ip', '-n', namespace, '-6', 'route', 'add', 'default', 'via', CELL_LINK.ipv6, 'dev', 'eth0']);
}

async function linkNetwork(cell: string, namespace: string, link: string, host: NetworkSpec): Promise<void> {
  await mustRun(['ip', '-n', cell, 'addr', 'add', `${host.cellIpv4}/30`, 'dev', link]);
  await mustRun(['ip', '-n', cell, '-6', 'addr', 'add', `${host.cellIpv6}/64`, 'dev', link, 'nodad']);
  await mustRun(['ip', '-n', cell, 'link', 'set', link, 'up']);
  await mustRun(['ip', '-n', namespace, 'addr', 'add', `${host.ipv4}/30`, 'dev', 'eth0']);
  await mustRun(['ip', '-n', namespace, '-6', 'addr', 'add', `${host.ipv6}/64`, 'dev', 'eth0', 'nodad']);
  await mustRun(['ip', '-n', namespace, 'link', 'set', 'eth0', 'up']);
  await mustRun(['ip', '-n', namespace, 'route', 'add', 'default', 'via', host.cellIpv4]);
  await mustRun(['ip', '-n', namespace, '-6', 'route', 'add', 'default', 'via', host.cellIpv6]);
}

export async function createTopology(hosts: readonly HostSpec[]): Promise<Topology> {
  const tag = `${process.pid}-${++counter}`;
  const cell = `asgc-cell-${tag}`;
  const namespaces = new Map(hosts.map((host, index) => [host.name, `asgc-h${index}-${tag}`]));
  const links = new Map(
    hosts.map((host, index) => [host.name, host.kind === 'container' ? containerLink(host.ipv4) : `v${index}`]),
  );
  const created: string[] = [];
  const destroy = async () => {
    for (const namespace of created.reverse()) await runProcess(['ip', 'netns', 'del', namespace]);
  };
  try {
    for (const namespace of [cell, ...namespaces.values()]) {
      await mustRun(['ip', 'netns', 'add', namespace]);
      created.push(namespace);
      // No duplicate address detection: addresses are usable at once, and the test stays bounded.
      await mustRun([
        'ip',
        'netns',
        'exec',
        namespace,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
      ]);
      await mustRun(['ip', '-n', namespace, 'link', 'set', 'lo', 'up']);
    }
    await mustRun(['ip', 'netns', 'exec', cell, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const host of hosts) {
      const namespace = namespaces.get(host.name) as string;
      const link = links.get(host.name) as string;
      await mustRun(['ip', '-n', cell, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
      if (host.kind === 'container') await linkContainer(cell, namespace, link, host);
      else await linkNetwork(cell, namespace, link, host);
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    cell,
    namespace: (host) => {
      const namespace = namespaces.get(host);
      if (namespace === undefined) throw new Error(`no host ${host}`);
      return namespace;
    },
    link: (host) => {
      const link = links.get(host);
      if (link === undefined) throw new Error(`no host ${host}`);
      return link;
    },
    destroy,
  };
}

const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
const [tcp, udp] = process.argv.slice(1).map((list) => list.split(',').filter(Boolean).map(Number));
let pending = tcp.length + udp.length;
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
for (const port of tcp) net.createServer((socket) => socket.end('pong')).listen({ port, host: '::', ipv6Only: false }, ready);
for (const port of udp) {
  const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  socket.on('message', (message, from) => socket.send('pong', from.port, from.address));
  socket.bind(port, '::', ready);
}
if (pending === 0) process.stdout.write('ready\\n');
`;

/** TCP and UDP echo servers in a namespace, on both families; resolves once they listen. */
export async function startServers(namespace: string, tcp: readonly number[], udp: readonly number[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', SERVER, tcp.join(','), udp.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`servers in ${namespace} did not start`)), 10_000);
    child.stdout?.on('data', (data: Buffer) => {
      if (data.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`servers in ${namespace} exited ${code}`)));
  });
  return child;
}

const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const [protocol, host, port, timeout] = process.argv.slice(1);
const done = (result) => { process.stdout.write(result); process.exit(0); };
const failure = (error) => done(error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'EACCES' || error.code === 'EPERM' ? 'prohibited' : 'error:' + error.code);
setTimeout(() => done('timeout'), Number(timeout));
if (protocol === 'tcp') {
  net.connect({ host, port: Number(port) }).on('data', () => done('connected')).on('error', failure);
} else {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', () => done('reply')).on('error', failure);
  socket.connect(Number(port), host, () => socket.send('ping'));
}
`;

export type ConnectResult = 'connected' | 'reply' | 'refused' | 'prohibited' | 'timeout' | `error:${string}`;

/** Open a TCP connection (or send a UDP datagram) and report what happened, within `timeoutMs`. */
export async function connect(
  namespace: string,
  protocol: 'tcp' | 'udp',
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<ConnectResult> {
  const result = await runProcess(
    ['ip', 'netns', 'exec', namespace, process.execPath, '-e', CLIENT, protocol, host, String(port), String(timeoutMs)],
    { timeoutMs: timeoutMs + 5000 },
  );
  return result.stdout as ConnectResult;
}

const ICMP_PROBE = `
import socket, struct, sys, time, os
family, host, kind, code, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ident = os.getpid() & 0xffff
def checksum(data):
    if len(data) % 2: data += b'\\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff); total += total >> 16
    return ~total & 0xffff
payload = b'asgc-probe-1234'
if family == '4':
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    header = struct.pack('!BBHHH', kind, code, 0, ident, 1)
    body = (b'\\0' * 12) if kind == 13 else payload
    packet = struct.pack('!BBHHH', kind, code, checksum(header + body), ident, 1) + body
    replies, errors = (0, 14), (3, 11, 12)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    packet = struct.pack('!BBHHH', kind, code, 0, ident, 1) + payload
    replies, errors = (129,), (1, 2, 3, 4)
s.settimeout(timeout)
s.sendto(packet, (host, 0))
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        data, sender = s.recvfrom(2048)
    except socket.timeout:
        break
    if family == '4': data = data[(data[0] & 0x0f) * 4:]
    kind_in, code_in = data[0], data[1]
    if kind_in in replies and struct.unpack('!H', data[4:6])[0] == ident:
        print('reply'); sys.exit(0)
    if kind_in in errors and struct.pack('!H', ident) in data[8:]:
        print('rejected:%d/%d' % (kind_in, code_in)); sys.exit(0)
print('timeout')
`;

/** Send one ICMP/ICMPv6 message of type/code and report a reply, an ICMP error about it, or nothing. */
export async function icmp(
  namespace: string,
  family: 4 | 6,
  host: string,
  type: number,
  code = 0,
  timeoutSeconds = 1,
): Promise<string> {
  const result = await runProcess(
    inPython(namespace, ICMP_PROBE, String(family), host, String(type), String(code), String(timeoutSeconds)),
    {
      timeoutMs: timeoutSeconds * 1000 + 5000,
    },
  );
  if (result.code !== 0) throw new Error(`icmp probe failed: ${result.stderr}`);
  return result.stdout.trim();
}

const PY_CLIENT = String.raw`
import errno, socket, sys
protocol, host, port, timeout, source, forged = sys.argv[1:7]
family = socket.AF_INET6 if ':' in host else socket.AF_INET
kind = socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM
def address(text, port):
    return socket.getaddrinfo(text, int(port), family, kind)[0][4]
s = socket.socket(family, kind)
if forged == '1':
    # IP_TRANSPARENT / IPV6_TRANSPARENT: bind to, and route from, an address the host does not have.
    s.setsockopt(socket.SOL_IP if family == socket.AF_INET else socket.IPPROTO_IPV6, 19 if family == socket.AF_INET else 75, 1)
if source:
    s.bind(address(source, 0))
s.settimeout(float(timeout))
try:
    s.connect(address(host, port))
    if protocol == 'udp': s.send(b'ping')
    s.recv(64)
    print('connected' if protocol == 'tcp' else 'reply')
except ConnectionRefusedError: print('refused')
except PermissionError: print('prohibited')
except socket.timeout: print('timeout')
except OSError as error: print('error:' + errno.errorcode.get(error.errno, str(error.errno)))
`;

/**
 * Like `connect`, from a chosen source address: a link-local one (`fe80::11%eth0`), or one the
 * host does not have (`forged`: its answer, if any, goes elsewhere); '' lets the kernel choose.
 */
export async function connectFrom(
  namespace: string,
  protocol: 'tcp' | 'udp',
  host: string,
  port: number,
  source: string,
  { forged = false, timeoutMs = 1500 } = {},
): Promise<ConnectResult> {
  const argv = [protocol, host, String(port), String(timeoutMs / 1000), source, forged ? '1' : '0'];
  const result = await runProcess(inPython(namespace, PY_CLIENT, ...argv), {
    timeoutMs: timeoutMs + 5000,
  });
  if (result.code !== 0) throw new Error(`probe failed: ${result.stderr}`);
  return result.stdout.trim() as ConnectResult;
}

const PY_ROUTER_ADVERTISEMENT = String.raw`
import socket, struct, sys
interface, prefix = sys.argv[1], sys.argv[2]
index = socket.if_nametoindex(interface)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
# Not a default router (lifetime 0); one prefix, on-link and for autoconfiguration.
advertisement = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 0, 0, 0)
information = struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 3600, 1800, 0) + socket.inet_pton(socket.AF_INET6, prefix)
for _ in range(2):
    s.sendto(advertisement + information, ('ff02::1', 0, 0, index))
`;

/** A router advertisement to all nodes on `iface`, offering `prefix`/64 for autoconfiguration. */
export async function advertisePrefix(namespace: string, iface: string, prefix: string): Promise<void> {
  await mustRun(inPython(namespace, PY_ROUTER_ADVERTISEMENT, iface, prefix));
}

const PY_PATH_MTU = String.raw`
import errno, socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v6 = ':' in host
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
# Never fragment locally: a datagram over the path MTU fails with EMSGSIZE once it is known.
if v6: s.setsockopt(socket.IPPROTO_IPV6, 23, 2)
else: s.setsockopt(socket.IPPROTO_IP, 10, 2)
s.connect((host, port))
mtu = lambda: s.getsockopt(socket.IPPROTO_IPV6, 24) if v6 else s.getsockopt(socket.IPPROTO_IP, 14)
for _ in range(40):
    try: s.send(b'x' * size)
    except OSError as error:
        if error.errno != errno.EMSGSIZE: raise
    time.sleep(0.05)
    if mtu() < size: break
print(mtu())
`;

/** Send datagrams of `size` bytes (never fragmented locally) and say the path MTU the host then knows. */
export async function pathMtu(namespace: string, host: string, port: number, size: number): Promise<number> {
  const result = await mustRun(inPython(namespace, PY_PATH_MTU, host, String(port), String(size)));
  return Number(result.stdout.trim());
}
