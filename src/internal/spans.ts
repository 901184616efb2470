/**
 * Spans of app calls and passes, made only when a tracer other than Effect's built-in one is
 * installed (with the built-in one nobody could see them).
 */
import * as Effect from "effect/Effect"

/** A span that records nothing: used when no tracer is installed, where spans are invisible. */
export interface SpanLike {
  attribute(key: string, value: unknown): void
}
export const noSpan: SpanLike = { attribute: () => {} }

/** The tracer Effect uses when none is provided: spans made for it are seen by nobody. */
export const nativeTracer = Effect.runSync(Effect.tracer)
