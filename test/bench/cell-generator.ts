// Synthetic cells at production scale for benchmarks: C containers, each in its own space
// with its own ASG of R rule elements per family, dual stack.
export interface GeneratedScenario {
  readonly securityGroups: unknown;
  readonly containers: unknown;
  /** Rule elements per container and family the ASGs expand to. */
  readonly rulesPerFamily: number;
}

function guid(kind: number, n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `${kind.toString(16).padStart(8, '0')}-${hex.slice(0, 4)}-4${hex.slice(4, 7)}-8${hex.slice(7, 10)}-${hex.slice(10).padStart(12, '0')}`;
}

/** 100 rule elements per family: 25 tcp x 2 ports, 20 udp, 10 all ranges, 10 icmp(v6), 10 tcp port ranges. */
function spaceRules(space: number, variant = 0, ipv4Only = false): unknown[] {
  const a = space & 255;
  const b = (space >> 8) & 255;
  const rules: unknown[] = [];
  const v6 = ipv4Only ? 0 : variant;
  const both = (i: number) => `198.${b}.${a}.${i + variant}/32,2001:db8:${space.toString(16)}::${(i + v6).toString(16)}`;
  for (let i = 0; i < 25; i++) rules.push({ protocol: 'tcp', destination: both(i), ports: '443,8443' });
  for (let i = 0; i < 20; i++)
    rules.push({ protocol: 'udp', destination: `203.${b}.${a}.${i},fd00:${space.toString(16)}::${i.toString(16)}`, ports: '53' });
  for (let i = 0; i < 10; i++)
    rules.push({
      protocol: 'all',
      destination: `10.${a}.${i}.0-10.${a}.${i}.127,fd01:${space.toString(16)}:${i}::-fd01:${space.toString(16)}:${i}::ff`,
    });
  for (let i = 0; i < 10; i++) rules.push({ protocol: 'icmp', destination: `192.${b}.${a}.${i}`, type: 8, code: -1 });
  for (let i = 0; i < 10; i++)
    rules.push({
      protocol: 'icmpv6',
      destination: `2001:db8:ffff:${space.toString(16)}::${i.toString(16)}`,
      type: 128,
      code: -1,
    });
  for (let i = 0; i < 10; i++)
    rules.push({ protocol: 'tcp', destination: both(100 + i), ports: '8000-9000', description: `range ${i}` });
  return rules.map((rule) => ({ ports: '', type: 0, code: 0, description: '', log: false, ...(rule as object) }));
}

/**
 * 100 rules with nothing for the optimiser to merge: each its own destination in each family
 * (no two touch) and one port of its own.
 */
function distinctRules(space: number): unknown[] {
  const a = space & 255;
  const b = (space >> 8) & 255;
  return Array.from({ length: 100 }, (_, i) => ({
    protocol: 'tcp',
    destination: `198.${b}.${a}.${2 * i}/32,2001:db8:${space.toString(16)}::${(2 * i).toString(16)}`,
    ports: String(1000 + i),
    type: 0,
    code: 0,
    description: '',
    log: false,
  }));
}

/** The rules of each space: a mix where much merges, or rules where nothing can. */
export type RuleShape = 'mixed' | 'distinct';

/**
 * `spaces` spaces, each with its own ASG; container n lives in space n mod spaces. With one
 * space per container (the default) no two containers share an ASG chain: the worst case.
 */
export function generateCell(
  containerCount: number,
  spaces = containerCount,
  changed: ReadonlySet<number> = new Set(),
  /** Spaces whose rules change in their IPv4 destinations only. */
  changedIpv4: ReadonlySet<number> = new Set(),
  shape: RuleShape = 'mixed',
): GeneratedScenario {
  const groups: unknown[] = [];
  const containers: Record<string, unknown> = {};
  for (let n = 1; n <= spaces; n++) {
    groups.push({
      guid: guid(3, n),
      name: `space-${n}-egress`,
      rules: JSON.stringify(
        shape === 'distinct'
          ? distinctRules(n)
          : spaceRules(n, changed.has(n) || changedIpv4.has(n) ? 1 : 0, changedIpv4.has(n) && !changed.has(n)),
      ),
      staging_default: false,
      running_default: false,
      staging_space_guids: [],
      running_space_guids: [guid(2, n)],
    });
  }
  for (let n = 1; n <= containerCount; n++) {
    const space = guid(2, ((n - 1) % spaces) + 1);
    const handle = guid(4, n);
    containers[handle] = {
      handle,
      ip: `10.255.${n >> 8}.${n & 255}`,
      ipv6: `2001:db8:3000:1::${n.toString(16)}`,
      metadata: { policy_group_id: guid(5, n), space_id: space, container_workload: 'app', ports: '8080' },
    };
  }
  return { securityGroups: { next: 0, security_groups: groups }, containers, rulesPerFamily: 100 };
}
