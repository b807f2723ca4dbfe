import { Type } from 'typebox';

/** One schema per route part: validation, serialisation and the OpenAPI document come from these. */

const Lane = Type.Union([Type.Literal('otp'), Type.Literal('transactional'), Type.Literal('bulk')]);
const Status = Type.Union([
  Type.Literal('accepted'),
  Type.Literal('scheduled'),
  Type.Literal('submitted'),
  Type.Literal('delivered'),
  Type.Literal('undelivered'),
  Type.Literal('expired'),
  Type.Literal('rejected'),
  Type.Literal('failed'),
]);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const SendMessageBody = Type.Object(
  {
    to: Type.String({
      description: 'E.164 number (+33612345678), or national format with `country`',
      example: '+33612345678',
    }),
    country: Type.Optional(
      Type.String({ description: 'ISO 3166 country for a national-format `to`', example: 'FR' }),
    ),
    from: Type.String({
      description: 'Alphanumeric sender id (≤ 11 GSM characters) or a number',
      example: 'Pizzeria',
    }),
    text: Type.String({ maxLength: 10_000, example: 'Your pizza is on its way!' }),
    lane: Type.Optional(Lane),
    client_ref: Type.Optional(Type.String({ maxLength: 128 })),
    callback_url: Type.Optional(Type.String({ maxLength: 2048 })),
    validity_minutes: Type.Optional(Type.Integer()),
    send_at: Type.Optional(Type.String({ description: 'ISO 8601 time with a zone' })),
  },
  { additionalProperties: false },
);

export const AcceptedMessage = Type.Object({
  id: Type.String(),
  status: Status,
  to: Type.String(),
  from: Type.String(),
  lane: Lane,
  encoding: Type.Union([Type.Literal('GSM-7'), Type.Literal('UCS-2')]),
  segments: Type.Integer(),
  parts: Type.Integer(),
  client_ref: Nullable(Type.String()),
  send_at: Nullable(Type.String()),
  expires_at: Type.String(),
  created_at: Type.String(),
});

export const ItemError = Type.Object({
  code: Type.String(),
  title: Type.String(),
  detail: Type.String(),
  field: Type.Optional(Type.String()),
});

export const BatchBody = Type.Object(
  { messages: Type.Array(SendMessageBody, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);

export const BatchResponse = Type.Object({
  accepted: Type.Integer(),
  rejected: Type.Integer(),
  results: Type.Array(
    Type.Union([
      Type.Object({ index: Type.Integer(), status: Type.Literal('accepted'), message: AcceptedMessage }),
      Type.Object({ index: Type.Integer(), status: Type.Literal('rejected'), error: ItemError }),
    ]),
  ),
});

const MessageFields = {
  id: Type.String(),
  status: Status,
  to: Type.String(),
  country: Nullable(Type.String()),
  from: Type.String(),
  text: Type.String(),
  lane: Lane,
  encoding: Type.String(),
  segments: Type.Integer(),
  client_ref: Nullable(Type.String()),
  callback_url: Nullable(Type.String()),
  connector: Nullable(Type.String()),
  error_code: Nullable(Type.String()),
  error_reason: Nullable(Type.String()),
  send_at: Nullable(Type.String()),
  expires_at: Type.String(),
  created_at: Type.String(),
  updated_at: Type.String(),
  redacted_at: Nullable(
    Type.String({ description: 'When retention blanked `text` (retention.redact_bodies_after_days)' }),
  ),
};

export const MessageView = Type.Object(MessageFields);

export const MessageDetail = Type.Object({
  ...MessageFields,
  history: Type.Array(
    Type.Object({
      status: Status,
      at: Type.String(),
      error_code: Nullable(Type.String()),
      detail: Nullable(Type.String()),
    }),
  ),
  parts: Type.Array(
    Type.Object({
      part_no: Type.Integer(),
      connector: Nullable(Type.String()),
      carrier_id: Nullable(Type.String()),
      status: Status,
      error_code: Nullable(Type.String()),
    }),
  ),
});

export const ListQuery = Type.Object(
  {
    status: Type.Optional(Status),
    to: Type.Optional(Type.String()),
    lane: Type.Optional(Lane),
    client_ref: Type.Optional(Type.String()),
    created_after: Type.Optional(Type.String({ format: 'date-time' })),
    created_before: Type.Optional(Type.String({ format: 'date-time' })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  },
  { additionalProperties: false },
);

export const MessageList = Type.Object({
  data: Type.Array(MessageView),
  next_cursor: Nullable(Type.String()),
});

export const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export const Problem = Type.Object({
  type: Type.String(),
  status: Type.Integer(),
  code: Type.String(),
  title: Type.String(),
  detail: Type.String(),
  field: Type.Optional(Type.String()),
  instance: Type.Optional(Type.String()),
});

export const WebhookEventSummary = Type.Object({
  id: Type.String(),
  type: Type.String(),
  message_id: Nullable(Type.String()),
  url: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.String()),
  last_error: Nullable(Type.String()),
  created_at: Type.String(),
  delivered_at: Nullable(Type.String()),
});

export const WebhookEventDetail = Type.Object({
  ...WebhookEventSummary.properties,
  payload: Type.Unknown(),
  attempt_log: Type.Array(
    Type.Object({
      attempted_at: Type.String(),
      duration_ms: Type.Integer(),
      status_code: Nullable(Type.Integer()),
      error: Nullable(Type.String()),
    }),
  ),
});

export const WebhookEventQuery = Type.Object(
  {
    message_id: Type.Optional(Type.String()),
    status: Type.Optional(
      Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  },
  { additionalProperties: false },
);

export const Account = Type.Object({
  tenant_id: Type.String(),
  name: Type.String(),
  webhook_url: Nullable(Type.String()),
  webhook_batch_size: Type.Integer(),
  created_at: Type.String(),
});

export const AccountPatch = Type.Object(
  {
    webhook_url: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
    webhook_batch_size: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1000,
        description:
          '0: one event per request; N ≥ 1: up to N events of one endpoint per request (see docs/webhooks.md)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const errorResponses = {
  400: Problem,
  401: Problem,
};
