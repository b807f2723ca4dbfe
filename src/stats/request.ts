import { RelaisError } from '../shared/errors.js';
import type { Lane, MessageStatus } from '../store/schema.js';
import { HOUR_MS } from './rollups.js';
import { checkTimeZone, localMidnight } from './timezone.js';

/** What a statistics answer can be grouped by; `tenant` only on the operator's endpoint. */
export const STATS_DIMENSIONS = ['hour', 'day', 'lane', 'connector', 'campaign', 'status', 'tenant'] as const;
export type StatsDimension = (typeof STATS_DIMENSIONS)[number];

/** The longest range one request may read: a year and a bit, so year-on-year fits. */
export const MAX_RANGE_DAYS = 400;
const DAY_MS = 86_400_000;

export interface StatsFilters {
  tenantId?: string | undefined;
  lane?: Lane | undefined;
  connector?: string | undefined;
  campaignId?: string | undefined;
  status?: MessageStatus | undefined;
}

/** A validated statistics request: whole hours [from, to), dimensions in the caller's order. */
export interface StatsQuery {
  from: number;
  to: number;
  groupBy: StatsDimension[];
  tz: string;
  filters: StatsFilters;
}

/** The raw query string, as both endpoints take it. */
export interface StatsParams {
  from?: string | undefined;
  to?: string | undefined;
  group_by?: string | undefined;
  tz?: string | undefined;
  lane?: Lane | undefined;
  connector?: string | undefined;
  campaign_id?: string | undefined;
  status?: MessageStatus | undefined;
  tenant_id?: string | undefined;
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
// A full ISO 8601 time must carry its zone: "10:00" alone would silently mean the server's zone.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** An ISO 8601 instant, or a date meaning local midnight in `tz`. */
function parseInstant(field: 'from' | 'to', value: string, tz: string): number {
  const day = DATE_ONLY.exec(value);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const check = new Date(Date.UTC(y, m - 1, d));
    if (check.getUTCMonth() === m - 1 && check.getUTCDate() === d) return localMidnight(tz, y, m, d);
  } else if (DATE_TIME.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  throw new RelaisError(
    'invalid_date',
    `"${field}" must be an ISO 8601 time with a zone (2026-11-25T08:00:00Z) or a date (2026-11-25), got "${value.slice(0, 64)}"`,
    field,
  );
}

function parseGroupBy(value: string | undefined, allowTenant: boolean): StatsDimension[] {
  if (value === undefined || value.trim() === '') return [];
  const allowed = STATS_DIMENSIONS.filter((d) => allowTenant || d !== 'tenant');
  const out: StatsDimension[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim() as StatsDimension;
    if (!allowed.includes(name)) {
      throw new RelaisError(
        'invalid_group_by',
        `cannot group by "${raw.slice(0, 32)}": use any of ${allowed.join(', ')}, comma-separated`,
        'group_by',
      );
    }
    if (!out.includes(name)) out.push(name);
  }
  if (out.includes('hour') && out.includes('day')) {
    throw new RelaisError('invalid_group_by', 'group by "hour" or by "day", not both', 'group_by');
  }
  return out;
}

function nonEmpty(field: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.length > 128) {
    throw new RelaisError('invalid_field', `"${field}" must be 1 to 128 characters`, field);
  }
  return value;
}

/**
 * Validates a statistics request. Rollups are hourly, so the range is widened to whole hours: `from`
 * rounds down and `to` up (the answer says which hours it covers). Default: the last 24 hours,
 * the current one included.
 */
export function parseStatsQuery(p: StatsParams, now: number, allowTenant: boolean): StatsQuery {
  const tz = p.tz === undefined ? 'UTC' : checkTimeZone(p.tz);
  const rawTo = p.to === undefined ? now : parseInstant('to', p.to, tz);
  const rawFrom = p.from === undefined ? undefined : parseInstant('from', p.from, tz);
  const to = Math.ceil(rawTo / HOUR_MS) * HOUR_MS;
  const from = rawFrom === undefined ? to - DAY_MS : Math.floor(rawFrom / HOUR_MS) * HOUR_MS;
  if (rawFrom !== undefined && rawFrom >= rawTo) {
    throw new RelaisError(
      'invalid_range',
      '"from" must be before "to"',
      p.from === undefined ? 'to' : 'from',
    );
  }
  if (to - from > MAX_RANGE_DAYS * DAY_MS) {
    throw new RelaisError(
      'invalid_range',
      `the range covers ${Math.ceil((to - from) / DAY_MS)} days; at most ${MAX_RANGE_DAYS} are allowed`,
      'from',
    );
  }
  return {
    from,
    to,
    tz,
    groupBy: parseGroupBy(p.group_by, allowTenant),
    filters: {
      tenantId: nonEmpty('tenant_id', p.tenant_id),
      lane: p.lane,
      connector: nonEmpty('connector', p.connector),
      campaignId: nonEmpty('campaign_id', p.campaign_id),
      status: p.status,
    },
  };
}
