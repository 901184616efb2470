/**
 * What the kernel knows of an app: its `AppSpec`, built once per app (from the options of
 * `App.make`).
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as MetricLabel from "effect/MetricLabel"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import type { AppOptions } from "../App.ts"
import type { Outcome } from "../Metrics.ts"
import { keyPrefix } from "./canonical.ts"

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
  /** `keyPrefix(name, version)`: the fixed start of the text its keys hash. */
  readonly keyPrefix: string
  /** What is wrong with its `ignoreForCache` for its input schema, if anything (fails its calls). */
  readonly ignoreProblem: string | undefined
  /** Its own `retries`, overriding the kernel's. */
  readonly retries: number | undefined
  /** How long its stored entries are served, in milliseconds; `undefined`: for ever. */
  readonly expiresAfterMs: number | undefined
}

/** The labels of an app's app-calls metric, by outcome. */
export const metricTagsOf = (name: string): Record<Outcome, ReadonlyArray<MetricLabel.MetricLabel>> => {
  const app = MetricLabel.make("app", name)
  return {
    hit: [MetricLabel.make("outcome", "hit"), app],
    miss: [MetricLabel.make("outcome", "miss"), app],
    dedup: [MetricLabel.make("outcome", "dedup"), app],
    checkpoint: [MetricLabel.make("outcome", "checkpoint"), app],
    remote: [MetricLabel.make("outcome", "remote"), app]
  }
}

/** What is wrong with `ignoreForCache` for the input schema, when it can tell. */
const ignoreProblemOf = (input: Schema.Schema.Any, ignore: ReadonlyArray<string>): string | undefined => {
  if (ignore.length === 0) return undefined
  const keys = new Set<string>()
  const visit = (ast: SchemaAST.AST): "object" | "other" | "unknown" => {
    switch (ast._tag) {
      case "TypeLiteral":
        if (ast.indexSignatures.length > 0) return "unknown"
        for (const p of ast.propertySignatures) if (typeof p.name === "string") keys.add(p.name)
        return "object"
      case "Union": {
        const kinds = ast.types.map(visit)
        return kinds.includes("unknown") ? "unknown" : kinds.includes("object") ? "object" : "other"
      }
      case "Suspend":
      case "Declaration":
      case "Transformation":
      case "Refinement":
      case "AnyKeyword":
      case "UnknownKeyword":
      case "ObjectKeyword":
        return "unknown"
      default:
        return "other"
    }
  }
  const kind = visit(SchemaAST.encodedAST(input.ast))
  if (kind === "unknown") return undefined
  if (kind === "other") {
    return `ignoreForCache names ${
      ignore.map((k) => JSON.stringify(k)).join(", ")
    }, but the encoded input is not an object`
  }
  const missing = ignore.filter((k) => !keys.has(k))
  return missing.length === 0
    ? undefined
    : `ignoreForCache names ${missing.map((k) => JSON.stringify(k)).join(", ")}, which the encoded input does not have`
}

/** The spec of an app made by `App.make` (its options already checked). */
export const make = (
  options: AppOptions<Schema.Schema.Any, Schema.Schema.Any>,
  body: (input: any) => Effect.Effect<any, any, any>
): AppSpec => {
  const input = options.input as unknown as Schema.Schema<unknown, unknown, never>
  const output = options.output as unknown as Schema.Schema<unknown, unknown, never>
  return {
    name: options.name,
    version: options.version ?? null,
    cache: options.cache ?? false,
    ignoreForCache: [...(options.ignoreForCache ?? [])],
    encodeInput: Schema.encode(input),
    encodeInputSync: Schema.encodeEither(input),
    encodeOutput: Schema.encode(output),
    encodeOutputSync: Schema.encodeEither(output),
    decodeOutput: Schema.decodeUnknown(output),
    decodeOutputSync: Schema.decodeUnknownEither(output),
    body,
    metricTags: metricTagsOf(options.name),
    keyPrefix: keyPrefix(options.name, options.version ?? null),
    ignoreProblem: ignoreProblemOf(options.input, options.ignoreForCache ?? []),
    retries: options.retries,
    expiresAfterMs: options.expiresAfter === undefined ? undefined : Duration.toMillis(options.expiresAfter)
  }
}
