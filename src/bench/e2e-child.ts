import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/**
 * The helper processes of the carrier-path benchmark (the simulator, the webhook receiver): a compiled
 * script of src/bench/ run with `node`, which prints one JSON line `{"ready": true, …}` on stdout once it
 * listens, and stops cleanly on SIGTERM. Small JSON-over-HTTP helpers to talk to them.
 */

export interface Child<Ready> {
  pid: number;
  ready: Ready;
  /** The last lines it wrote, for error reports. */
  output(): string;
  /** SIGTERM (SIGKILL after 10 s); resolves with the exit code or signal. */
  stop(): Promise<number | string | null>;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

export async function startChild<Ready>(script: string, config: unknown): Promise<Child<Ready>> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn(process.execPath, [path, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
  };
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const ready = await new Promise<Ready>((resolve, reject) => {
    let buffer = '';
    let done = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
        keep(line);
        if (!done && line.startsWith('{"ready"')) {
          done = true;
          resolve(JSON.parse(line) as Ready);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) keep(line);
    });
    void exited.then((code) => {
      if (!done) reject(new Error(`${script} exited (${code}) before it was ready:\n${lines.join('\n')}`));
    });
    setTimeout(() => {
      if (done) return;
      child.kill('SIGKILL');
      reject(new Error(`${script} was not ready within 20 s:\n${lines.join('\n')}`));
    }, 20_000).unref();
  });
  return {
    pid: child.pid!,
    ready,
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** A JSON request to a helper (or to Relais); rejects on a non-2xx answer. */
export function httpJson<T>(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: T }> {
  const payload = options.body === undefined ? null : Buffer.from(JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? (payload ? 'POST' : 'GET'),
        agent,
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new Error(`${options.method ?? 'GET'} ${url} answered ${status}: ${text.slice(0, 300)}`));
            return;
          }
          try {
            resolve({ status, body: (text ? JSON.parse(text) : null) as T });
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

/**
 * How far a helper's clock (`GET /clock` → `{"now": wall ms}`) is ahead of ours: the sample with the
 * shortest round trip, taking its midpoint. Returns the offset and its uncertainty (half that round trip).
 */
export async function clockOffset(url: string, samples = 25): Promise<{ offsetMs: number; errorMs: number }> {
  let best = { offsetMs: 0, errorMs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < samples; i++) {
    const sent = wallNow();
    const { body } = await httpJson<{ now: number }>(url);
    const received = wallNow();
    const rtt = received - sent;
    if (rtt / 2 < best.errorMs) best = { offsetMs: body.now - (sent + received) / 2, errorMs: rtt / 2 };
  }
  return best;
}

export function destroyAgent(): void {
  agent.destroy();
}
