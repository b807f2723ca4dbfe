import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { CampaignAction, CampaignService } from '../../campaigns/campaign-service.js';
import type { Day } from '../../campaigns/send-window.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';

const tags = ['campaigns'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const CampaignStatus = Type.Union([
  Type.Literal('draft'),
  Type.Literal('scheduled'),
  Type.Literal('running'),
  Type.Literal('paused'),
  Type.Literal('completed'),
  Type.Literal('cancelled'),
]);

// Checked by the service (validateWindow) for specific `invalid_window` problems, not by the schema.
const Window = Type.Object(
  {
    start: Type.String({ description: 'Local time "HH:MM" the window opens', example: '08:00' }),
    end: Type.String({ description: 'Local time "HH:MM" the window closes (exclusive)', example: '20:00' }),
    days: Type.Optional(
      Type.Array(Type.String({ description: 'mon, tue, wed, thu, fri, sat or sun' }), { maxItems: 7 }),
    ),
  },
  { additionalProperties: false },
);

const CreateCampaignBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, example: 'Spring sale' }),
    list_ids: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 20 }),
    from: Type.String({ description: 'Sender id', example: 'Pizzeria' }),
    template: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: 'Text with {{variable|fallback}} placeholders; every variable but phone needs a fallback',
      example: 'Hi {{first_name|there}}, -20% in {{city|your shop}} today!',
    }),
    send_at: Type.Optional(
      Type.String({ description: 'ISO 8601 time with a zone: start then, not at once' }),
    ),
    window: Type.Optional(Window),
    max_tps: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000, description: 'Messages per second at most' }),
    ),
  },
  { additionalProperties: false },
);

const Stats = Type.Object({
  targeted: Type.Integer(),
  skipped_optout: Type.Integer(),
  skipped_invalid: Type.Integer(),
  queued: Type.Integer(),
  sent: Type.Integer(),
  delivered: Type.Integer(),
  failed: Type.Integer(),
  pending: Type.Integer(),
  segments: Type.Integer(),
  replies: Type.Integer(),
  optouts: Type.Integer(),
});

const CampaignFields = {
  id: Type.String(),
  name: Type.String(),
  status: CampaignStatus,
  list_ids: Type.Array(Type.String()),
  from: Type.String(),
  template: Type.String(),
  send_at: Nullable(Type.String()),
  window: Nullable(Window),
  max_tps: Nullable(Type.Integer()),
  created_at: Type.String(),
  updated_at: Type.String(),
  started_at: Nullable(Type.String()),
  completed_at: Nullable(Type.String()),
};
const CampaignView = Type.Object(CampaignFields);
const CampaignDetail = Type.Object({ ...CampaignFields, stats: Stats });

const CampaignList = Type.Object({ data: Type.Array(CampaignView), next_cursor: Nullable(Type.String()) });
const ListCampaignsQuery = Type.Object(
  {
    status: Type.Optional(CampaignStatus),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  },
  { additionalProperties: false },
);

const PreviewBody = Type.Object(
  { contact_id: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
);
const Preview = Type.Object({
  contact: Type.Object({ id: Nullable(Type.String()), phone: Type.String(), sample: Type.Boolean() }),
  text: Type.String(),
  encoding: Type.Union([Type.Literal('GSM-7'), Type.Literal('UCS-2')]),
  segments: Type.Integer(),
  characters: Type.Integer(),
  recipients_estimate: Type.Integer(),
  estimated_total_segments: Type.Integer(),
});

const ACTIONS: { action: CampaignAction; summary: string }[] = [
  { action: 'start', summary: 'Start a draft campaign (scheduled when its send_at is ahead)' },
  { action: 'pause', summary: 'Pause a running campaign: no new messages (the few seconds queued still go)' },
  { action: 'resume', summary: 'Resume a paused campaign where it stopped' },
  { action: 'cancel', summary: 'Cancel: no new messages; queued ones fail with campaign_cancelled' },
];

export const campaignRoutes =
  (campaigns: CampaignService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/campaigns',
      {
        schema: {
          tags,
          security,
          summary: 'Create a draft campaign to one or more lists',
          body: CreateCampaignBody,
          response: { 201: CampaignDetail, ...errorResponses, 404: Problem },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const created = await campaigns.create(request.tenant.id, {
          ...b,
          window: b.window && {
            start: b.window.start,
            end: b.window.end,
            days: b.window.days as Day[] | undefined,
          },
        });
        return reply.code(201).send(created);
      },
    );

    app.get(
      '/campaigns',
      {
        schema: {
          tags,
          security,
          summary: 'List campaigns, newest first, with cursor pagination',
          querystring: ListCampaignsQuery,
          response: { 200: CampaignList, ...errorResponses },
        },
      },
      async (request) => campaigns.list(request.tenant.id, request.query),
    );

    app.get(
      '/campaigns/:id',
      {
        schema: {
          tags,
          security,
          summary: 'A campaign with its live statistics',
          params: IdParams,
          response: { 200: CampaignDetail, 401: Problem, 404: Problem },
        },
      },
      async (request) => campaigns.get(request.tenant.id, request.params.id),
    );

    for (const { action, summary } of ACTIONS) {
      app.post(
        `/campaigns/:id/${action}`,
        {
          schema: {
            tags,
            security,
            summary,
            params: IdParams,
            response: { 200: CampaignDetail, 401: Problem, 404: Problem, 409: Problem },
          },
        },
        async (request) => campaigns.transition(request.tenant.id, request.params.id, action),
      );
    }

    app.post(
      '/campaigns/:id/preview',
      {
        schema: {
          tags,
          security,
          summary: 'Render the template for a contact (or the first recipient) and estimate the segments',
          params: IdParams,
          body: PreviewBody,
          response: { 200: Preview, ...errorResponses, 404: Problem },
        },
      },
      async (request) => campaigns.preview(request.tenant.id, request.params.id, request.body.contact_id),
    );
  };
