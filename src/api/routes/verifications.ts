import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { RelaisError } from '../../shared/errors.js';
import { RetryLaterError } from '../../verify/rate-limits.js';
import { CODE_LENGTH, TTL_SECONDS, type VerifyService } from '../../verify/service.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';

/** The Verify API (docs/verify.md). Schemas live here: they are only Verify's. */

const tags = ['verify'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Locale = Type.Union([Type.Literal('en'), Type.Literal('fr')]);

export const StartVerificationBody = Type.Object(
  {
    to: Type.String({
      description: 'E.164 number (+33612345678), or national format with `country`',
      example: '+33612345678',
    }),
    country: Type.Optional(
      Type.String({ description: 'ISO 3166 country for a national-format `to`', example: 'FR' }),
    ),
    from: Type.Optional(Type.String({ description: 'Sender id (default: the operator’s, "Verify")' })),
    code_length: Type.Optional(
      Type.Integer({ minimum: CODE_LENGTH.min, maximum: CODE_LENGTH.max, description: 'Digits (default 6)' }),
    ),
    ttl_seconds: Type.Optional(
      Type.Integer({
        minimum: TTL_SECONDS.min,
        maximum: TTL_SECONDS.max,
        description: 'How long the code is valid (default 300)',
      }),
    ),
    template: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 640,
        description: 'SMS text with {{code}} (and optionally {{minutes}}); default: the locale’s',
        example: 'Your Luigi code: {{code}}',
      }),
    ),
    locale: Type.Optional(Locale),
  },
  { additionalProperties: false },
);

const VerificationStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('approved'),
  Type.Literal('failed'),
  Type.Literal('expired'),
]);

export const Verification = Type.Object({
  id: Type.String(),
  status: VerificationStatus,
  to: Type.String(),
  country: Nullable(Type.String()),
  locale: Type.String(),
  code_length: Type.Integer(),
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  attempts_remaining: Type.Integer(),
  resends: Type.Integer(),
  max_resends: Type.Integer(),
  message_id: Nullable(Type.String()),
  expires_at: Type.String(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const CheckBody = Type.Object(
  { code: Type.String({ pattern: '^[0-9]{4,10}$', description: 'The code the user typed' }) },
  { additionalProperties: false },
);

const CheckResult = Type.Object({ ...Verification.properties, valid: Type.Boolean() });

const Settings = Type.Object({
  allowed_countries: Nullable(Type.Array(Type.String())),
  default_locale: Locale,
});

const SettingsBody = Type.Object(
  {
    allowed_countries: Nullable(
      Type.Array(Type.String({ maxLength: 8 }), {
        description: 'ISO 3166 codes (at least one); null allows every country',
      }),
    ),
    default_locale: Type.Optional(Locale),
  },
  { additionalProperties: false },
);

const Alarms = Type.Object({
  prefix_digits: Type.Integer(),
  threshold_per_minute: Type.Integer(),
  data: Type.Array(
    Type.Object({
      prefix: Type.String(),
      count: Type.Integer(),
      window_start: Type.String(),
      window_end: Type.String(),
    }),
  ),
});

// Checked in the handler (parseTime): the shared validator would read a bad `from` as a sender id.
const StatsQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601 time, inclusive' })),
    until: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601 time, exclusive' })),
  },
  { additionalProperties: false },
);

const Stats = Type.Object({
  from: Nullable(Type.String()),
  until: Nullable(Type.String()),
  started: Type.Integer(),
  approved: Type.Integer(),
  failed: Type.Integer(),
  expired: Type.Integer(),
  pending: Type.Integer(),
  conversion_rate: Nullable(Type.Number()),
});

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const t = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t)) {
    throw new RelaisError(
      'invalid_field',
      `${field} must be an ISO 8601 time with a zone, like 2026-03-01T00:00:00Z`,
      field,
    );
  }
  return t;
}

/** A refusal that can be retried later carries `Retry-After` (seconds). */
async function withRetryAfter<T>(reply: FastifyReply, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RetryLaterError) reply.header('Retry-After', String(err.retryAfterSeconds));
    throw err;
  }
}

export const verificationRoutes =
  (verify: VerifyService): FastifyPluginAsyncTypebox =>
  async (app) => {
    const caller = (request: { tenant: { id: string }; apiKeyId: string }) => ({
      tenantId: request.tenant.id,
      apiKeyId: request.apiKeyId || null,
    });

    app.post(
      '/verifications',
      {
        schema: {
          tags,
          security,
          summary: 'Start a verification: a one-time code sent by SMS on the otp lane',
          body: StartVerificationBody,
          response: { 201: Verification, ...errorResponses, 403: Problem, 429: Problem },
        },
      },
      async (request, reply) => {
        const view = await withRetryAfter(reply, () => verify.start(caller(request), request.body));
        return reply.code(201).header('Location', `/v1/verifications/${view.id}`).send(view);
      },
    );

    app.get(
      '/verifications/:id',
      {
        schema: {
          tags,
          security,
          summary: 'A verification’s status and counters (never its code)',
          params: IdParams,
          response: { 200: Verification, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const view = await verify.get(request.tenant.id, request.params.id);
        if (!view) throw new RelaisError('not_found', `no verification ${request.params.id}`, 'id');
        return view;
      },
    );

    app.post(
      '/verifications/:id/check',
      {
        schema: {
          tags,
          security,
          summary: 'Check a code: approved once; wrong codes count against max_attempts',
          params: IdParams,
          body: CheckBody,
          response: { 200: CheckResult, ...errorResponses, 404: Problem, 409: Problem, 410: Problem },
        },
      },
      async (request) => verify.check(request.tenant.id, request.params.id, request.body.code),
    );

    app.post(
      '/verifications/:id/resend',
      {
        schema: {
          tags,
          security,
          summary: 'Send a new code for the same verification (after a cooldown, a few times at most)',
          params: IdParams,
          response: {
            200: Verification,
            ...errorResponses,
            404: Problem,
            409: Problem,
            410: Problem,
            429: Problem,
          },
        },
      },
      async (request, reply) =>
        withRetryAfter(reply, () => verify.resend(caller(request), request.params.id)),
    );

    app.get(
      '/verify/settings',
      {
        schema: {
          tags,
          security,
          summary: 'Your Verify settings: allowed destination countries, default locale',
          response: { 200: Settings, ...errorResponses },
        },
      },
      async (request) => verify.settings.get(request.tenant.id),
    );

    app.put(
      '/verify/settings',
      {
        schema: {
          tags,
          security,
          summary: 'Replace your Verify settings',
          body: SettingsBody,
          response: { 200: Settings, ...errorResponses },
        },
      },
      async (request) => verify.settings.put(request.tenant.id, request.body),
    );

    app.get(
      '/verify/alarms',
      {
        schema: {
          tags,
          security,
          summary: 'Number prefixes receiving unusually many verifications (this minute or the last)',
          response: { 200: Alarms, ...errorResponses },
        },
      },
      async (request) => verify.insights.alarms(request.tenant.id),
    );

    app.get(
      '/verify/stats',
      {
        schema: {
          tags,
          security,
          summary: 'Verifications started, approved, failed, expired, and the conversion rate',
          querystring: StatsQuery,
          response: { 200: Stats, ...errorResponses },
        },
      },
      async (request) => {
        const { from, until } = request.query;
        return verify.insights.stats(request.tenant.id, parseTime(from, 'from'), parseTime(until, 'until'));
      },
    );
  };
