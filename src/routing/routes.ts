import type { Lane } from '../store/schema.js';

/** What routing may look at: never the text. */
export interface RoutableMessage {
  to: string;
  country: string | null;
  tenant_id: string;
  lane: Lane;
}

export interface RouteMatch {
  countries?: string[] | undefined;
  /** E.164 prefixes, with the `+`: `+336`, `+337`. */
  prefixes?: string[] | undefined;
  tenants?: string[] | undefined;
  lanes?: Lane[] | undefined;
}

export interface RouteConfig {
  /** Connectors in order of preference: the first connected one is used, the others are failovers. */
  connectors: string[];
  match?: RouteMatch | undefined;
}

/**
 * An ordered routing table, first match wins (as in Jasmin): each route is a set of filters (every
 * given filter must match) and a list of connectors in preference order. A route without `match` is
 * the default. Pure: no I/O, trivially tested.
 */
export class RoutingTable {
  constructor(private readonly routes: RouteConfig[]) {}

  /** Connectors to try for a message, in order; empty when no route matches. */
  connectorsFor(message: RoutableMessage): string[] {
    for (const route of this.routes) {
      if (matches(route.match, message)) return route.connectors;
    }
    return [];
  }
}

function matches(match: RouteMatch | undefined, m: RoutableMessage): boolean {
  if (!match) return true;
  if (match.countries && !(m.country && match.countries.includes(m.country))) return false;
  if (match.prefixes && !match.prefixes.some((p) => m.to.startsWith(p))) return false;
  if (match.tenants && !match.tenants.includes(m.tenant_id)) return false;
  if (match.lanes && !match.lanes.includes(m.lane)) return false;
  return true;
}
