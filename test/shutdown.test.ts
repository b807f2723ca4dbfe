import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { runCli, type ServerProcess, startServerProcess } from './helpers/server-process.js';

/** SIGTERM under load: intake stops, in-flight work finishes or is handed back, nothing acknowledged is lost. */
describe.each(databaseKinds)('graceful shutdown on $name', (kind) => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let apiKey: string;
  beforeAll(async () => {
    db = await kind.create();
    env = { RELAIS_DATA_DIR: db.dataDir, DATABASE_URL: db.url };
    apiKey = JSON.parse(runCli(['tenant', 'create', '--name', 'Shutdown'], env).stdout).api_key as string;
  });
  afterAll(() => db.drop());

  async function loadUntilSignal(server: ServerProcess, signal: () => void, acknowledged: string[]) {
    let n = 0;
    const writers = Array.from({ length: 8 }, async () => {
      for (;;) {
        try {
          const res = await fetch(`${server.baseUrl}/v1/messages/batch`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              messages: Array.from({ length: 50 }, () => ({
                to: '+33612345678',
                from: 'Stop',
                text: `s${n++}`,
              })),
            }),
          });
          if (res.status !== 202) return;
          const body = (await res.json()) as { results: { message: { id: string } }[] };
          acknowledged.push(...body.results.map((r) => r.message.id));
        } catch {
          return; // the server stopped listening
        }
      }
    });
    while (acknowledged.length < 1000) await new Promise((r) => setTimeout(r, 5));
    signal();
    await Promise.all(writers);
  }

  async function missing(ids: string[]): Promise<string[]> {
    const store = openStore(parseConfig({ data_dir: db.dataDir, database_url: db.url }));
    try {
      const found = new Set<string>();
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await store.db
          .selectFrom('messages')
          .select('id')
          .where('id', 'in', ids.slice(i, i + 500))
          .execute();
        for (const r of rows) found.add(r.id);
      }
      return ids.filter((id) => !found.has(id));
    } finally {
      await store.close();
    }
  }

  it('exits 0 on SIGTERM with every acknowledged message stored, and a restart sends them all on', async () => {
    const server = await startServerProcess(env);
    const acknowledged: string[] = [];
    const t0 = Date.now();
    await loadUntilSignal(server, () => server.child.kill('SIGTERM'), acknowledged);
    expect(await server.exited).toBe(0);
    console.log(`${kind.name}: ${acknowledged.length} acknowledged, shutdown+load ${Date.now() - t0} ms`);
    expect(await missing(acknowledged)).toEqual([]);
    const again = await startServerProcess(env);
    const store = openStore(parseConfig({ data_dir: db.dataDir, database_url: db.url }));
    try {
      const deadline = Date.now() + 60_000;
      // Every message goes on to the carrier: none is left queued. (Receipts of messages submitted
      // before the stop may never come: the built-in simulator went down with the process.)
      for (;;) {
        const left = await store.db
          .selectFrom('messages')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', 'not in', ['submitted', 'delivered'])
          .executeTakeFirstOrThrow();
        const queued = await store.db
          .selectFrom('queue')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        if (Number(left.n) === 0 && Number(queued.n) === 0) break;
        if (Date.now() > deadline) throw new Error(`${left.n} messages never sent after the restart`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await store.close();
      again.child.kill('SIGTERM');
      expect(await again.exited).toBe(0);
    }
  }, 120_000);

  it('exits at once on a second signal, still losing nothing acknowledged', async () => {
    const server = await startServerProcess({ ...env, RELAIS_LOG_LEVEL: 'info' });
    const acknowledged: string[] = [];
    await loadUntilSignal(
      server,
      () => {
        server.child.kill('SIGTERM');
        // Standard signals do not queue: the second is sent once the first is being handled.
        const second = setInterval(() => {
          if (server.output().includes('"shutting down"')) {
            clearInterval(second);
            server.child.kill('SIGTERM');
          }
        }, 1);
      },
      acknowledged,
    );
    expect(await server.exited).toBe(130);
    expect(await missing(acknowledged)).toEqual([]);
  }, 120_000);
});
