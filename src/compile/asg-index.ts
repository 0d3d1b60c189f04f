// Which ASGs apply to which containers, as CF's agent assembles them.
import type { SecurityGroup } from '../model/asg.js';
import type { Lifecycle } from '../model/cell.js';

export class AsgIndex {
  private readonly global: Record<Lifecycle, SecurityGroup[]> = { running: [], staging: [] };
  private readonly bySpace: Record<Lifecycle, Map<string, SecurityGroup[]>> = { running: new Map(), staging: new Map() };
  /** Sets already assembled (one per space and lifecycle, asked for by each of its containers). */
  private readonly sets = new Map<string, readonly SecurityGroup[]>();

  constructor(groups: readonly SecurityGroup[]) {
    for (const group of groups) {
      this.add('running', group, group.runningDefault, group.runningSpaceGuids);
      this.add('staging', group, group.stagingDefault, group.stagingSpaceGuids);
    }
  }

  /**
   * The space whose ASG set a container gets: its own when the space has ASGs of its own
   * for the lifecycle, else none (the global set, shared by every such space).
   */
  setSpace(lifecycle: Lifecycle, spaceGuid: string | undefined): string | undefined {
    return spaceGuid !== undefined && this.bySpace[lifecycle].has(spaceGuid) ? spaceGuid : undefined;
  }

  /** Global groups of the lifecycle, then the space's own (a global group is not repeated). */
  groupsFor(lifecycle: Lifecycle, spaceGuid: string | undefined): readonly SecurityGroup[] {
    const key = `${lifecycle}\u0000${spaceGuid ?? ''}`;
    let groups = this.sets.get(key);
    if (groups === undefined) {
      const own = spaceGuid === undefined ? [] : (this.bySpace[lifecycle].get(spaceGuid) ?? []);
      groups = [...this.global[lifecycle], ...own];
      this.sets.set(key, groups);
    }
    return groups;
  }

  private add(lifecycle: Lifecycle, group: SecurityGroup, isDefault: boolean, spaces: readonly string[]): void {
    if (isDefault) {
      this.global[lifecycle].push(group);
      return;
    }
    for (const space of new Set(spaces)) {
      const list = this.bySpace[lifecycle].get(space) ?? [];
      list.push(group);
      this.bySpace[lifecycle].set(space, list);
    }
  }
}
