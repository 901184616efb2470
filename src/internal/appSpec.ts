/**
 * What the kernel knows of an app: its `AppSpec`, built once per app by `App.make`.
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as MetricLabel from "effect/MetricLabel"
import type * as ParseResult from "effect/ParseResult"
import type { Outcome } from "../Metrics.ts"

/** What the kernel needs to know of an app; built once per app by `App.make`. */
export interface AppSpec {
  readonly name: string
  readonly version: string | null
  readonly cache: boolean
  readonly ignoreForCache: ReadonlyArray<string>
  readonly encodeInput: (input: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  /** The synchronous encoder; a `Left` may only mean the schema needs the effectful one. */
  readonly encodeInputSync: (input: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly encodeOutput: (output: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  readonly encodeOutputSync: (output: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly decodeOutput: (encoded: unknown) => Effect.Effect<unknown, ParseResult.ParseError, any>
  /** The synchronous decoder; a `Left` may only mean the schema needs the effectful one. */
  readonly decodeOutputSync: (encoded: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly body: (input: any) => Effect.Effect<any, any, any>
  /** The labels of its app-calls metric, one array per outcome (built once: Effect caches by identity). */
  readonly metricTags: Record<Outcome, ReadonlyArray<MetricLabel.MetricLabel>>
  /** `lineInfix(name, version)`: the fixed middle of its checkpoint lines. */
  readonly lineInfix: string
  /** `keyPrefix(name, version)`: the fixed start of the text its keys hash. */
  readonly keyPrefix: string
  /** What is wrong with its `ignoreForCache` for its input schema, if anything (fails its calls). */
  readonly ignoreProblem: string | undefined
  /** Its own `retries`, overriding the kernel's. */
  readonly retries: number | undefined
}

/** The labels of an app's app-calls metric, by outcome. */
export const metricTagsOf = (name: string): Record<Outcome, ReadonlyArray<MetricLabel.MetricLabel>> => {
  const app = MetricLabel.make("app", name)
  return {
    hit: [MetricLabel.make("outcome", "hit"), app],
    miss: [MetricLabel.make("outcome", "miss"), app],
    dedup: [MetricLabel.make("outcome", "dedup"), app],
    checkpoint: [MetricLabel.make("outcome", "checkpoint"), app]
  }
}
