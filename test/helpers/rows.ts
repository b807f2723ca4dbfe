/**
 * A `messages` row with only the columns a new message must have, for suites that write the table
 * directly (a state that the API cannot make, or many rows at once). `fields` overrides any of them.
 */
export function minimalMessageRow(id: string, tenantId: string, fields: Record<string, unknown> = {}) {
  return {
    id,
    tenant_id: tenantId,
    to_number: '+33612345678',
    sender: 'Shop',
    body: 'hello',
    lane: 'bulk',
    encoding: 'GSM-7',
    segments: 1,
    status: 'accepted',
    expires_at: 1,
    created_at: 1,
    updated_at: 1,
    ...fields,
  };
}
