import { RelaisError } from '../shared/errors.js';

export type Locale = 'en' | 'fr';
export const LOCALES: readonly Locale[] = ['en', 'fr'];

/** The shipped texts; both stay in GSM-7 (é is in its basic set), so one SMS each. */
export const DEFAULT_TEMPLATES: Record<Locale, string> = {
  en: 'Your verification code is {{code}}. It expires in {{minutes}} min.',
  fr: 'Votre code de vérification est {{code}}. Il expire dans {{minutes}} min.',
};

const PLACEHOLDER = /\{\{([^}]*)\}\}/g;
const KNOWN = new Set(['code', 'minutes']);

/** A template must show the code, and may only use the placeholders we fill. */
export function checkTemplate(template: string): void {
  let hasCode = false;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    if (!KNOWN.has(name)) {
      throw new RelaisError(
        'invalid_template',
        `unknown placeholder {{${name}}}: use {{code}} and optionally {{minutes}}`,
        'template',
      );
    }
    if (name === 'code') hasCode = true;
  }
  if (!hasCode) throw new RelaisError('invalid_template', 'the template must contain {{code}}', 'template');
}

/**
 * The SMS text, and the same text with the code masked for the message history: one `*` per digit,
 * so both have the same length and the same encoding (digits and `*` are both GSM-7).
 */
export function renderTemplate(
  template: string,
  code: string,
  ttlSeconds: number,
): { text: string; masked: string } {
  const minutes = String(Math.ceil(ttlSeconds / 60));
  const fill = (value: string) =>
    template.replace(PLACEHOLDER, (_m, name: string) => (name === 'code' ? value : minutes));
  return { text: fill(code), masked: fill('*'.repeat(code.length)) };
}
