// Container-to-container policies seen from one cell: which local containers are sources and
// destinations of which policies, each app's tag, and each app's IPv6 addresses.
import type { C2cPolicy, Container } from '../model/cell.js';

export class C2cIndex {
  private readonly bySource = new Map<string, C2cPolicy[]>();
  private readonly byDestination = new Map<string, C2cPolicy[]>();
  private readonly tags = new Map<string, number>();
  private readonly addresses = new Map<string, bigint[]>();

  constructor(
    policies: readonly C2cPolicy[],
    containers: readonly Container[],
    endpoints: ReadonlyMap<string, readonly bigint[]>,
  ) {
    const seen = new Set<string>();
    for (const policy of policies) {
      const { source, destination } = policy;
      const key = `${source.appGuid}\u0000${destination.appGuid}\u0000${destination.protocol}\u0000${destination.ports.start}\u0000${destination.ports.end}`;
      if (seen.has(key)) continue;
      seen.add(key);
      push(this.bySource, source.appGuid, policy);
      push(this.byDestination, destination.appGuid, policy);
      // An app has one tag; the first policy that names it wins, as in CF's agent.
      if (!this.tags.has(source.appGuid)) this.tags.set(source.appGuid, source.tag);
    }
    for (const [app, list] of endpoints) this.addresses.set(app, [...list]);
    for (const container of containers) {
      if (container.appGuid !== undefined && container.ipv6 !== undefined)
        push(this.addresses, container.appGuid, container.ipv6);
    }
    for (const [app, list] of this.addresses)
      this.addresses.set(
        app,
        [...new Set(list)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      );
  }

  /** Policies whose source is this app. */
  asSource(appGuid: string | undefined): readonly C2cPolicy[] {
    return appGuid === undefined ? [] : (this.bySource.get(appGuid) ?? []);
  }

  /** Policies whose destination is this app. */
  asDestination(appGuid: string | undefined): readonly C2cPolicy[] {
    return appGuid === undefined ? [] : (this.byDestination.get(appGuid) ?? []);
  }

  /** The mark this app's traffic carries over the IPv4 overlay, if it is a policy source. */
  sourceTag(appGuid: string | undefined): number | undefined {
    return appGuid === undefined ? undefined : this.tags.get(appGuid);
  }

  /** The IPv6 addresses of the app's containers, here and on other cells, sorted. */
  ipv6Addresses(appGuid: string): readonly bigint[] {
    return this.addresses.get(appGuid) ?? [];
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
