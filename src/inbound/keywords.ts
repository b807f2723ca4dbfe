export type Keyword = 'stop' | 'start';

/** Upper case without diacritics: ARRÊT, arrêt and Arret all read ARRET. */
function fold(word: string): string {
  return word.normalize('NFD').replace(/\p{M}/gu, '').toUpperCase();
}

/**
 * Recognises opt-out (STOP…) and opt-in (START…) keywords. Only the first word counts ("Stop please"
 * is a STOP, "please stop" is not), ignoring case, accents and punctuation around it ("stop." works).
 */
export class KeywordMatcher {
  private readonly words = new Map<string, Keyword>();

  constructor(stopWords: readonly string[], startWords: readonly string[]) {
    for (const w of startWords) this.words.set(fold(w.trim()), 'start');
    // A word in both lists is a STOP: refusing messages is the safe side.
    for (const w of stopWords) this.words.set(fold(w.trim()), 'stop');
  }

  match(text: string): Keyword | null {
    const first = text.trim().split(/\s+/, 1)[0] ?? '';
    const word = fold(first).replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    return word ? (this.words.get(word) ?? null) : null;
  }
}
