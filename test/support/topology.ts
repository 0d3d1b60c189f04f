// A small network of namespaces for packet tests: a "cell" that routes between hosts (container
// namespaces, an outside host, an ingress router), each on its own veth link, documentation and
// ULA addresses only. Probes send real TCP, UDP and ICMP/ICMPv6 and say what came back.
import { type ChildProcess, spawn } from 'node:child_process';
import { runProcess } from '../../src/exec/process.js';
import { mustRun } from './kernel.js';

export interface HostSpec {
  readonly name: string;
  /** Host and cell addresses of the link, IPv4 in a /30 and IPv6 in a /64. */
  readonly ipv4: string;
  readonly cellIpv4: string;
  readonly ipv6: string;
  readonly cellIpv6: string;
}

export interface Topology {
  readonly cell: string;
  namespace(host: string): string;
  destroy(): Promise<void>;
}

let counter = 0;

export async function createTopology(hosts: readonly HostSpec[]): Promise<Topology> {
  const tag = `${process.pid}-${++counter}`;
  const cell = `asgc-cell-${tag}`;
  const namespaces = new Map(hosts.map((host, index) => [host.name, `asgc-h${index}-${tag}`]));
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
    for (const [index, host] of hosts.entries()) {
      const namespace = namespaces.get(host.name) as string;
      const link = `v${index}`;
      await mustRun(['ip', '-n', cell, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
      await mustRun(['ip', '-n', cell, 'addr', 'add', `${host.cellIpv4}/30`, 'dev', link]);
      await mustRun(['ip', '-n', cell, '-6', 'addr', 'add', `${host.cellIpv6}/64`, 'dev', link, 'nodad']);
      await mustRun(['ip', '-n', cell, 'link', 'set', link, 'up']);
      await mustRun(['ip', '-n', namespace, 'addr', 'add', `${host.ipv4}/30`, 'dev', 'eth0']);
      await mustRun(['ip', '-n', namespace, '-6', 'addr', 'add', `${host.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      await mustRun(['ip', '-n', namespace, 'link', 'set', 'eth0', 'up']);
      await mustRun(['ip', '-n', namespace, 'route', 'add', 'default', 'via', host.cellIpv4]);
      await mustRun(['ip', '-n', namespace, '-6', 'route', 'add', 'default', 'via', host.cellIpv6]);
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
    [
      'ip',
      'netns',
      'exec',
      namespace,
      'python3',
      '-c',
      ICMP_PROBE,
      String(family),
      host,
      String(type),
      String(code),
      String(timeoutSeconds),
    ],
    {
      timeoutMs: timeoutSeconds * 1000 + 5000,
    },
  );
  if (result.code !== 0) throw new Error(`icmp probe failed: ${result.stderr}`);
  return result.stdout.trim();
}
