import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CarrierSimulator } from '../../src/simulator/simulator.js';
import type { DatabaseKind, TestDatabase } from './databases.js';

/** A fresh database, a simulator and a configuration file, for tests that kill -9 a real server. */
export interface CrashRig {
  db: TestDatabase;
  sim: CarrierSimulator;
  /** The environment of `relais` processes started on the rig. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startCrashRig(
  kind: DatabaseKind,
  o: {
    seed: number;
    binds: number;
    window: number;
    tps: number;
    maxUnrecorded: number;
    /** More lines of the configuration file (top-level sections). */
    yaml?: string[];
  },
): Promise<CrashRig> {
  const db = await kind.create();
  const sim = new CarrierSimulator({ port: 0, receipt_delay_ms: 50, seed: o.seed });
  const { port } = await sim.start();
  const configFile = join(db.dataDir, 'relais.yaml');
  writeFileSync(
    configFile,
    [
      'dispatcher:',
      '  lease_ms: 2000', // a crashed node's leases end quickly on PostgreSQL
      `  max_unrecorded: ${o.maxUnrecorded}`,
      'connectors:',
      '  - name: carrier-a',
      '    host: 127.0.0.1',
      `    port: ${port}`,
      '    system_id: relais',
      '    password: secret',
      `    binds: ${o.binds}`,
      `    window: ${o.window}`,
      `    tps: ${o.tps}`,
      '    reconnect_min_ms: 50',
      ...(o.yaml ?? []),
      '',
    ].join('\n'),
  );
  return {
    db,
    sim,
    env: { RELAIS_DATA_DIR: db.dataDir, DATABASE_URL: db.url, RELAIS_CONFIG: configFile },
    async close() {
      await sim.stop();
      await db.drop();
    },
  };
}
