import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { openStore } from '../src/store/store.js';
import { databaseKinds, type TestDatabase } from './helpers/databases.js';
import { runCli, startServerProcess } from './helpers/server-process.js';

/**
 * "Nothing acknowledged is ever lost": a real server process is killed with SIGKILL while requests
 * are in flight; every message that got a 202 must be in the database afterwards.
 */
describe.each(databaseKinds)('group-committed durability on $name', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await kind.create();
  });
  afterAll(() => db.drop());

  it('loses none of the acknowledged messages on kill -9 right after the 202s', async () => {
    const env = { RELAIS_DATA_DIR: db.dataDir, DATABASE_URL: db.url };
    const created = runCli(['tenant', 'create', '--name', 'Durable'], env);
    expect(created.status).toBe(0);
    const apiKey = JSON.parse(created.stdout).api_key as string;
    const server = await startServerProcess(env);

    const acknowledged: string[] = [];
    const post = async (path: string, body: unknown) => {
      try {
        const res = await fetch(`${server.baseUrl}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        if (res.status !== 202) return;
        const json = (await res.json()) as { id?: string; results?: { message?: { id: string } }[] };
        if (json.id) acknowledged.push(json.id);
        for (const r of json.results ?? []) if (r.message) acknowledged.push(r.message.id);
      } catch {
        // In flight when the process died: never acknowledged, so it may be lost.
      }
    };
    const message = (i: number) => ({
      to: `+336${String(10_000_000 + i).slice(-8)}`,
      from: 'Durable',
      text: `m${i}`,
    });

    // Keep many requests in flight, singles and batches, and kill the server mid-stream.
    let i = 0;
    const writers = Array.from({ length: 32 }, async (_, w) => {
      while (server.child.exitCode === null && server.child.signalCode === null) {
        if (w % 4 === 0)
          await post('/v1/messages/batch', { messages: Array.from({ length: 50 }, () => message(i++)) });
        else await post('/v1/messages', message(i++));
      }
    });
    while (acknowledged.length < 1500) await new Promise((r) => setTimeout(r, 5));
    server.child.kill('SIGKILL');
    await Promise.all(writers);
    expect(await server.exited).toBe('SIGKILL');

    const config = parseConfig({ data_dir: db.dataDir, database_url: db.url, log: { level: 'silent' } });
    const store = openStore(config);
    try {
      const found = new Set<string>();
      for (let k = 0; k < acknowledged.length; k += 500) {
        // Each one is stored, and is either still queued or already went on (the built-in
        // simulator takes messages as they come).
        const rows = await store.db
          .selectFrom('messages')
          .leftJoin('queue', 'queue.message_id', 'messages.id')
          .select(['messages.id', 'messages.status', 'queue.message_id as queued'])
          .where('messages.id', 'in', acknowledged.slice(k, k + 500))
          .execute();
        for (const r of rows) if (r.queued !== null || r.status !== 'accepted') found.add(r.id);
      }
      const lost = acknowledged.filter((id) => !found.has(id));
      expect(acknowledged.length).toBeGreaterThanOrEqual(1500);
      expect(lost).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});
