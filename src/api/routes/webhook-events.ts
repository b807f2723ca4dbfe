import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { RelaisError } from '../../shared/errors.js';
import type { Store } from '../../store/store.js';
import { getWebhookEvent, listWebhookEvents } from '../../webhooks/queries.js';
import {
  errorResponses,
  IdParams,
  Problem,
  WebhookEventDetail,
  WebhookEventQuery,
  WebhookEventSummary,
} from '../schemas.js';

const tags = ['webhooks'];
const security = [{ bearerAuth: [] }];

/** Webhook events and their delivery attempts, so customers can see what was sent and why it failed. */
export const webhookEventRoutes =
  (store: Store): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/webhook-events',
      {
        schema: {
          tags,
          security,
          summary: 'List webhook events, newest first',
          querystring: WebhookEventQuery,
          response: {
            200: Type.Object({
              data: Type.Array(WebhookEventSummary),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => listWebhookEvents(store.db, request.tenant.id, request.query),
    );

    app.get(
      '/webhook-events/:id',
      {
        schema: {
          tags,
          security,
          summary: 'One webhook event with its payload and every delivery attempt',
          params: IdParams,
          response: { 200: WebhookEventDetail, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const event = await getWebhookEvent(store.db, request.tenant.id, request.params.id);
        if (!event) throw new RelaisError('not_found', `no webhook event ${request.params.id}`, 'id');
        return event;
      },
    );
  };
