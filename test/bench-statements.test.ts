import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  formatStatementTimes,
  StatementTimes,
  statementShape,
  timeStatements,
} from '../src/bench/statement-times.js';

describe('SQLite statement times (bench:e2e --statements)', () => {
  it('names a statement by its shape: whitespace collapsed, value lists folded', () => {
    expect(statementShape('insert into t (a, b)\n  values (?, ?), (?, ?), (?,?)')).toBe(
      'insert into t (a, b) values (?…)',
    );
    expect(statementShape('delete from q where id in (?, ?, ?)')).toBe('delete from q where id in (?…)');
    expect(statementShape('select 1')).toBe('select 1');
  });

  it('times the statements of a real connection, and its transactions by their first statement', () => {
    const times = new StatementTimes();
    const undo = timeStatements(Database, times);
    const db = new Database(':memory:');
    try {
      db.prepare('create table t (id integer primary key, v text)').run();
      for (let i = 0; i < 3; i++) {
        db.prepare('begin immediate').run();
        db.prepare('insert into t (v) values (?), (?)').run('a', 'b');
        db.prepare('select count(*) from t').get();
        db.prepare('commit').run();
      }
      db.prepare('begin').run();
      db.prepare('delete from t').run();
      db.prepare('rollback').run();
    } finally {
      db.close();
      undo();
    }
    const { statements, transactions } = times.summary();
    expect(statements.find((s) => s.sql === 'insert into t (v) values (?…)')?.calls).toBe(3);
    expect(statements.find((s) => s.sql === 'select count(*) from t')?.calls).toBe(3);
    expect(transactions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ first: 'insert into t (v) values (?…)', count: 3 }),
        expect.objectContaining({ first: 'delete from t (rolled back)', count: 1 }),
      ]),
    );
    const insertTx = transactions.find((t) => t.count === 3)!;
    expect(insertTx.ms).toBeGreaterThanOrEqual(insertTx.commitMs);
    expect(insertTx.maxMs).toBeGreaterThan(0);

    // Undone: a new connection's statements are not timed any more.
    const after = new Database(':memory:');
    after.prepare('select 2').get();
    after.close();
    expect(times.summary().statements.some((s) => s.sql === 'select 2')).toBe(false);
  });

  it('prints a run’s summaries per message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relais-statements-'));
    try {
      writeFileSync(
        join(dir, 'statements-1.json'),
        JSON.stringify({
          statements: [{ sql: 'commit', calls: 10, ms: 20 }],
          transactions: [{ first: 'insert into m', count: 10, ms: 50, commitMs: 20, maxMs: 9 }],
        }),
      );
      const text = formatStatementTimes(dir, 1000);
      expect(text).toContain('20 ms in all, 20.0 µs/msg');
      expect(text).toMatch(
        /50 ms\s+50\.0 µs\/msg\s+10 × \(commit 2\.00 ms, longest 9\.0 ms\)\s+insert into m/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
