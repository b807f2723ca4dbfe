import { Worker } from 'node:worker_threads';

/** What a request thread's script receives, and answers with the same id. */
export interface ThreadRequest<Req> {
  id: number;
  req: Req;
}

export interface ThreadReply<Res> {
  id: number;
  res: Res;
}

/**
 * Requests answered by a worker thread running `script`, which posts one ThreadReply per
 * ThreadRequest. The thread starts at the first request, keeps the process alive only while
 * requests are in flight, and is replaced at the next request if it fails or exits. The requests it
 * held then get `lost(req, reason)`: an answer made on this side (or an error, if it throws).
 */
export class RequestThread<Req, Res> {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { req: Req; resolve: (res: Res) => void; reject: (err: unknown) => void }
  >();

  constructor(
    private readonly script: URL,
    private readonly name: string,
    private readonly lost: (req: Req, reason: string) => Res,
    /** Given to the script as `workerData`. */
    private readonly workerData?: unknown,
  ) {}

  request(req: Req): Promise<Res> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise<Res>((resolve, reject) => {
      this.pending.set(id, { req, resolve, reject });
      worker.postMessage({ id, req } satisfies ThreadRequest<Req>);
    });
  }

  /** A message to the script that is not a request: it gets no answer of its own. */
  notify(message: object): void {
    this.worker?.postMessage(message);
  }

  /** Ends the thread; requests still on it get `lost`. */
  async close(reason: string): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
    this.loseAll(reason);
  }

  private spawn(): Worker {
    const worker = new Worker(this.script, { workerData: this.workerData });
    // Only requests in flight keep the process alive.
    worker.unref();
    worker.on('message', ({ id, res }: ThreadReply<Res>) => {
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      entry.resolve(res);
    });
    const gone = (reason: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.loseAll(reason);
    };
    worker.on('error', (err) => gone(`${this.name} thread failed: ${err.message}`));
    worker.on('exit', (code) => gone(`${this.name} thread exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private loseAll(reason: string): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const { req, resolve, reject } of entries) {
      try {
        resolve(this.lost(req, reason));
      } catch (err) {
        reject(err);
      }
    }
  }
}
