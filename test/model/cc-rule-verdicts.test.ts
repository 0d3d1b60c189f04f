// asgc's verdicts on single ASG rules agree with Cloud Controller's (v3 message validator
// with enable_ipv6 and enable_comma_delimited_destinations on; cases from its specs and the
// reference notes), and every refusal names the field and says why.
import { describe, expect, it } from 'vitest';
import { ingestSecurityGroups } from '../../src/ingest/security-groups.js';

interface Case {
  readonly rule: unknown;
  /** undefined: valid. Otherwise [JSON pointer suffix below /rules/0, text the message contains]. */
  readonly error?: readonly [string, string];
}

const CASES: Record<string, Case> = {
  // destinations
  'IPv4 CIDR': { rule: { protocol: 'udp', destination: '10.10.10.0/24', ports: '8080' } },
  'CIDR with host bits': { rule: { protocol: 'udp', destination: '192.168.10.2/24', ports: '8080' } },
  'single IP': { rule: { protocol: 'udp', destination: '192.168.10.2', ports: '8080' } },
  'IPv4 range': { rule: { protocol: 'udp', destination: '192.168.10.2-192.168.15.254', ports: '8080' } },
  'range a-a': { rule: { protocol: 'all', destination: '10.0.0.5-10.0.0.5' } },
  'reversed range': {
    rule: { protocol: 'udp', destination: '9.9.9.9-0.0.0.0', ports: '53' },
    error: ['/destination', 'inverted'],
  },
  'range with a CIDR end': {
    rule: { protocol: 'all', destination: '1.1.1.1-2.2.2.2/30' },
    error: ['/destination', 'range is invalid'],
  },
  'three-part range': {
    rule: { protocol: 'all', destination: '1.1.1.1-2.2.2.2-3.3.3.3' },
    error: ['/destination', 'not a valid'],
  },
  'truncated range end': {
    rule: { protocol: 'tcp', destination: '192.168.10.2-192.168.105', ports: '8080' },
    error: ['/destination', 'range is invalid'],
  },
  'mixed-family range': {
    rule: { protocol: 'all', destination: '10.0.0.1-2001:db8::1' },
    error: ['/destination', 'range is invalid'],
  },
  'prefix /240': {
    rule: { protocol: 'udp', destination: '192.168.10.2/240', ports: '8080' },
    error: ['/destination', 'prefix length'],
  },
  'IPv6 prefix /129': { rule: { protocol: 'all', destination: '2001:db8::/129' }, error: ['/destination', 'prefix length'] },
  'not an address': {
    rule: { protocol: 'udp', destination: '1010', ports: '8080' },
    error: ['/destination', 'not an IPv4 address'],
  },
  'bad octet': { rule: { protocol: 'all', destination: '0.257.0.0/20' }, error: ['/destination', 'over 255'] },
  'leading whitespace': {
    rule: { protocol: 'udp', destination: '    10.10.10.10', ports: '53' },
    error: ['/destination', 'whitespace'],
  },
  'whitespace in a range': { rule: { protocol: 'all', destination: '0.0.0.0 - 0.0.0.4' }, error: ['/destination', 'whitespace'] },
  'whitespace in a list': { rule: { protocol: 'all', destination: '10.0.0.1, 10.0.0.2' }, error: ['/destination', 'whitespace'] },
  'leading zeros in an IP': {
    rule: { protocol: 'tcp', destination: '010.0.0.53', ports: '443' },
    error: ['/destination', 'leading zeros'],
  },
  'leading zeros in a CIDR': {
    rule: { protocol: 'tcp', destination: '10.000.0.0/24', ports: '443' },
    error: ['/destination', 'leading zeros'],
  },
  'leading zeros in a range': {
    rule: { protocol: 'tcp', destination: '1.0.0.000-1.0.0.200', ports: '443' },
    error: ['/destination', 'leading zeros'],
  },
  'comma list': { rule: { protocol: 'udp', destination: '10.0.0.0/8,192.168.0.0/16', ports: '8080' } },
  'CIDR, range and IP': { rule: { protocol: 'udp', destination: '10.0.0.0/8,1.0.0.0-1.0.0.255,4.5.6.7', ports: '8080' } },
  'chimeric IPv6 and IPv4 list': { rule: { protocol: 'tcp', destination: '2001:db8::,4.5.6.7', ports: '443' } },
  'empty first element': {
    rule: { protocol: 'udp', destination: ',10.10.10.10,11.11.11.11', ports: '8080' },
    error: ['/destination', 'empty destination'],
  },
  'empty middle element': {
    rule: { protocol: 'udp', destination: '10.10.10.10,,11.11.11.11', ports: '8080' },
    error: ['/destination', 'empty destination'],
  },
  'trailing comma': {
    rule: { protocol: 'udp', destination: '10.10.10.10,', ports: '8080' },
    error: ['/destination', 'empty destination'],
  },
  'one bad element of a list': {
    rule: { protocol: 'udp', destination: '192.168.10.2/24,1.2', ports: '8080' },
    error: ['/destination', 'not an IPv4 address'],
  },
  '7000 destinations': {
    rule: { protocol: 'all', destination: Array(7000).fill('192.168.1.3').join(',') },
    error: ['/destination', 'must be under 6000'],
  },
  'empty destination': { rule: { protocol: 'all', destination: '' }, error: ['/destination', 'must not be empty'] },
  'zero-padded IPv6 hextets': { rule: { protocol: 'all', destination: '2001:db8:0000:0000::01' } },
  'IPv4-mapped IPv6': { rule: { protocol: 'all', destination: '::ffff:10.0.0.1' } },
  'IPv4-mapped IPv6 with leading zero': {
    rule: { protocol: 'all', destination: '::ffff:010.0.0.1' },
    error: ['/destination', 'leading zeros'],
  },
  'IPv6 zone id': { rule: { protocol: 'all', destination: 'fe80::1%eth0' }, error: ['/destination', 'zone'] },
  'all to ::/0': { rule: { protocol: 'all', destination: '::/0' } },
  // ports
  'single port': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '443' } },
  'port list in any order': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '443,80,8080' } },
  'comma-space list': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '8080, 8081' } },
  'padded port': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: ' 8080 ' } },
  'spaced range': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '8000 - 9000' } },
  'full range': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '1-65535' } },
  'leading-zero port': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '080' } },
  'trailing comma in ports': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '80,' } },
  'equal range ends 8080-8080': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '8080-8080' },
    error: ['/ports', 'below the end'],
  },
  'reversed port range': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '6000-5000' },
    error: ['/ports', 'below the end'],
  },
  'port 0': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '0' }, error: ['/ports', 'not a port'] },
  'port 65536': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '65536' }, error: ['/ports', 'not a port'] },
  'list with a range': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '80,443-8080' },
    error: ['/ports', 'mixes a range'],
  },
  'two ranges': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '80-90,100-110' },
    error: ['/ports', 'mixes a range'],
  },
  'leading comma': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: ',80' }, error: ['/ports', 'empty entry'] },
  'double comma': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '80,,443' }, error: ['/ports', 'empty entry'] },
  'service name': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: 'http' },
    error: ['/ports', 'characters other than digits'],
  },
  'ports as a number': { rule: { protocol: 'tcp', destination: '10.0.0.1', ports: 42 }, error: ['/ports', 'must be a string'] },
  'tcp without ports': { rule: { protocol: 'tcp', destination: '10.0.0.1' }, error: ['/ports', 'ports are required'] },
  'udp with empty ports': {
    rule: { protocol: 'udp', destination: '10.0.0.1', ports: '' },
    error: ['/ports', 'ports are required'],
  },
  'ports on all': {
    rule: { protocol: 'all', destination: '10.0.0.1', ports: '80' },
    error: ['/ports', 'not allowed for protocols of type all'],
  },
  // icmp / icmpv6
  'icmp type and code': { rule: { protocol: 'icmp', destination: '10.0.0.0/8', type: 8, code: 0 } },
  'icmp any': { rule: { protocol: 'icmp', destination: '10.0.0.0/8', type: -1, code: -1 } },
  'icmpv6 any with 255': { rule: { protocol: 'icmpv6', destination: '2001:db8::/32,2001:db8:85a3::/64', type: -1, code: 255 } },
  'icmp to IPv6': {
    rule: { protocol: 'icmp', destination: '2001:db8::/32', type: 8, code: 0 },
    error: ['/destination', 'you cannot use IPv6 addresses'],
  },
  'icmpv6 to IPv4': {
    rule: { protocol: 'icmpv6', destination: '10.0.0.0/8', type: -1, code: 255 },
    error: ['/destination', 'you cannot use IPv4 addresses'],
  },
  'icmpv6 to a mixed list': {
    rule: { protocol: 'icmpv6', destination: '10.0.0.0/8,2001:db8::/32', type: -1, code: 255 },
    error: ['/destination', 'you cannot use IPv4 addresses'],
  },
  'icmp type 256': {
    rule: { protocol: 'icmp', destination: '10.0.0.1', type: 256, code: 0 },
    error: ['/type', 'between -1 and 255'],
  },
  'icmp code -2': {
    rule: { protocol: 'icmp', destination: '10.0.0.1', type: 8, code: -2 },
    error: ['/code', 'between -1 and 255'],
  },
  'icmp type as a string': {
    rule: { protocol: 'icmp', destination: '10.0.0.1', type: '8', code: 0 },
    error: ['/type', 'must be an integer'],
  },
  'icmp without code': { rule: { protocol: 'icmp', destination: '10.0.0.1', type: 8 }, error: ['/code', 'code is required'] },
  'icmp with ports': {
    rule: { protocol: 'icmp', destination: '10.0.0.1', type: 8, code: 0, ports: '80' },
    error: ['/ports', 'not allowed for protocols of type icmp'],
  },
  'type on tcp': {
    rule: { protocol: 'tcp', destination: '10.0.0.1', ports: '80', type: 8 },
    error: ['/type', 'not allowed for protocols of type tcp'],
  },
  // shape
  'policy-server zero values': {
    rule: { protocol: 'tcp', destination: '10.0.11.0/24', ports: '80,443', type: 0, code: 0, description: '', log: false },
  },
  'policy-server zero values on all': {
    rule: { protocol: 'all', destination: '10.0.0.0/8', ports: '', type: 0, code: 0, description: '', log: false },
  },
  'upper-case protocol': {
    rule: { protocol: 'TCP', destination: '10.0.0.1', ports: '80' },
    error: ['/protocol', 'must be one of'],
  },
  'unknown protocol': { rule: { protocol: 'blah', destination: '10.0.0.1' }, error: ['/protocol', 'must be one of'] },
  'unknown field': { rule: { protocol: 'all', destination: '10.0.0.1', foobar: 1 }, error: ['/foobar', 'unknown field'] },
  'destination as a number': {
    rule: { protocol: 'udp', destination: 42, ports: '53' },
    error: ['/destination', 'must be a string'],
  },
  'missing destination': { rule: { protocol: 'all' }, error: ['', 'missing required field "destination"'] },
  'log not a boolean': { rule: { protocol: 'all', destination: '10.0.0.1', log: 'yes' }, error: ['/log', 'must be a boolean'] },
  'description not a string': {
    rule: { protocol: 'all', destination: '10.0.0.1', description: 7 },
    error: ['/description', 'must be a string'],
  },
  'rule not an object': { rule: 'bad rule', error: ['', 'must be an object'] },
};

function verdict(rule: unknown) {
  const document = { security_groups: [{ guid: 'g1', name: 'sg', rules: [rule] }] };
  return ingestSecurityGroups(document, 'security_groups.json').errors;
}

describe('single-rule verdicts agree with Cloud Controller', () => {
  it('covers at least 40 cases, valid and invalid', () => {
    const entries = Object.values(CASES);
    expect(entries.length).toBeGreaterThanOrEqual(40);
    expect(entries.filter((c) => c.error === undefined).length).toBeGreaterThanOrEqual(15);
    expect(entries.filter((c) => c.error !== undefined).length).toBeGreaterThanOrEqual(25);
  });

  it.each(Object.entries(CASES))('%s', (_name, { rule, error }) => {
    const errors = verdict(rule);
    if (error === undefined) {
      expect(errors).toEqual([]);
      return;
    }
    const [suffix, text] = error;
    const wanted = `/security_groups/0/rules/0${suffix}`;
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e) => e.file)).toContain('security_groups.json');
    expect(
      errors.find((e) => e.pointer === wanted && e.message.includes(text)),
      JSON.stringify(errors),
    ).toBeDefined();
  });

  it('reads rules given as a JSON string, as the policy server sends them', () => {
    const rules = JSON.stringify([
      { protocol: 'tcp', destination: '10.0.0.1', ports: '80-80', type: 0, code: 0, description: '', log: false },
    ]);
    const errors = ingestSecurityGroups({ next: 0, security_groups: [{ guid: 'g1', name: 'sg', rules }] }, 'sg.json').errors;
    expect(errors).toEqual([
      { file: 'sg.json', pointer: '/security_groups/0/rules/0/ports', message: expect.stringContaining('below the end') },
    ]);
  });
});
