/**
 * Apps: named, schema-typed Effect programs whose results the kernel can memoize and
 * checkpoint (Parsl's `@python_app(cache=True)`).
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Dfk } from "./Dfk.ts"
import type { AppCacheError } from "./errors.ts"
import * as appSpec from "./internal/appSpec.ts"
import type { KernelService } from "./internal/kernel.ts"
import { registerSpec } from "./internal/specs.ts"

/**
 * The top-level keys of a schema's encoded form, when it is an object.
 *
 * @since 0.1.0
 * @category models
 */
export type EncodedKeys<S extends Schema.Schema.Any> = Schema.Schema.Encoded<S> extends Record<string, unknown>
  ? Extract<keyof Schema.Schema.Encoded<S>, string>
  : string

/**
 * How an app is declared.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppOptions<In extends Schema.Schema.Any, Out extends Schema.Schema.Any> {
  /** The app's name: part of the memo key and of every checkpoint entry. Required. */
  readonly name: string
  /** The input's schema; the memo key is computed from the encoded input. Required. */
  readonly input: In
  /** The output's schema; results are checkpointed encoded and decoded on resume. Required. */
  readonly output: Out
  /** Memoize and checkpoint this app (AppCaching); default `false`, as in Parsl. */
  readonly cache?: boolean | undefined
  /** Keys of the encoded input object left out of the memo key; default none. */
  readonly ignoreForCache?: ReadonlyArray<EncodedKeys<In>> | undefined
  /** Part of the memo key: bump it when the body changes; default none (`null` in the key). */
  readonly version?: string | undefined
  /**
   * How many more times a failed body runs for this app (Parsl's `retries`); default the
   * kernel's `retries`. Only the final outcome is memoized. A retried body that calls other
   * apps gets their memoized outcomes: a child's failure comes back at once, it does not run
   * again, so give the children the retries (or none to the parent).
   */
  readonly retries?: number | undefined
  /**
   * How long a stored entry of this app is served: an entry older than this (by its `time`,
   * against Effect's `Clock`) is not, and the call runs the body (the log says the entry
   * expired). Within a run the memo still answers a repeat call. Default: entries never expire.
   */
  readonly expiresAfter?: Duration.DurationInput | undefined
}

/**
 * A callable app. Calling it returns an Effect that runs the body, or serves the result
 * from the kernel's memo or a loaded checkpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface App<I, A, E, R> {
  (input: I): Effect.Effect<A, E | AppCacheError, Dfk | R>
  /** The app's name. */
  readonly appName: string
  /** The options it was made with. */
  readonly options: AppOptions<Schema.Schema<I, any, any>, Schema.Schema<A, any, any>>
}

/**
 * What is wrong with `ignoreForCache` for an input schema, judged from the schema's encoded
 * side: a key no encoded input can have, or keys given for an input that is not an object.
 * `undefined` when nothing is, or when the schema does not tell (then the call checks that
 * the encoded input is an object).
 */
const describe = (value: unknown): string =>
  typeof value === "string" ? JSON.stringify(value) : value === null ? "null" : typeof value

/**
 * Makes an app from its options and its body. Names (with versions) must be unique among the
 * apps called in one kernel: a call of a second app with the name and version of one already
 * called fails with `AppCacheError`. An empty name, or an `input` or `output` that is not a
 * `Schema`, is a programming error: `App.make` throws a `TypeError` naming the option.
 *
 * @example A memoized app
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { App, Dfk } from "effect-dfk"
 *
 * const slowDouble = App.make(
 *   {
 *     name: "slow_double",
 *     input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
 *     output: Schema.Number,
 *     cache: true,
 *     ignoreForCache: ["sleepMs"]
 *   },
 *   ({ x, sleepMs = 10 }) => Effect.sleep(sleepMs).pipe(Effect.as(x * 2))
 * )
 *
 * const program = Effect.gen(function* () {
 *   const a = yield* slowDouble({ x: 2, sleepMs: 10 })
 *   const b = yield* slowDouble({ x: 2, sleepMs: 20 }) // same key: sleepMs is ignored
 *   return [a, b]
 * }).pipe(
 *   Effect.provide(Dfk.layer({ runDir: "/tmp/effect-dfk-doc-app" })),
 *   Effect.provide(NodeContext.layer)
 * )
 * const [a, b] = await Effect.runPromise(program)
 * console.assert(a === 4 && b === 4)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <In extends Schema.Schema.Any, Out extends Schema.Schema.Any, E = never, R = never>(
  options: AppOptions<In, Out>,
  body: (input: Schema.Schema.Type<In>) => Effect.Effect<Schema.Schema.Type<Out>, E, R>
): App<
  Schema.Schema.Type<In>,
  Schema.Schema.Type<Out>,
  E,
  // The kernel provides its FileSystem to the schemas (File.Content, File.Stat).
  R | Exclude<Schema.Schema.Context<In> | Schema.Schema.Context<Out>, FileSystem.FileSystem>
> => {
  // Programming errors, so a throw (at definition time), naming the option.
  if (typeof options.name !== "string" || options.name === "") {
    throw new TypeError(`App.make: the "name" option must be a non-empty string (got ${describe(options.name)})`)
  }
  const retries = options.retries
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0)) {
    throw new TypeError(
      `App.make: the "retries" option of app ${options.name} must be a whole number, zero or more (got ${retries})`
    )
  }
  if (options.expiresAfter !== undefined && Duration.decodeUnknown(options.expiresAfter)._tag === "None") {
    throw new TypeError(
      `App.make: the "expiresAfter" option of app ${options.name} must be a duration (got ${
        describe(options.expiresAfter)
      })`
    )
  }
  for (const field of ["input", "output"] as const) {
    if (!Schema.isSchema(options[field])) {
      throw new TypeError(
        `App.make: the "${field}" option of app ${options.name} must be a Schema (got ${describe(options[field])})`
      )
    }
  }
  const spec = appSpec.make(options, body)
  // One step: the kernel and the tracer are read off the running fiber (a service lookup
  // through Effect.flatMap(Dfk, ...) costs as much as the rest of a memo hit).
  const app = (value: Schema.Schema.Type<In>) =>
    Effect.withFiberRuntime<unknown, unknown, unknown>((fiber) =>
      (Context.unsafeGet(fiber.currentContext, Dfk) as KernelService).run(spec, value, fiber.currentTracer)
    )
  registerSpec(app, spec)
  return Object.assign(app, { appName: options.name, options }) as any
}
