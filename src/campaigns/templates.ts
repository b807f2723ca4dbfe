import { RelaisError } from '../shared/errors.js';

/**
 * Campaign templates: plain text with `{{variable}}` and `{{variable|fallback}}` placeholders.
 * Variables are the contact's `first_name`, `last_name`, `phone`, or any key of its `attributes`.
 *
 * Rule checked at creation: every variable but `phone` (always present) needs a fallback, because a
 * contact without that field would otherwise get "Hello ," — a broken message sent a million times.
 * `{{first_name|}}` (an explicit empty fallback) is allowed.
 */
export type TemplatePart = string | { name: string; fallback: string | null };

export interface ParsedTemplate {
  parts: TemplatePart[];
  variables: string[];
}

/** What a template can read of a recipient. */
export interface TemplateContact {
  phone: string;
  first_name: string | null;
  last_name: string | null;
  attributes: Record<string, unknown>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses and checks a template; throws `invalid_template` or `template_missing_fallback`. */
export function parseTemplate(template: string, field = 'template'): ParsedTemplate {
  const parts: TemplatePart[] = [];
  const variables: string[] = [];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{{', i);
    const strayClose = template.indexOf('}}', i);
    if (strayClose !== -1 && (open === -1 || strayClose < open)) {
      throw new RelaisError('invalid_template', `"}}" at position ${strayClose} closes nothing`, field);
    }
    if (open === -1) {
      parts.push(template.slice(i));
      break;
    }
    if (open > i) parts.push(template.slice(i, open));
    const close = template.indexOf('}}', open + 2);
    if (close === -1) {
      throw new RelaisError('invalid_template', `"{{" at position ${open} is never closed with "}}"`, field);
    }
    const inner = template.slice(open + 2, close);
    if (inner.includes('{{')) {
      throw new RelaisError('invalid_template', `"{{" at position ${open} is never closed with "}}"`, field);
    }
    const bar = inner.indexOf('|');
    const name = (bar === -1 ? inner : inner.slice(0, bar)).trim();
    const fallback = bar === -1 ? null : inner.slice(bar + 1);
    if (!NAME.test(name)) {
      throw new RelaisError(
        'invalid_template',
        `"{{${inner}}}" is not a variable: names are letters, digits and _ (like {{first_name}})`,
        field,
      );
    }
    if (fallback === null && name !== 'phone') {
      throw new RelaisError(
        'template_missing_fallback',
        `{{${name}}} has no fallback: write {{${name}|…}} with the text to use when a contact has no ${name}`,
        field,
      );
    }
    parts.push({ name, fallback });
    variables.push(name);
    i = close + 2;
  }
  return { parts, variables };
}

function fieldValue(contact: TemplateContact, name: string): string | null {
  let v: unknown;
  if (name === 'phone') v = contact.phone;
  else if (name === 'first_name') v = contact.first_name;
  else if (name === 'last_name') v = contact.last_name;
  else v = Object.hasOwn(contact.attributes, name) ? contact.attributes[name] : null;
  if (v === null || v === undefined) return null;
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.trim() === '' ? null : s;
}

/** The text for one contact: each variable's value, or its fallback when the contact has none. */
export function renderTemplate(parsed: ParsedTemplate, contact: TemplateContact): string {
  let out = '';
  for (const part of parsed.parts) {
    if (typeof part === 'string') out += part;
    else out += fieldValue(contact, part.name) ?? part.fallback ?? '';
  }
  return out;
}

/** contacts.attributes as stored (JSON text); a corrupt value renders as no attributes. */
export function parseAttributes(json: string | null): Record<string, unknown> {
  if (!json) return {};
  try {
    const v = JSON.parse(json) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
