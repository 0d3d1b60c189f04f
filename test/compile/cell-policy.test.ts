// c2c in both families, ingress protection, host access, logging and limits.
import { describe, expect, it } from 'vitest';
import { ingestConfig } from '../../src/ingest/config.js';
import { ingestEndpoints } from '../../src/ingest/endpoints.js';
import { formatInputError } from '../../src/ingest/input-error.js';
import { ingestPolicies } from '../../src/ingest/policies.js';
import { parseAddress, parseCidr } from '../../src/model/address.js';
import type { C2cPolicy } from '../../src/model/cell.js';
import { cell, chainRules, compileText, container, securityGroup } from '../support/cell.js';

const FRONTEND = 'app-frontend';
const BACKEND = 'app-backend';
const REMOTE = 'app-remote';

function policy(
  source: string,
  sourceTag: number,
  destination: string,
  protocol: 'tcp' | 'udp',
  start: number,
  end = start,
): C2cPolicy {
  return {
    source: { appGuid: source, tag: sourceTag },
    destination: { appGuid: destination, tag: 0x99, protocol, ports: { start, end } },
  };
}

function address(text: string) {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function block(text: string) {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const dns = securityGroup('dns', [{ protocol: 'udp', destination: '192.0.2.53,2001:db8:53::53', ports: '53' }], {
  runningDefault: true,
});
const frontend = container('fe', ['10.255.0.2', '2001:db8:c::2'], { appGuid: FRONTEND, ports: [8080] });
const backend = container('be', ['10.255.0.3', '2001:db8:c::3'], { appGuid: BACKEND, ports: [8080, 9090] });

describe('IPv4 c2c over the overlay', () => {
  const policies = [
    policy(FRONTEND, 0x1, BACKEND, 'tcp', 8080),
    policy(FRONTEND, 0x1, BACKEND, 'udp', 9000, 9100),
    policy(REMOTE, 0x1234abcd, BACKEND, 'tcp', 9090),
    policy(BACKEND, 0xab, REMOTE, 'tcp', 443),
  ];
  const text = compileText(
    cell([dns], [frontend, backend], { overlayNetwork: block('10.255.0.0/16'), ingressTag: 0xffff0001 }, { policies }),
  )[4];

  it('marks traffic of local source apps with their tag (tags of 1 to 4 bytes), first in the dispatch chain', () => {
    const dispatch = chainRules(text, 'asgc-forward');
    expect(dispatch.slice(0, 2)).toEqual([
      '-s 10.255.0.3/32 -m comment --comment "src:app-backend" -j MARK --set-xmark 0xab/0xffffffff',
      '-s 10.255.0.2/32 -m comment --comment "src:app-frontend" -j MARK --set-xmark 0x1/0xffffffff',
    ]);
    expect(dispatch.slice(2).map((r) => r.split(' ')[0])).toEqual(['-d', '-d', '-s', '-s']);
  });

  it('accepts, at the destination, the policy ports for the source tag, including sources on other cells', () => {
    expect(chainRules(text, 'asgc-i-be-')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m tcp --dport 8080 -m mark --mark 0x1 -m comment --comment "src:app-frontend_dst:app-backend" -j ACCEPT',
      '-p udp -m udp --dport 9000:9100 -m mark --mark 0x1 -m comment --comment "src:app-frontend_dst:app-backend" -j ACCEPT',
      '-p tcp -m tcp --dport 9090 -m mark --mark 0x1234abcd -m comment --comment "src:app-remote_dst:app-backend" -j ACCEPT',
      '-p tcp -m tcp --dport 8080 -m mark --mark 0xffff0001 -j ACCEPT',
      '-p tcp -m tcp --dport 9090 -m mark --mark 0xffff0001 -j ACCEPT',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
  });

  it('lets marked traffic to the overlay through the source egress (the destination decides)', () => {
    expect(chainRules(text, 'asgc-o-fe-')).toContain('-d 10.255.0.0/16 -m mark ! --mark 0x0 -j ACCEPT');
  });

  it('never marks 0 and needs no local source for a destination rule', () => {
    expect(text).not.toMatch(/--set-xmark 0x0\//);
    const onlyDestination = compileText(
      cell([], [backend], {}, { policies: [policy(REMOTE, 0x7, BACKEND, 'tcp', 1, 65535)] }),
    )[4];
    expect(onlyDestination).not.toContain('-j MARK');
    expect(chainRules(onlyDestination, 'asgc-i-be-')).toContain(
      '-p tcp -m tcp --dport 1:65535 -m mark --mark 0x7 -m comment --comment "src:app-remote_dst:app-backend" -j ACCEPT',
    );
  });
});

describe('IPv6 c2c, routed: by the source app addresses', () => {
  const endpoints = new Map([
    [REMOTE, [address('2001:db8:9::b2').value, address('2001:db8:8::b1').value]],
    [FRONTEND, [address('2001:db8:a::c1').value, address('2001:db8:c::2').value]],
  ]);
  const policies = [
    policy(FRONTEND, 1, BACKEND, 'tcp', 8080),
    policy(REMOTE, 3, BACKEND, 'tcp', 9090),
    policy(BACKEND, 2, REMOTE, 'udp', 5000, 5010),
    policy('app-nowhere', 5, BACKEND, 'tcp', 22),
  ];
  const text = compileText(cell([dns], [frontend, backend], {}, { policies, endpoints }))[6];

  it('groups each source app in one chain of its addresses (remote and local, sorted, once each)', () => {
    expect(chainRules(text, 'asgc-f-appfrontend')).toEqual(['-s 2001:db8:a::c1/128 -j ACCEPT', '-s 2001:db8:c::2/128 -j ACCEPT']);
    expect(chainRules(text, 'asgc-f-appremote')).toEqual(['-s 2001:db8:8::b1/128 -j ACCEPT', '-s 2001:db8:9::b2/128 -j ACCEPT']);
  });

  it('sends the policy ports to the source app chain at the destination; apps without addresses get no rule', () => {
    const ingress = chainRules(text, 'asgc-i-be-');
    expect(ingress).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      expect.stringMatching(
        /^-p tcp -m tcp --dport 8080 -m comment --comment "src:app-frontend_dst:app-backend" -j asgc-f-appfrontend-[a-z2-7]{8}$/,
      ),
      expect.stringMatching(
        /^-p tcp -m tcp --dport 9090 -m comment --comment "src:app-remote_dst:app-backend" -j asgc-f-appremote-[a-z2-7]{8}$/,
      ),
      '-j REJECT --reject-with icmp6-adm-prohibited',
    ]);
  });

  it('lets the source reach other cells destinations of its policies past its ASGs', () => {
    expect(chainRules(text, 'asgc-o-be-')).toContainEqual(
      expect.stringMatching(
        /^-p udp -m udp --dport 5000:5010 -m comment --comment "src:app-backend_dst:app-remote" -j asgc-t-appremote-/,
      ),
    );
    expect(chainRules(text, 'asgc-t-appremote')).toEqual(['-d 2001:db8:8::b1/128 -j ACCEPT', '-d 2001:db8:9::b2/128 -j ACCEPT']);
  });
});

describe('ingress protection and host access', () => {
  const config = {
    ingressRouters: [block('198.51.100.20'), block('2001:db8:f::/64')],
    dnsServers: [address('169.254.0.2'), address('fd00::2')],
    hostTcpServices: [{ address: address('169.254.0.2'), port: 8853 }],
    hostUdpServices: [{ address: address('fd00::2'), port: 123 }],
  };
  const text = compileText(cell([dns], [backend], config));

  it('accepts the ingress routers of each family on the container ports only', () => {
    expect(chainRules(text[6], 'asgc-i-be-')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-s 2001:db8:f::/64 -p tcp -m tcp --dport 8080 -j ACCEPT',
      '-s 2001:db8:f::/64 -p tcp -m tcp --dport 9090 -j ACCEPT',
      '-j REJECT --reject-with icmp6-adm-prohibited',
    ]);
    expect(chainRules(text[4], 'asgc-i-be-')).toContain('-s 198.51.100.20/32 -p tcp -m tcp --dport 9090 -j ACCEPT');
  });

  it("accepts CF's ingress tag on every port and protocol where asked (the CNI's way), else on the container's own ports", () => {
    const tagged = { ingressTag: 0xffff0000 };
    expect(chainRules(compileText(cell([dns], [backend], tagged))[4], 'asgc-i-be-')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m tcp --dport 8080 -m mark --mark 0xffff0000 -j ACCEPT',
      '-p tcp -m tcp --dport 9090 -m mark --mark 0xffff0000 -j ACCEPT',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(chainRules(compileText(cell([dns], [backend], { ...tagged, ingressTagPorts: 'all' }))[4], 'asgc-i-be-')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-m mark --mark 0xffff0000 -j ACCEPT',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
  });

  it('with container network policy disabled, accepts everything from other containers (the overlay; in IPv6 their prefixes)', () => {
    const text = compileText(
      cell([dns], [backend], {
        disableContainerNetworkPolicy: true,
        overlayNetwork: block('10.255.0.0/16'),
        containerPrefixes: [block('2001:db8:c::/64')],
      }),
    );
    expect(chainRules(text[4], 'asgc-i-be-')[1]).toBe('-s 10.255.0.0/16 -j ACCEPT');
    expect(chainRules(text[6], 'asgc-i-be-')[1]).toBe('-s 2001:db8:c::/64 -j ACCEPT');
  });

  it('lets containers reach DNS and the host services of their family, neighbour discovery in IPv6, nothing else', () => {
    expect(chainRules(text[4], 'asgc-host')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-d 169.254.0.2/32 -p tcp -m tcp --dport 53 -j ACCEPT',
      '-d 169.254.0.2/32 -p udp -m udp --dport 53 -j ACCEPT',
      '-d 169.254.0.2/32 -p tcp -m tcp --dport 8853 -j ACCEPT',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(chainRules(text[6], 'asgc-host')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 131 -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 132 -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 133 -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT',
      '-p ipv6-icmp -m icmp6 --icmpv6-type 143 -j ACCEPT',
      '-d fd00::2/128 -p tcp -m tcp --dport 53 -j ACCEPT',
      '-d fd00::2/128 -p udp -m udp --dport 53 -j ACCEPT',
      '-d fd00::2/128 -p udp -m udp --dport 123 -j ACCEPT',
      '-j REJECT --reject-with icmp6-port-unreachable',
    ]);
    expect(text[6]).toContain('-A INPUT -j asgc-input\n');
  });

  it('sends everything from a container interface to host access, whatever its source (link-local too)', () => {
    for (const family of [4, 6] as const) expect(chainRules(text[family], 'asgc-input')).toEqual(['-i s-+ -j asgc-host']);
    const patterns = compileText(cell([dns], [backend], { ...config, containerInterfaces: ['s-+', 'w-+'] }));
    expect(chainRules(patterns[6], 'asgc-input')).toEqual(['-i s-+ -j asgc-host', '-i w-+ -j asgc-host']);
    // Without container interfaces, by each container's address (and nothing else can be known).
    const byAddress = compileText(
      cell([dns], [frontend, backend], { ...config, containerInterfaces: [], antiSpoofing: { 4: false, 6: false } }),
    );
    expect(chainRules(byAddress[6], 'asgc-input')).toEqual([
      '-s 2001:db8:c::3/128 -j asgc-host',
      '-s 2001:db8:c::2/128 -j asgc-host',
    ]);
  });
});

describe('anti-spoofing (the raw table)', () => {
  const raw = (text: string) => text.slice(0, text.indexOf('*filter'));

  it('drops, before any policy, what a container sends from an address not routed back to it, and a container address from elsewhere', () => {
    const text = compileText(cell([dns], [frontend, backend]));
    // IPv6 by default; IPv4 has the kernel's rp_filter, which silk turns on.
    expect(raw(text[4])).toBe('');
    expect(raw(text[6])).toBe(
      [
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':asgc-antispoof - [0:0]',
        '-A PREROUTING -j asgc-antispoof',
        '-A asgc-antispoof -i s-+ -m rpfilter --invert -j DROP',
        '-A asgc-antispoof -i s-+ -j RETURN',
        '-A asgc-antispoof -s 2001:db8:c::3/128 -j DROP',
        '-A asgc-antispoof -s 2001:db8:c::2/128 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it("claims the containers' prefixes where configured, in each family turned on", () => {
    const config = {
      containerPrefixes: [block('10.255.0.0/16'), block('2001:db8:c::/64')],
      antiSpoofing: { 4: true, 6: true },
    };
    const text = compileText(cell([dns], [frontend, backend], config));
    expect(chainRules(text[4], 'asgc-antispoof')).toEqual([
      '-i s-+ -m rpfilter --invert -j DROP',
      '-i s-+ -j RETURN',
      '-s 10.255.0.0/16 -j DROP',
    ]);
    expect(chainRules(text[6], 'asgc-antispoof').at(-1)).toBe('-s 2001:db8:c::/64 -j DROP');
    const off = compileText(cell([dns], [frontend, backend], { antiSpoofing: { 4: false, 6: false } }));
    expect([off[4], off[6]].some((family) => family.includes('*raw'))).toBe(false);
  });

  it('is refused without container interfaces, which it needs to know where a packet comes from', () => {
    const { errors } = ingestConfig({ container_interfaces: [], container_prefixes: ['fd00::/8', '10.0.0.0/33'] }, 'c.json');
    expect(errors.map(formatInputError)).toEqual([
      'c.json: /container_prefixes/1: must be a CIDR or IP address: "10.0.0.0/33" has prefix length 33, over 32 for IPv4',
      'c.json: /anti_spoofing: needs container_interfaces: what comes from a container is known by the interface it arrives on',
    ]);
    expect(ingestConfig({ container_interfaces: [], anti_spoofing: { ipv6: false } }, 'c.json').errors).toEqual([]);
  });
});

describe('logging and limits', () => {
  const web = securityGroup('web', [{ protocol: 'tcp', destination: '203.0.113.0/24', ports: '443' }], { runningDefault: true });
  const limit = { perSecond: 100, burst: 200, expirySeconds: 10, logging: false, dryRun: false };
  const limits = { outboundConnections: limit };

  it('rate-limits new outbound connections per container and destination, after invalid and before deny networks', () => {
    const egress = chainRules(compileText(cell([web], [backend], limits))[4], 'asgc-o-be-');
    expect(egress[2]).toMatch(
      /^-p tcp -m conntrack --ctstate NEW -m hashlimit --hashlimit-above 100\/sec --hashlimit-burst 200 --hashlimit-mode dstip,dstport --hashlimit-name asgc-o-be-[a-z2-7]{8} --hashlimit-htable-expire 10000 -j REJECT --reject-with icmp-port-unreachable$/,
    );
  });

  it('in a dry run, over-limit connections are only logged, and go on through the chain (CF dry_run)', () => {
    const text = compileText(cell([web], [backend], { outboundConnections: { ...limit, dryRun: true } }))[4];
    expect(chainRules(text, 'asgc-o-be-')[2]).toMatch(/ -j asgc-q-be-\S+$/);
    expect(chainRules(text, 'asgc-q-be-')).toEqual(['-m limit --limit 1/sec --limit-burst 1 -j LOG --log-prefix "DENY_ORL_be "']);
    const { config } = ingestConfig({ outbound_connections: { rate_per_sec: 100, burst: 1000, dry_run: true } }, 'c.json');
    // CF derives the expiry from the bucket: ceil(burst / rate) seconds.
    expect(config.outboundConnections).toEqual({ perSecond: 100, burst: 1000, expirySeconds: 10, logging: false, dryRun: true });
  });

  it('with ASG logging, over-limit connections are logged (rate-limited) before the reject', () => {
    const text = compileText(cell([web], [backend], { outboundConnections: { ...limit, logging: true } }))[6];
    expect(chainRules(text, 'asgc-o-be-')[2]).toMatch(/ -g asgc-q-be-/);
    expect(chainRules(text, 'asgc-q-be-')).toEqual([
      '-m limit --limit 1/sec --limit-burst 1 -j LOG --log-prefix "DENY_ORL_be "',
      '-j REJECT --reject-with icmp6-port-unreachable',
    ]);
  });

  it('with c2c logging, logs new accepted c2c connections (UDP rate-limited) and traffic nothing allowed', () => {
    const policies = [policy(FRONTEND, 0x1, BACKEND, 'tcp', 8080), policy(FRONTEND, 0x1, BACKEND, 'udp', 8125)];
    const ingress = chainRules(
      compileText(cell([], [frontend, backend], { c2cLogging: true, deniedLogsPerSec: 2 }, { policies }))[4],
      'asgc-i-be-',
    );
    expect(ingress).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m tcp --dport 8080 -m mark --mark 0x1 -m conntrack --ctstate INVALID,NEW,UNTRACKED -j LOG --log-prefix "OK_0001_app-backend "',
      '-p tcp -m tcp --dport 8080 -m mark --mark 0x1 -m comment --comment "src:app-frontend_dst:app-backend" -j ACCEPT',
      '-p udp -m udp --dport 8125 -m mark --mark 0x1 -m limit --limit 100/sec --limit-burst 100 -j LOG --log-prefix "OK_0001_app-backend "',
      '-p udp -m udp --dport 8125 -m mark --mark 0x1 -m comment --comment "src:app-frontend_dst:app-backend" -j ACCEPT',
      '-m limit --limit 2/sec --limit-burst 2 -j LOG --log-prefix "DENY_C2C_be "',
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
  });
});

describe('input checks for the new documents', () => {
  it('refuses tag 0, in policies and as the ingress tag', () => {
    const policies = ingestPolicies(
      {
        policies: [
          {
            source: { id: 'a', tag: '0000' },
            destination: { id: 'b', tag: '0002', protocol: 'tcp', ports: { start: 1, end: 2 } },
          },
        ],
      },
      'p.json',
    );
    expect(policies.errors.map(formatInputError)).toEqual([
      'p.json: /policies/0/source/tag: tag 0 means "no mark" and is never an app\'s tag',
    ]);
    expect(policies.policies).toEqual([]);
    expect(ingestConfig({ ingress_tag: '0' }, 'c.json').errors.map(formatInputError)).toEqual([
      'c.json: /ingress_tag: tag 0 means "no mark" and cannot identify the ingress router',
    ]);
  });

  it('reads endpoints as IPv6 addresses and says which entry is wrong', () => {
    const { endpoints, errors } = ingestEndpoints({ a: ['2001:db8::1', '2001:DB8::1', '10.0.0.1'] }, 'e.json');
    expect(errors.map(formatInputError)).toEqual([
      'e.json: /a/1: 2001:db8::1 is listed twice',
      'e.json: /a/2: must be an IPv6 address: "10.0.0.1" is not an IPv6 address',
    ]);
    expect(endpoints.get('a')).toHaveLength(1);
  });

  it('reads host services with IPv6 hosts in brackets, and the overlay as IPv4', () => {
    const { config, errors } = ingestConfig(
      {
        host_tcp_services: ['169.254.0.2:8853', '[fd00::2]:8853', 'fd00::2:8853', '[10.0.0.1]:1', '10.0.0.1:70000'],
        overlay_network: '2001:db8::/32',
      },
      'c.json',
    );
    expect(config.hostTcpServices).toHaveLength(2);
    expect(errors.map(formatInputError)).toEqual([
      'c.json: /overlay_network: must be an IPv4 CIDR (the IPv6 network is routed, without an overlay)',
      'c.json: /host_tcp_services/2: must be host:port, with an IPv6 host in brackets, not "fd00::2:8853"',
      'c.json: /host_tcp_services/3: only IPv6 hosts go in brackets: "[10.0.0.1]:1"',
      'c.json: /host_tcp_services/4: port 70000 is outside 1-65535',
    ]);
  });
});
