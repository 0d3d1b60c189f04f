// Many probes in one process each side, for differential tests: a server that answers TCP and
// UDP on a set of ports for every address routed to it as local (AnyIP), replying from the
// address that was asked; and a client that sends a list of probes and says, for each, whether
// it was answered (accepted) or refused by an ICMP error (rejected).
import { type ChildProcess, spawn } from 'node:child_process';
import { runProcess } from '../../src/exec/process.js';

const SERVER = String.raw`
import select, socket, struct, sys
ports = [int(p) for p in sys.argv[1].split(',')]
listeners, datagrams = [], []
for port in ports:
    for family, any_address in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6: t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        t.bind((any_address, port)); t.listen(64); t.setblocking(False); listeners.append(t)
        u = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        else:
            u.setsockopt(socket.IPPROTO_IP, getattr(socket, 'IP_PKTINFO', 8), 1)
        u.bind((any_address, port)); datagrams.append(u)
print('ready', flush=True)
while True:
    readable, _, _ = select.select(listeners + datagrams, [], [])
    for s in readable:
        if s in listeners:
            try:
                c, _ = s.accept(); c.close()
            except OSError:
                pass
            continue
        data, ancillary, _, sender = s.recvmsg(2048, 256)
        # Reply from the address that was asked (AnyIP: the socket is bound to the wildcard),
        # leaving the interface to routing.
        reply = []
        for level, kind, value in ancillary:
            if level == socket.IPPROTO_IP:
                reply.append((level, kind, struct.pack('=i4s4s', 0, value[8:12], b'\0' * 4)))
            elif level == socket.IPPROTO_IPV6:
                reply.append((level, socket.IPV6_PKTINFO, value[:16] + struct.pack('=i', 0)))
        s.sendmsg([b'pong:' + data], reply, 0, sender)
`;

const CLIENT = String.raw`
import errno, json, os, select, socket, struct, sys, time
probes = json.load(sys.stdin)
ident = os.getpid() & 0xffff
def checksum(data):
    if len(data) % 2: data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff); total += total >> 16
    return ~total & 0xffff
def tcp(p):
    # The ICMP error for a SYN may come while connect() still holds the socket; the kernel then
    # keeps it as a soft error until the SYN is sent again (a second later). With RECVERR it is
    # also queued at once, and read from the error queue.
    v6 = ':' in p['to']
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, 25, 1) if v6 else s.setsockopt(socket.IPPROTO_IP, 11, 1)
    s.setblocking(False)
    try:
        s.connect((p['to'], p['port']))
    except BlockingIOError:
        pass
    poller = select.poll(); poller.register(s, select.POLLOUT | select.POLLERR)
    deadline = time.time() + p['timeout']
    try:
        while time.time() < deadline:
            if not poller.poll(max(1, int((deadline - time.time()) * 1000))): continue
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error == errno.ECONNREFUSED: return 'rejected'
            if error != 0: return 'error:%s' % error
            try:
                _, ancillary, _, _ = s.recvmsg(512, 512, 0x2000)  # MSG_ERRQUEUE
                for _, _, data in ancillary:
                    if struct.unpack('=I', data[:4])[0] == errno.ECONNREFUSED: return 'rejected'
                continue
            except (BlockingIOError, InterruptedError):
                pass
            try:
                s.getpeername(); return 'accepted'
            except OSError:
                continue
        return 'timeout'
    finally: s.close()
def udp(p, n):
    family = socket.AF_INET6 if ':' in p['to'] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(p['timeout'])
    try:
        s.connect((p['to'], p['port'])); s.send(b'probe-%d' % n)
        data = s.recv(2048)
        return 'accepted' if data == b'pong:probe-%d' % n else 'error:bad reply'
    except ConnectionRefusedError: return 'rejected'
    except socket.timeout: return 'timeout'
    except OSError as e: return 'error:%s' % e.errno
    finally: s.close()
def icmp(p, n):
    v6 = ':' in p['to']
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    s.settimeout(p['timeout'])
    payload = b'asgc-batch-%d' % n
    header = struct.pack('!BBHHH', p['type'], p['code'], 0, ident, n)
    packet = header if v6 else struct.pack('!BBHHH', p['type'], p['code'], checksum(header + payload), ident, n)
    s.sendto(packet + payload, (p['to'], 0))
    replies, errors = ((129,), (1, 2, 3, 4)) if v6 else ((0,), (3, 11, 12))
    deadline = time.time() + p['timeout']
    try:
        while time.time() < deadline:
            data, _ = s.recvfrom(2048)
            if not v6: data = data[(data[0] & 0x0f) * 4:]
            if data[0] in replies and data[4:8] == struct.pack('!HH', ident, n): return 'accepted'
            if data[0] in errors and payload in data: return 'rejected'
        return 'timeout'
    except socket.timeout: return 'timeout'
    finally: s.close()
results = []
for n, p in enumerate(probes):
    results.append(tcp(p) if p['protocol'] == 'tcp' else udp(p, n) if p['protocol'] == 'udp' else icmp(p, n))
print(json.dumps(results))
`;

export interface BatchProbe {
  readonly protocol: 'tcp' | 'udp' | 'icmp';
  readonly to: string;
  readonly port?: number;
  readonly type?: number;
  readonly code?: number;
}

export type BatchResult = 'accepted' | 'rejected' | 'timeout' | `error:${string}`;

/** The server, in a namespace; resolves once it listens on every port of both families. */
export async function startBatchServer(namespace: string, ports: readonly number[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', namespace, 'python3', '-c', SERVER, ports.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe server in ${namespace} did not start`)), 10_000);
    child.stdout?.on('data', (data: Buffer) => {
      if (data.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`probe server in ${namespace} exited ${code}`)));
  });
  return child;
}

/** Every probe from one namespace, in order, each bounded by `timeoutSeconds`. */
export async function runBatch(namespace: string, probes: readonly BatchProbe[], timeoutSeconds = 1): Promise<BatchResult[]> {
  const input = JSON.stringify(probes.map((probe) => ({ ...probe, timeout: timeoutSeconds })));
  const result = await runProcess(['ip', 'netns', 'exec', namespace, 'python3', '-c', CLIENT], {
    input,
    timeoutMs: probes.length * (timeoutSeconds + 0.5) * 1000 + 10_000,
  });
  if (result.code !== 0) throw new Error(`probe client failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as BatchResult[];
}
