// One timer for everything the simulator does later (delayed responses, receipts, redeliveries): a
// binary min-heap ordered by due time, then by insertion, with a single setTimeout armed for the
// earliest entry. 200,000 pending receipts cost 200,000 small objects and O(log n) per insert, not
// 200,000 Node timers. hold() freezes it (a stalled carrier answers nothing).

interface Entry {
  due: number;
  seq: number;
  fn: (arg: never) => void;
  arg: unknown;
}

/** Entries due within this many ms of now run in the current pass (timers fire late by ~1 ms anyway). */
const SLACK_MS = 1;

export class Scheduler {
  private readonly heap: Entry[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Number.POSITIVE_INFINITY;
  private heldUntil = 0;

  constructor(
    private readonly now: () => number,
    /** Called with whatever an entry throws, so one bad entry cannot stop the others. */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Runs fn(arg) at `due` (same clock as `now`), after everything already due at that time. */
  at<T>(due: number, fn: (arg: T) => void, arg: T): void {
    const entry: Entry = { due, seq: this.seq++, fn: fn as (arg: never) => void, arg };
    const heap = this.heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
    if (i === 0) this.arm();
  }

  /** Nothing runs before `until`; entries due meanwhile run, in order, right after. */
  hold(until: number): void {
    this.heldUntil = Math.max(this.heldUntil, until);
    this.arm();
  }

  get held(): boolean {
    return this.heldUntil > this.now();
  }

  clear(): void {
    this.heap.length = 0;
    this.heldUntil = 0;
    this.disarm();
  }

  private arm(): void {
    if (this.heap.length === 0) {
      this.disarm();
      return;
    }
    const target = Math.max(this.heap[0]!.due, this.heldUntil);
    if (this.timer && this.armedFor <= target) return;
    this.disarm();
    this.armedFor = target;
    this.timer = setTimeout(() => this.fire(), Math.max(0, target - this.now()));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.now();
    if (now >= this.heldUntil) {
      const limit = now + SLACK_MS;
      while (this.heap.length > 0 && this.heap[0]!.due <= limit && this.heldUntil <= now) {
        const entry = this.pop();
        try {
          (entry.fn as (arg: unknown) => void)(entry.arg);
        } catch (err) {
          this.onError(err);
        }
      }
    }
    this.arm();
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
        if (!before(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
