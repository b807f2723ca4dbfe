import { z } from 'zod';
import { routeSchema, smppConnectorSchema } from '../carriers/config.js';

/** A Verify rate limit: at most `limit` SMS per fixed window (`limit: 0` turns it off). */
const verifyWindow = (limit: number, windowSeconds: number) =>
  z
    .object({
      limit: z.number().int().min(0).default(limit),
      window_seconds: z.number().int().min(1).max(86_400).default(windowSeconds),
    })
    .strict()
    .prefault({});

/**
 * Every configuration key Relais understands. docs/configuration.md mirrors this file; keep them in step.
 * Unknown keys are errors (a typo must not silently fall back to a default).
 */
export const configSchema = z
  .object({
    data_dir: z.string().min(1).default('./data'),
    /** sqlite:PATH or postgres://… ; empty means SQLite at DATA_DIR/relais.db. */
    database_url: z.string().min(1).optional(),
    http: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        body_limit_bytes: z
          .number()
          .int()
          .min(1024)
          .default(5 * 1024 * 1024),
        /** Behind a reverse proxy, trust X-Forwarded-* headers. */
        trust_proxy: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** JSON lines to this file (relative: under data_dir), rotated; absent: stdout. */
        file: z.string().min(1).optional(),
        max_file_bytes: z
          .number()
          .int()
          .min(1024)
          .default(50 * 1024 * 1024),
        /** Files kept, the one being written included. */
        max_files: z.number().int().min(2).max(1000).default(10),
        /** All log files together, the one being written included. */
        max_total_bytes: z
          .number()
          .int()
          .min(2048)
          .default(500 * 1024 * 1024),
      })
      .strict()
      .refine((log) => log.max_total_bytes >= 2 * log.max_file_bytes, {
        message: 'max_total_bytes must be at least twice max_file_bytes (the file being written plus one)',
        path: ['max_total_bytes'],
      })
      .prefault({}),
    sqlite: z
      .object({
        /** FULL fsyncs the WAL on every commit (power-loss safe); NORMAL survives process crashes only. */
        synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
        busy_timeout_ms: z.number().int().min(0).default(5000),
        /** Page cache of the connection, MiB (SQLite's default is 2). */
        cache_mib: z.number().int().min(2).max(16_384).default(32),
      })
      .strict()
      .prefault({}),
    postgres: z
      .object({
        pool_size: z.number().int().min(1).max(200).default(10),
        /** Connections kept apart for otp/transactional intake and claims (never behind bulk work). */
        urgent_pool_size: z.number().int().min(1).max(20).default(2),
        /**
         * Housekeeping vacuums a table once it holds this many dead rows (plus a tenth of its live
         * ones), whether or not autovacuum is on: the queue churns a row per message. 0 turns it off.
         */
        vacuum_min_dead_rows: z.number().int().min(0).default(2000),
      })
      .strict()
      .prefault({}),
    messages: z
      .object({
        max_segments: z.number().int().min(1).max(255).default(10),
        default_validity_minutes: z
          .number()
          .int()
          .min(1)
          .default(48 * 60),
        max_validity_minutes: z
          .number()
          .int()
          .min(1)
          .default(7 * 24 * 60),
        /** At most 1,000: the API schema caps a batch there. */
        batch_max_items: z.number().int().min(1).max(1000).default(1000),
        /** How long an Idempotency-Key is remembered. */
        idempotency_ttl_hours: z.number().int().min(1).default(24),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        allow_private_targets: z.boolean().default(false),
        timeout_ms: z.number().int().min(100).default(10_000),
        retry_for_hours: z.number().min(0).default(24),
        concurrency: z.number().int().min(1).max(1000).default(32),
        poll_interval_ms: z.number().int().min(10).default(500),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** Bearer token for GET /metrics; without one, /metrics answers only to the local machine. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        /** Bearer token of the operator API (/admin/…); without one that API is off. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
    /** Free-space watch on the data, log and backup volumes (docs/deployment.md, "Disk filling"). */
    disk_guard: z
      .object({
        enabled: z.boolean().default(true),
        interval_ms: z.number().int().min(100).default(5000),
        /** Below either warning threshold: a log line and relais_disk_state 1. 0 turns a threshold off. */
        warn_free_bytes: z
          .number()
          .int()
          .min(0)
          .default(2 * 1024 ** 3),
        warn_free_percent: z.number().min(0).max(100).default(10),
        /** Below either critical threshold: bulk intake is refused (507), otp/transactional go on. */
        critical_free_bytes: z
          .number()
          .int()
          .min(0)
          .default(512 * 1024 ** 2),
        critical_free_percent: z.number().min(0).max(100).default(5),
        /** A state is left only once free space is this much above its threshold (no flapping). */
        hysteresis_percent: z.number().min(0).max(100).default(10),
      })
      .strict()
      .refine(
        (g) => g.critical_free_bytes <= g.warn_free_bytes && g.critical_free_percent <= g.warn_free_percent,
        {
          message: 'critical thresholds must not exceed the warning thresholds',
          path: ['critical_free_bytes'],
        },
      )
      .prefault({}),
    backup: z
      .object({
        /** Backups made by the running server; absent: none (use `relais backup` from cron). */
        schedule: z
          .object({
            /** Hours between backups (fractions allowed, at least one second). */
            interval_hours: z
              .number()
              .min(1 / 3600)
              .default(24),
            /** Directory of the backups (relative: under data_dir). */
            to: z.string().min(1),
            /** Scheduled backups kept in `to`, newest first; older ones it made are deleted. */
            keep: z.number().int().min(1).max(1000).default(7),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /** Carrier connections. None configured: the built-in simulator is started and routed to. */
    connectors: z.array(smppConnectorSchema).default([]),
    /** Ordered routing table, first match wins; a route without `match` is the default. */
    routes: z.array(routeSchema).default([]),
    dispatcher: z
      .object({
        /** How long a claim on queued work lasts without renewal (a crashed node's work waits this long). */
        lease_ms: z.number().int().min(1000).default(30_000),
        /** Work held in memory per connector, in seconds of its TPS. */
        buffer_seconds: z.number().min(0.05).max(10).default(1),
        /**
         * At most this many parts held per connector, whatever its TPS. Held work stays leased at the
         * head of the queue, where every claim has to step over it.
         */
        max_buffered_parts: z.number().int().min(100).default(5000),
        /**
         * Parts accepted by carriers but not yet recorded, at most; submitting pauses beyond. After a
         * crash these (plus the submits in flight) are sent again: this bounds the duplicates.
         */
        max_unrecorded: z.number().int().min(1).default(200),
        /**
         * How often the dispatcher looks for work nobody told it about: scheduled or retried messages
         * coming due, another node's leases running out. New intake and a half-used buffer wake it at once.
         */
        poll_ms: z.number().int().min(10).max(60_000).default(250),
      })
      .strict()
      .prefault({}),
    /** The Verify API (docs/verify.md). */
    verify: z
      .object({
        /**
         * Secret (≥ 32 characters) from which the keys sealing verification texts and hashing codes are
         * derived. Absent: generated once into DATA_DIR/verify.key. Every node of a cluster must share it.
         */
        sealing_key: z.string().min(32).optional(),
        default_locale: z.enum(['en', 'fr']).default('en'),
        default_from: z.string().min(1).default('Verify'),
        max_attempts: z.number().int().min(1).max(20).default(5),
        resend_cooldown_seconds: z.number().int().min(0).max(3600).default(30),
        max_resends: z.number().int().min(0).max(20).default(3),
        /** Finished verifications are deleted this long after their expiry. */
        purge_after_hours: z.number().min(0).default(168),
        rate_limits: z
          .object({
            per_number: verifyWindow(5, 600),
            per_tenant: verifyWindow(1200, 60),
            per_api_key: verifyWindow(1200, 60),
          })
          .strict()
          .prefault({}),
        velocity: z
          .object({
            prefix_digits: z.number().int().min(1).max(15).default(6),
            threshold_per_minute: z.number().int().min(1).default(30),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** CSV imports into contact lists (docs/contacts.md). */
    imports: z
      .object({
        /** Largest CSV upload; larger ones are refused with 413 import_too_large. */
        max_bytes: z
          .number()
          .int()
          .min(1024)
          .default(200 * 1024 * 1024),
        /**
         * Rows written per transaction: contacts, memberships, errors and progress commit together.
         * On SQLite a transaction holds the one connection: ~1,000 rows keep it under ~20 ms.
         */
        chunk_rows: z.number().int().min(10).max(20_000).default(1000),
        /**
         * At start, a `running` import whose spool file is gone is marked failed once it has made no
         * progress for this long (another PostgreSQL node may still be running it).
         */
        orphan_after_seconds: z.number().int().min(0).default(120),
      })
      .strict()
      .prefault({}),
    /** Mobile-originated messages and opt-out keywords (docs/inbound.md). */
    inbound: z
      .object({
        /** First words that opt the sender out of the tenant's bulk messages (case and accents ignored). */
        stop_keywords: z
          .array(z.string().min(1).max(32))
          .min(1)
          .default(['STOP', 'STOPP', 'ARRET', 'UNSUBSCRIBE']),
        /** First words that opt the sender back in. */
        start_keywords: z.array(z.string().min(1).max(32)).default(['START', 'UNSTOP']),
        /** Country for senders given in national format (no +/00 and not a valid international number). */
        default_country: z.string().length(2).optional(),
        /** An identical MO (same numbers and text) within this window is a carrier redelivery: stored once. */
        dedupe_seconds: z.number().int().min(0).max(86_400).default(300),
        /** Parts of a long MO whose other parts never arrived are dropped after this long. */
        part_ttl_hours: z.number().min(1).max(720).default(24),
      })
      .strict()
      .prefault({}),
    /** Campaigns (docs/campaigns.md): how the runner expands recipients into queued messages. */
    campaigns: z
      .object({
        /** Seconds of a campaign's pace kept queued at most: the rest stays a cursor over its lists. */
        queue_seconds: z.number().min(0.5).max(60).default(2),
        /** How often the runner tops campaigns up and starts scheduled ones. */
        tick_ms: z.number().int().min(10).max(10_000).default(100),
        /** Recipients read per list in one expansion page (one transaction). */
        page_size: z.number().int().min(1).max(5000).default(100),
        /** Pages per campaign per tick at most, so one campaign cannot hold the runner. */
        max_pages_per_tick: z.number().int().min(1).max(1000).default(20),
      })
      .strict()
      .prefault({}),
    /** History retention (docs/retention.md): how long messages and their traces are kept. */
    retention: z
      .object({
        /** Messages, their parts, events, webhook events and attempts, inbound messages; fractions allowed. */
        messages_days: z
          .number()
          .min(1 / 1440)
          .default(30),
        /** Message bodies (and inbound texts) are blanked after this long; absent: kept with the rest. */
        redact_bodies_after_days: z
          .number()
          .min(1 / 1440)
          .optional(),
        /** Hourly statistics rollups (stats_hourly). */
        rollups_days: z
          .number()
          .min(1 / 1440)
          .default(400),
        /** PostgreSQL: width of one history partition (24 = daily). Shorter only for tests and soaks. */
        partition_hours: z
          .number()
          .min(1 / 60)
          .max(24 * 7)
          .default(24),
        /** PostgreSQL: partitions are created this far ahead of the clock. */
        partitions_ahead_days: z.number().min(0).max(31).default(3),
        /** Rows removed (or redacted) per write transaction; SQLite holds the event loop that long (docs/retention.md#measured). */
        chunk_size: z.number().int().min(1).max(10_000).default(500),
        /** Full chunks per housekeeping pass and per kind of work: bounds each pass. */
        max_chunks_per_pass: z.number().int().min(1).default(400),
        /** Pause between two chunks so the hot path gets the write lock in between. */
        pause_ms: z.number().int().min(0).max(1000).default(5),
        /** SQLite: pages returned to the file system per incremental-vacuum step (one short write). */
        vacuum_pages_per_step: z.number().int().min(1).default(256),
      })
      .strict()
      .refine(
        (r) => r.redact_bodies_after_days === undefined || r.redact_bodies_after_days <= r.messages_days,
        {
          message: 'redact_bodies_after_days must not exceed messages_days',
          path: ['redact_bodies_after_days'],
        },
      )
      .refine((r) => (r.partitions_ahead_days * 24) / r.partition_hours <= 500, {
        message: 'partitions_ahead_days / partition_hours would create more than 500 partitions per table',
        path: ['partitions_ahead_days'],
      })
      .prefault({}),
    /** The built-in carrier simulator (see docs/simulator.md), used when no connector is configured. */
    simulator: z
      .object({
        enabled: z.enum(['auto', 'always', 'never']).default('auto'),
        port: z.number().int().min(0).max(65535).default(0),
        receipt_delay_ms: z.number().int().min(0).default(500),
        tps: z.number().positive().default(500),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.connectors.forEach((c, i) => {
      if (names.has(c.name))
        ctx.addIssue({
          code: 'custom',
          path: ['connectors', i, 'name'],
          message: `duplicate connector name "${c.name}"`,
        });
      names.add(c.name);
    });
    config.routes.forEach((r, i) => {
      for (const name of [r.connector].flat()) {
        if (!names.has(name) && config.connectors.length > 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', i, 'connector'],
            message: `no connector named "${name}"`,
          });
        }
      }
    });
  });

export type Config = z.infer<typeof configSchema>;
