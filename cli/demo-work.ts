/**
 * The CPU work behind the demo's apps: Monte Carlo estimates of pi, prime counting and
 * word frequencies over a generated corpus. Plain, deterministic functions (a seeded
 * PRNG, no I/O), cut into small synchronous chunks so that the Effect program can let the
 * event loop breathe between them.
 *
 * @module
 */

/**
 * A seeded PRNG (mulberry32): the same seed gives the same stream on every runtime.
 *
 * @since 0.1.0
 */
export const mulberry32 = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A job cut into chunks: `step()` does one chunk of work and returns `true` while more
 * remains; `result()` gives the answer once it is done.
 *
 * @since 0.1.0
 */
export interface Chunked<A> {
  readonly step: () => boolean
  readonly result: () => A
}

/**
 * Counts the points of `samples` random points in the unit square that fall inside the
 * quarter circle (4 × inside / samples estimates pi).
 *
 * @since 0.1.0
 */
export const piSampler = (seed: number, samples: number, perChunk = 100_000): Chunked<number> => {
  const random = mulberry32(seed)
  let done = 0
  let inside = 0
  return {
    step: () => {
      const end = Math.min(samples, done + perChunk)
      for (; done < end; done++) {
        const x = random()
        const y = random()
        if (x * x + y * y <= 1) inside++
      }
      return done < samples
    },
    result: () => inside
  }
}

const isPrime = (n: number): boolean => {
  if (n < 2) return false
  if (n % 2 === 0) return n === 2
  if (n % 3 === 0) return n === 3
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false
  }
  return true
}

/**
 * Counts the primes in `[from, to)` by trial division.
 *
 * @since 0.1.0
 */
export const primeCounter = (from: number, to: number, perChunk = 1_500): Chunked<number> => {
  let n = from
  let count = 0
  return {
    step: () => {
      const end = Math.min(to, n + perChunk)
      for (; n < end; n++) if (isPrime(n)) count++
      return n < to
    },
    result: () => count
  }
}

const SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dan", "el", "or", "su", "qui", "ba", "zen"]

/**
 * The corpus vocabulary: 400 made-up words, the same on every run.
 *
 * @since 0.1.0
 */
export const VOCABULARY: ReadonlyArray<string> = (() => {
  const random = mulberry32(42)
  const words = new Set<string>()
  while (words.size < 400) {
    const length = 1 + Math.floor(random() * 3)
    let word = ""
    for (let i = 0; i < length; i++) word += SYLLABLES[Math.floor(random() * SYLLABLES.length)]
    words.add(word)
  }
  return [...words]
})()

/**
 * Generates a chunk of text of `words` words (a Zipf-like draw from the vocabulary, with
 * sentences, capitals and punctuation), then tokenizes it and counts each word.
 *
 * @since 0.1.0
 */
export const wordCounter = (
  seed: number,
  words: number,
  perChunk = 3_000
): Chunked<{ readonly total: number; readonly counts: Record<string, number> }> => {
  const random = mulberry32(seed)
  const counts = new Map<string, number>()
  let done = 0
  let total = 0
  return {
    step: () => {
      // Generate a piece of the corpus...
      const end = Math.min(words, done + perChunk)
      const parts: Array<string> = []
      let sentence = 0
      for (; done < end; done++) {
        let word = VOCABULARY[Math.floor(VOCABULARY.length * Math.pow(random(), 3))]!
        if (sentence === 0) word = word[0]!.toUpperCase() + word.slice(1)
        sentence++
        if (sentence > 4 && random() < 0.12) {
          word += random() < 0.8 ? "." : "!"
          sentence = 0
        } else if (random() < 0.05) {
          word += ","
        }
        parts.push(word)
      }
      // ...then run it through the pipeline: lowercase, tokenize, count.
      for (const token of parts.join(" ").toLowerCase().split(/[^a-z]+/)) {
        if (token === "") continue
        total++
        counts.set(token, (counts.get(token) ?? 0) + 1)
      }
      return done < words
    },
    result: () => {
      const sorted: Record<string, number> = {}
      for (const word of [...counts.keys()].sort()) sorted[word] = counts.get(word)!
      return { total, counts: sorted }
    }
  }
}
