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
      })
      .strict()
      .prefault({}),
    sqlite: z
      .object({
        /** FULL fsyncs the WAL on every commit (power-loss safe); NORMAL survives process crashes only. */
        synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
        busy_timeout_ms: z.number().int().min(0).default(5000),
      })
      .strict()
      .prefault({}),
    postgres: z
      .object({
        pool_size: z.number().int().min(1).max(200).default(10),
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
         * Parts accepted by carriers but not yet recorded, at most; submitting pauses beyond. After a
         * crash these (plus the submits in flight) are sent again: this bounds the duplicates.
         */
        max_unrecorded: z.number().int().min(1).default(200),
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
