import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { type ErrorCode, RelaisError } from '../shared/errors.js';

/**
 * Two validators: bodies are checked strictly (no type coercion, unknown fields are errors rather
 * than silently dropped — Fastify's default removes them), while query strings and headers, which are
 * text on the wire, are coerced to the declared types.
 */
export function installValidators(app: FastifyInstance): void {
  const strict = new Ajv({
    allErrors: false,
    removeAdditional: false,
    coerceTypes: false,
    useDefaults: true,
  });
  const lenient = new Ajv({
    allErrors: false,
    removeAdditional: false,
    coerceTypes: 'array',
    useDefaults: true,
  });
  for (const ajv of [strict, lenient]) {
    addFormats.default(ajv);
    ajv.addKeyword({ keyword: 'example' });
  }
  // Fastify parses text/plain bodies by default; a text body would then fail the schema as "must be
  // object" (400) instead of being refused as the wrong media type (415). The API takes JSON only.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : lenient).compile(schema as object),
  );
}

/** Turns the first schema violation into a coded error naming the field. */
export function validationError(errors: ErrorObject[], context: string): RelaisError {
  const e = errors[0];
  if (!e) return new RelaisError('invalid_request', `the ${context} is invalid`);
  const path = e.instancePath.replace(/^\//, '');
  const field = (name: string) => (path ? `${path}/${name}` : name);
  const where = context === 'body' ? '' : `${context} `;
  // A JSON array, string, number or null where an object is expected: no field is at fault.
  if (!path && e.keyword === 'type') {
    const what = context === 'body' ? `a JSON ${e.params.type}` : `of type ${e.params.type}`;
    return new RelaisError('invalid_request', `the ${context} must be ${what}`);
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(e.params.additionalProperty);
      return new RelaisError('unknown_field', `unknown ${where}field "${name}"`, field(name));
    }
    case 'required': {
      const name = String(e.params.missingProperty);
      return new RelaisError('missing_field', `"${name}" is required`, field(name));
    }
    case 'maxItems':
      return new RelaisError(
        'batch_too_large',
        `at most ${e.params.limit} items are allowed in "${path}"`,
        path,
      );
    case 'minItems':
      return new RelaisError('batch_empty', `"${path}" must hold at least ${e.params.limit} item`, path);
  }
  const last = path.split('/').at(-1) ?? '';
  const code: ErrorCode = FIELD_CODES[last]?.[e.keyword] ?? FIELD_CODES[last]?.['*'] ?? 'invalid_field';
  return new RelaisError(
    code,
    `${path ? `"${path}" ` : ''}${violationMessage(e, errors)}`,
    path || undefined,
  );
}

/**
 * Ajv's message, except for unions of literals (`lane`, `status`): Ajv reports the first branch as
 * "must be equal to constant", which does not tell the caller what is allowed.
 */
function violationMessage(e: ErrorObject, errors: ErrorObject[]): string {
  if (e.keyword === 'const' || e.keyword === 'anyOf') {
    const allowed = errors
      .filter((x) => x.keyword === 'const' && x.instancePath === e.instancePath)
      .map((x) => JSON.stringify(x.params.allowedValue));
    if (allowed.length > 0) return `must be one of ${allowed.join(', ')}`;
  }
  return e.message ?? 'is invalid';
}

/** Field-specific error codes for schema violations, so a bad lane reads `invalid_lane`, etc. */
const FIELD_CODES: Record<string, Record<string, ErrorCode>> = {
  lane: { '*': 'invalid_lane' },
  text: { maxLength: 'text_too_long', minLength: 'empty_text' },
  to: { '*': 'invalid_phone_number' },
  from: { '*': 'invalid_sender' },
  callback_url: { '*': 'invalid_callback_url' },
  send_at: { '*': 'invalid_send_at' },
  validity_minutes: { '*': 'invalid_validity' },
};
