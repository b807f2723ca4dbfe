import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Where SQLite's time goes, statement by statement and transaction by transaction: what
 * `npm run bench:e2e -- --statements` prints (statement-timer.ts loads this into Relais).
 *
 * Why by hand: a CPU profile charges every statement to one Kysely function, and SQLite has no
 * per-statement counters (PostgreSQL has pg_stat_statements). The timer wraps better-sqlite3's
 * run/all/get/iterate with two clock readings each, so its numbers include a little of its own cost.
 */
export interface StatementTimesSummary {
  /** By statement text (value lists folded), costliest first. */
  statements: { sql: string; calls: number; ms: number }[];
  /**
   * By transaction, named after its first statement: wall time from BEGIN to the end of COMMIT
   * (including the JavaScript between statements), and the COMMIT alone.
   */
  transactions: { first: string; count: number; ms: number; commitMs: number; maxMs: number }[];
}

/** SQL text with whitespace collapsed and value lists folded: one entry per statement shape. */
export function statementShape(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\((?:\?, ?)*\?\)(?:, ?\((?:\?, ?)*\?\))*/g, '(?…)')
    .slice(0, 140);
}

export class StatementTimes {
  private readonly statements = new Map<string, { calls: number; us: number }>();
  private readonly transactions = new Map<
    string,
    { count: number; us: number; commitUs: number; maxUs: number }
  >();
  private open: { startedAt: number; first: string | null } | null = null;

  /** One statement, `startedAt` and `us` on the performance.now() clock in µs. */
  record(sql: string, startedAt: number, us: number): void {
    const shape = statementShape(sql);
    const s = this.statements.get(shape) ?? { calls: 0, us: 0 };
    s.calls++;
    s.us += us;
    this.statements.set(shape, s);
    const ends = /^(commit|rollback)\b/i.exec(shape)?.[1]?.toLowerCase();
    if (/^begin\b/i.test(shape)) {
      this.open = { startedAt, first: null };
    } else if (ends) {
      if (!this.open) return;
      const first = `${this.open.first ?? '(empty)'}${ends === 'rollback' ? ' (rolled back)' : ''}`;
      const t = this.transactions.get(first) ?? { count: 0, us: 0, commitUs: 0, maxUs: 0 };
      const total = startedAt + us - this.open.startedAt;
      t.count++;
      t.us += total;
      t.commitUs += us;
      t.maxUs = Math.max(t.maxUs, total);
      this.transactions.set(first, t);
      this.open = null;
    } else if (this.open && this.open.first === null) {
      this.open.first = shape.slice(0, 60);
    }
  }

  summary(): StatementTimesSummary {
    return {
      statements: [...this.statements]
        .map(([sql, s]) => ({ sql, calls: s.calls, ms: s.us / 1000 }))
        .sort((a, b) => b.ms - a.ms),
      transactions: [...this.transactions]
        .map(([first, t]) => ({
          first,
          count: t.count,
          ms: t.us / 1000,
          commitMs: t.commitUs / 1000,
          maxMs: t.maxUs / 1000,
        }))
        .sort((a, b) => b.ms - a.ms),
    };
  }
}

type StatementMethod = 'run' | 'all' | 'get' | 'iterate';
const METHODS: StatementMethod[] = ['run', 'all', 'get', 'iterate'];

/**
 * Times every statement of `Database` (better-sqlite3's class) into `times`, and returns what undoes
 * it. Statements are native objects: their prototype is reached through the first one prepared.
 */
export function timeStatements(Database: typeof BetterSqlite3, times: StatementTimes): () => void {
  const prepare = Database.prototype.prepare;
  const undo: (() => void)[] = [() => (Database.prototype.prepare = prepare)];
  let wrapped = false;
  Database.prototype.prepare = function (this: BetterSqlite3.Database, source: string) {
    const stmt = prepare.call(this, source);
    if (!wrapped) {
      wrapped = true;
      const proto = Object.getPrototypeOf(stmt) as Record<StatementMethod, (...args: unknown[]) => unknown>;
      for (const name of METHODS) {
        const original = proto[name];
        undo.push(() => (proto[name] = original));
        proto[name] = function (this: BetterSqlite3.Statement, ...args: unknown[]) {
          const startedAt = performance.now();
          try {
            return original.apply(this, args);
          } finally {
            times.record(this.source, startedAt * 1000, (performance.now() - startedAt) * 1000);
          }
        };
      }
    }
    return stmt;
  } as typeof prepare;
  return () => {
    for (const step of undo.reverse()) step();
  };
}

/** The summaries a run's timer wrote in `dir` (one file per Relais process), as text. */
export function formatStatementTimes(dir: string, perMessages: number): string {
  const lines: string[] = [];
  const per = (ms: number) => `${((ms * 1000) / perMessages).toFixed(1)} µs/msg`;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const s = JSON.parse(readFileSync(join(dir, file), 'utf8')) as StatementTimesSummary;
    const total = s.statements.reduce((sum, x) => sum + x.ms, 0);
    lines.push(`SQLite statements (${file}): ${total.toFixed(0)} ms in all, ${per(total)}`);
    for (const x of s.statements.slice(0, 20))
      lines.push(
        `  ${x.ms.toFixed(0).padStart(7)} ms ${per(x.ms).padStart(14)} ${String(x.calls).padStart(8)} calls  ${x.sql}`,
      );
    lines.push('transactions, by their first statement (BEGIN to the end of COMMIT, JavaScript included):');
    for (const t of s.transactions.slice(0, 12))
      lines.push(
        `  ${t.ms.toFixed(0).padStart(7)} ms ${per(t.ms).padStart(14)} ${String(t.count).padStart(8)} × ` +
          `(commit ${(t.commitMs / t.count).toFixed(2)} ms, longest ${t.maxMs.toFixed(1)} ms)  ${t.first}`,
      );
  }
  return lines.join('\n');
}
