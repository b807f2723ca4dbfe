/**
 * Domain errors carry a stable machine-readable code. The HTTP edge maps them to RFC 9457 problem
 * details (api/problems.ts); domain code never knows about HTTP.
 */
export const ERROR_CODES = {
  malformed_json: { status: 400, title: 'Malformed JSON' },
  invalid_request: { status: 400, title: 'Invalid request' },
  unknown_field: { status: 400, title: 'Unknown field' },
  missing_field: { status: 400, title: 'Missing field' },
  invalid_field: { status: 400, title: 'Invalid field' },
  invalid_phone_number: { status: 400, title: 'Invalid phone number' },
  phone_number_not_mobile: { status: 400, title: 'Phone number cannot receive SMS' },
  invalid_sender: { status: 400, title: 'Invalid sender id' },
  empty_text: { status: 400, title: 'Empty text' },
  text_too_long: { status: 400, title: 'Text too long' },
  invalid_lane: { status: 400, title: 'Unknown lane' },
  invalid_send_at: { status: 400, title: 'Invalid send_at' },
  invalid_validity: { status: 400, title: 'Invalid validity' },
  invalid_callback_url: { status: 400, title: 'Invalid callback URL' },
  callback_url_not_allowed: { status: 400, title: 'Callback URL not allowed' },
  invalid_cursor: { status: 400, title: 'Invalid cursor' },
  invalid_date: { status: 400, title: 'Invalid date' },
  invalid_range: { status: 400, title: 'Invalid time range' },
  invalid_group_by: { status: 400, title: 'Invalid group_by' },
  invalid_timezone: { status: 400, title: 'Invalid time zone' },
  too_many_groups: { status: 400, title: 'Too many groups' },
  batch_too_large: { status: 400, title: 'Batch too large' },
  batch_empty: { status: 400, title: 'Empty batch' },
  invalid_idempotency_key: { status: 400, title: 'Invalid Idempotency-Key' },
  invalid_template: { status: 400, title: 'Invalid template' },
  invalid_optout_mention: { status: 400, title: 'Invalid opt-out mention' },
  invalid_inbound_number: { status: 400, title: 'Invalid inbound number' },
  invalid_csv: { status: 400, title: 'Invalid CSV file' },
  csv_missing_phone_column: { status: 400, title: 'CSV has no phone column' },
  template_missing_fallback: { status: 400, title: 'Template variable without fallback' },
  invalid_window: { status: 400, title: 'Invalid send window' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  country_not_allowed: { status: 403, title: 'Destination country not allowed' },
  admin_api_disabled: { status: 403, title: 'Operator API disabled' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  idempotency_key_in_use: { status: 409, title: 'Idempotency-Key in use' },
  verification_already_approved: { status: 409, title: 'Verification already approved' },
  verification_failed: { status: 409, title: 'Verification failed' },
  resend_limit_reached: { status: 409, title: 'Resend limit reached' },
  contact_exists: { status: 409, title: 'Contact already exists' },
  list_import_running: { status: 409, title: 'An import into this list is running' },
  campaign_transition_not_allowed: { status: 409, title: 'Campaign transition not allowed' },
  verification_expired: { status: 410, title: 'Verification expired' },
  idempotency_key_reused: { status: 422, title: 'Idempotency-Key reused with another request' },
  recipient_opted_out: { status: 422, title: 'Recipient opted out' },
  body_too_large: { status: 413, title: 'Body too large' },
  import_too_large: { status: 413, title: 'Import file too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  resend_cooldown: { status: 429, title: 'Resend too soon' },
  internal_error: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
  insufficient_storage: { status: 507, title: 'Insufficient storage' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class RelaisError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The offending input field, as a JSON pointer-ish path (`to`, `messages/3/text`). */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RelaisError';
  }
}

/** The serialisable form of an error, used in problem bodies and per-item batch results. */
export interface ErrorBody {
  code: ErrorCode;
  title: string;
  detail: string;
  field?: string;
}

export function errorBody(err: RelaisError): ErrorBody {
  const body: ErrorBody = { code: err.code, title: ERROR_CODES[err.code].title, detail: err.message };
  if (err.field !== undefined) body.field = err.field;
  return body;
}
