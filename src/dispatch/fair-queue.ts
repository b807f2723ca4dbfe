import type { Lane } from '../store/schema.js';

export interface Schedulable {
  lane: Lane;
  /** The fairness key inside a lane: the tenant today, tenant + campaign later. */
  flow: string;
  /** Carrier capacity it uses: its segment count. */
  cost: number;
  /** Arrival order, set by the queue: a retried item goes back to its place. */
  seq?: number;
}

const LANE_ORDER: readonly Lane[] = ['otp', 'transactional', 'bulk'];

/**
 * In-memory scheduling of claimed work: `otp`, then `transactional`, strictly before `bulk`; inside a
 * lane, deficit round robin across flows (Shreedhar & Varghese, 1995) weighted by segments, so one
 * tenant's million waits its turn behind nobody and starves nobody.
 */
export class FairQueue<T extends Schedulable> {
  private readonly lanes: Map<Lane, LaneQueue<T>>;
  private count = 0;
  private nextSeq = 0;

  /** `quantum`: segments a flow may send per turn. */
  constructor(quantum = 10) {
    this.lanes = new Map(LANE_ORDER.map((l) => [l, new LaneQueue<T>(quantum)]));
  }

  get size(): number {
    return this.count;
  }

  sizeOf(lane: Lane): number {
    return this.lanes.get(lane)!.size;
  }

  push(item: T): void {
    item.seq = this.nextSeq++;
    this.lanes.get(item.lane)!.push(item);
    this.count++;
  }

  /**
   * Puts a popped item back at the head of its flow, before any item that arrived after it: retries
   * of several items in flight keep their original order.
   */
  pushFront(item: T): void {
    this.lanes.get(item.lane)!.pushFront(item);
    this.count++;
  }

  /** The next item to send, or undefined when empty. */
  pop(): T | undefined {
    for (const lane of LANE_ORDER) {
      const item = this.lanes.get(lane)!.pop();
      if (item) {
        this.count--;
        return item;
      }
    }
    return undefined;
  }

  /** Drops every item `unwanted` picks (a cancelled campaign's parts), keeping the others' order. */
  removeWhere(unwanted: (item: T) => boolean): number {
    let removed = 0;
    for (const lane of this.lanes.values()) removed += lane.removeWhere(unwanted);
    this.count -= removed;
    return removed;
  }

  /** Empties the queue (shutdown, lost connector), returning everything it held. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.pop(); item; item = this.pop()) out.push(item);
    return out;
  }
}

interface Flow<T> {
  items: T[];
  head: number;
  deficit: number;
  /** Whether this flow already received its quantum for the current turn at the front. */
  credited: boolean;
}

class LaneQueue<T extends Schedulable> {
  private readonly flows = new Map<string, Flow<T>>();
  /** Flows with work, in round-robin order; the first is the one being served. */
  private readonly active: string[] = [];
  size = 0;

  constructor(private readonly quantum: number) {}

  push(item: T): void {
    let flow = this.flows.get(item.flow);
    if (!flow) {
      flow = { items: [], head: 0, deficit: 0, credited: false };
      this.flows.set(item.flow, flow);
      this.active.push(item.flow);
    }
    flow.items.push(item);
    this.size++;
  }

  pushFront(item: T): void {
    const flow = this.flows.get(item.flow);
    if (!flow) {
      this.flows.set(item.flow, { items: [item], head: 0, deficit: 0, credited: false });
      this.active.unshift(item.flow);
    } else {
      let at = flow.head;
      while (at < flow.items.length && (flow.items[at]!.seq ?? 0) < (item.seq ?? 0)) at++;
      if (at === flow.head && flow.head > 0) flow.items[--flow.head] = item;
      else flow.items.splice(at, 0, item);
    }
    this.size++;
  }

  removeWhere(unwanted: (item: T) => boolean): number {
    let removed = 0;
    for (const [name, flow] of this.flows) {
      const kept = flow.items.slice(flow.head).filter((item) => !unwanted(item));
      removed += flow.items.length - flow.head - kept.length;
      if (kept.length > 0) {
        flow.items = kept;
        flow.head = 0;
        continue;
      }
      // Emptied: the flow leaves the round, as when its last item is popped.
      this.flows.delete(name);
      this.active.splice(this.active.indexOf(name), 1);
    }
    this.size -= removed;
    return removed;
  }

  pop(): T | undefined {
    while (this.active.length > 0) {
      const name = this.active[0]!;
      const flow = this.flows.get(name)!;
      if (!flow.credited) {
        flow.deficit += this.quantum;
        flow.credited = true;
      }
      const item = flow.items[flow.head]!;
      if (item.cost <= flow.deficit) {
        flow.deficit -= item.cost;
        flow.head++;
        this.size--;
        if (flow.head === flow.items.length) {
          // An emptied flow leaves the round and forgets its credit (the DRR rule).
          this.flows.delete(name);
          this.active.shift();
        } else if (flow.head >= 1024 && flow.head * 2 >= flow.items.length) {
          flow.items = flow.items.slice(flow.head); // keeps memory bounded for long flows
          flow.head = 0;
        }
        return item;
      }
      // Turn over: the next flow is served; this one keeps its deficit for its next turn.
      flow.credited = false;
      this.active.push(this.active.shift()!);
    }
    return undefined;
  }
}
