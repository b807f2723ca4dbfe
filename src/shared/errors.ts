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
  batch_too_large: { status: 400, title: 'Batch too large' },
  batch_empty: { status: 400, title: 'Empty batch' },
  invalid_idempotency_key: { status: 400, title: 'Invalid Idempotency-Key' },
  invalid_template: { status: 400, title: 'Invalid template' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  country_not_allowed: { status: 403, title: 'Destination country not allowed' },
  admin_api_disabled: { status: 403, title: 'Operator API disabled' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  idempotency_key_in_use: { status: 409, title: 'Idempotency-Key in use' },
  verification_already_approved: { status: 409, title: 'Verification already approved' },
  verification_failed: { status: 409, title: 'Verification failed' },
  resend_limit_reached: { status: 409, title: 'Resend limit reached' },
  verification_expired: { status: 410, title: 'Verification expired' },
  idempotency_key_reused: { status: 422, title: 'Idempotency-Key reused with another request' },
  body_too_large: { status: 413, title: 'Body too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  resend_cooldown: { status: 429, title: 'Resend too soon' },
  internal_error: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
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
