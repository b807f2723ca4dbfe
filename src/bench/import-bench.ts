import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BenchDatabase, postgresDatabase, sqliteDatabase } from './databases.js';
import { cpuSeconds, peakRssBytes } from './proc.js';
import { createTenant, freePort, relaisEnv, startRelais } from './server.js';

/**
 * CSV import benchmark: a generated file of N contacts (~1% invalid numbers, ~1% repeated numbers,
 * a tenth in national format) is uploaded over HTTP to a Relais process started as a user runs it,
 * and GET /v1/imports/{id} is polled until the import is done.
 *
 *   npm run build && node dist/bench/import-bench.js --db sqlite --rows 1000000 [--chunk-rows N]
 */

export interface ImportBenchOptions {
  db: 'sqlite' | 'postgres';
  rows: number;
  /** `imports.chunk_rows` of the Relais under test (default: its default). */
  chunkRows?: number;
  /** Write V8 CPU profiles of Relais (every thread) into this directory. */
  profileDir?: string;
  log?: (line: string) => void;
}

export interface ImportBenchResult {
  db: 'sqlite' | 'postgres';
  rows: number;
  fileBytes: number;
  uploadSeconds: number;
  processingSeconds: number;
  /** Data rows per second of background processing (after the 202). */
  rowsPerSecond: number;
  /**
   * CPU seconds the Relais process (all its threads) spent while processing: on a busy machine the
   * wall-clock rate understates what an idle one does, this does not.
   */
  cpuSeconds: number;
  /** Peak resident memory of the Relais process over its whole life (VmHWM). */
  peakRssMiB: number;
  counts: { total: number; imported: number; invalid: number; duplicates: number };
}

interface ImportView {
  id: string;
  status: 'running' | 'completed' | 'failed';
  total: number;
  imported: number;
  invalid: number;
  duplicates: number;
  error: string | null;
  completed_at: string | null;
}

/** Writes the CSV; returns its size. Streams it: a million rows never sit in memory. */
async function generateCsv(path: string, rows: number): Promise<number> {
  const out = createWriteStream(path);
  let failed: Error | null = null;
  out.on('error', (err) => {
    failed = err;
  });
  const write = async (text: string) => {
    if (failed) throw failed;
    if (!out.write(text)) await once(out, 'drain');
  };
  await write('phone,first_name,last_name,city,plan\n');
  const cities = ['Paris', 'Lyon', 'Marseille', 'Lille', 'Nantes'];
  let batch = '';
  for (let i = 0; i < rows; i++) {
    const n = 10_000_000 + i;
    let phone: string;
    if (i % 100 === 37)
      phone = `12${i}`; // invalid: too short, no country
    else if (i % 100 === 71 && i > 100)
      phone = `+336${10_000_000 + i - 50}`; // a number seen 50 rows earlier
    else if (i % 10 === 3)
      phone = `06 ${String(n).replace(/(\d{2})(?=\d)/g, '$1 ')}`; // national format
    else phone = `+336${n}`;
    batch += `${phone},First${i},Last${i % 997},${cities[i % 5]},${i % 3 === 0 ? 'gold' : 'basic'}\n`;
    if (batch.length > 256 * 1024) {
      await write(batch);
      batch = '';
    }
  }
  await write(batch);
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  return statSync(path).size;
}

function httpJson<T>(
  method: string,
  url: string,
  apiKey: string,
  body?: { path: string; type: string },
): Promise<{ status: number; json: T }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
    if (body) {
      headers['content-type'] = body.type;
      headers['content-length'] = String(statSync(body.path).size);
    } else if (method === 'POST') headers['content-type'] = 'application/json';
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as T });
        } catch {
          reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
        }
      });
    });
    req.on('error', reject);
    if (body) createReadStream(body.path).pipe(req);
    else if (method === 'POST') req.end(JSON.stringify({ name: 'Bench list' }));
    else req.end();
  });
}

export async function runImportBench(options: ImportBenchOptions): Promise<ImportBenchResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const work = mkdtempSync(join(tmpdir(), 'relais-import-bench-'));
  let db: BenchDatabase | undefined;
  let relais: Awaited<ReturnType<typeof startRelais>> | undefined;
  try {
    const csvPath = join(work, 'contacts.csv');
    const fileBytes = await generateCsv(csvPath, options.rows);
    log(
      `import-bench: ${options.rows.toLocaleString('en-US')} rows, ${(fileBytes / 1024 ** 2).toFixed(1)} MiB`,
    );
    db = options.db === 'postgres' ? await postgresDatabase() : sqliteDatabase();
    const configFile = join(db.dataDir, 'bench-import.yaml');
    const chunk = options.chunkRows ? `imports:\n  chunk_rows: ${options.chunkRows}\n` : '';
    writeFileSync(
      configFile,
      `# written by the import benchmark: no carrier needed\nsimulator:\n  enabled: never\n${chunk}`,
    );
    const port = await freePort();
    const env = relaisEnv({ dataDir: db.dataDir, databaseUrl: db.databaseUrl, port, configFile });
    const { apiKey } = await createTenant(env, 'Bench');
    relais = await startRelais(
      env,
      port,
      options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [],
    );
    const base = relais.baseUrl;
    const list = await httpJson<{ id: string }>('POST', `${base}/v1/lists`, apiKey);
    const started = Date.now();
    const upload = await httpJson<ImportView>(
      'POST',
      `${base}/v1/lists/${list.json.id}/import?default_country=FR`,
      apiKey,
      { path: csvPath, type: 'text/csv' },
    );
    const accepted = Date.now();
    const cpuBefore = cpuSeconds(relais.pid);
    if (upload.status !== 202)
      throw new Error(`upload answered ${upload.status}: ${JSON.stringify(upload.json)}`);
    let peak = peakRssBytes(relais.pid);
    let view = upload.json;
    let lastLog = accepted;
    while (view.status === 'running') {
      await new Promise((r) => setTimeout(r, 100));
      view = (await httpJson<ImportView>('GET', `${base}/v1/imports/${view.id}`, apiKey)).json;
      peak = Math.max(peak, peakRssBytes(relais.pid));
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`  … ${view.total.toLocaleString('en-US')} rows`);
      }
    }
    const cpu = cpuSeconds(relais.pid) - cpuBefore;
    if (view.status !== 'completed') throw new Error(`import ${view.status}: ${view.error}`);
    const finished = view.completed_at ? Date.parse(view.completed_at) : Date.now();
    const processingSeconds = Math.max(0.001, (finished - accepted) / 1000);
    const result: ImportBenchResult = {
      db: options.db,
      rows: options.rows,
      fileBytes,
      uploadSeconds: (accepted - started) / 1000,
      processingSeconds,
      rowsPerSecond: Math.round(view.total / processingSeconds),
      cpuSeconds: Math.round(cpu * 100) / 100,
      peakRssMiB: Math.round((peak / 1024 ** 2) * 10) / 10,
      counts: {
        total: view.total,
        imported: view.imported,
        invalid: view.invalid,
        duplicates: view.duplicates,
      },
    };
    log(
      `import-bench ${result.db}: ${result.rowsPerSecond.toLocaleString('en-US')} rows/s ` +
        `(processing ${result.processingSeconds.toFixed(2)} s, upload ${result.uploadSeconds.toFixed(2)} s), ` +
        `CPU ${result.cpuSeconds} s (${Math.round((result.cpuSeconds * 1e6) / Math.max(1, result.rows))} µs/row), ` +
        `peak RSS ${result.peakRssMiB} MiB, counts ${JSON.stringify(result.counts)}`,
    );
    return result;
  } catch (err) {
    if (relais) log(`--- relais output (last lines) ---\n${relais.output()}`);
    throw err;
  } finally {
    await relais?.stop('SIGTERM');
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  }
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dbArg = argValue('--db') ?? 'sqlite';
  const rows = Number(argValue('--rows') ?? 1_000_000);
  if ((dbArg !== 'sqlite' && dbArg !== 'postgres') || !Number.isInteger(rows) || rows < 1) {
    process.stderr.write('usage: node dist/bench/import-bench.js [--db sqlite|postgres] [--rows N]\n');
    process.exit(2);
  }
  const chunkRows = argValue('--chunk-rows');
  const profileDir = argValue('--profile');
  runImportBench({
    db: dbArg,
    rows,
    ...(chunkRows ? { chunkRows: Number(chunkRows) } : {}),
    ...(profileDir ? { profileDir } : {}),
  }).catch((err) => {
    process.stderr.write(`import-bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
