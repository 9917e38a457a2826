/**
 * xorshift32 (Marsaglia): the cheap deterministic pseudo-random words Ferry's synthetic guest, self-test, tests
 * and benchmarks fill memory with — random enough that no transport can compress or pattern-match them, and
 * replayable from a seed.
 *
 * @module
 */

/** One xorshift32 step. */
function step(x: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/**
 * Fills `bytes` word by word (a whole number of 32-bit words; a tail of fewer than 4 bytes is left as is).
 *
 * @param seed The state to start from (0 is taken as 1).
 * @returns The state after the last word, to go on filling another buffer with the same sequence.
 */
export function fillXorshift32(bytes: Uint8Array, seed: number): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x = step(x);
    words[i] = x;
  }
  return x;
}

/** A generator of xorshift32 words (unsigned 32-bit) from `seed` (0 is taken as 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = step(x);
    return x;
  };
}
