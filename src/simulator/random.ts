/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: a tiny 32-bit PRNG, plenty for failure injection and jitter, and the same sequence for
 * the same seed on every run. Not for anything secret.
 */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeded generator when a seed is given, Math.random otherwise. */
export function createRandom(seed: number | undefined): Random {
  return seed === undefined ? Math.random : mulberry32(seed);
}
