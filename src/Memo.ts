/**
 * The memo key: how effect-dfk decides that two app calls are the same call.
 *
 * `key = sha256(canonicalJson([name, version ?? null, encodedInput minus ignoreForCache keys]))`,
 * in lowercase hex, with RFC 8785 (JCS) canonical JSON, so any language can recompute it.
 *
 * @module
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { AppCacheError } from "./errors.ts"
import * as internal from "./internal/canonical.ts"

/**
 * What goes into a memo key.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyInput {
  /** The app's name. */
  readonly name: string
  /** The app's version; default `null`. */
  readonly version?: string | null | undefined
  /** The app's input, already encoded with its `input` schema (plain JSON data). */
  readonly input: unknown
  /** Top-level keys of `input` left out of the key; default none. */
  readonly ignoreForCache?: ReadonlyArray<string> | undefined
}

/**
 * Serializes JSON data as RFC 8785 canonical JSON (keys sorted by UTF-16 code units,
 * ECMAScript number form, no whitespace). Returns `Left` with the reason when the value
 * has no JSON form (NaN, Infinity, `undefined` in an array, a cycle, a class instance).
 *
 * @example Canonical form sorts keys
 * ```ts
 * import { Either } from "effect"
 * import { Memo } from "effect-dfk"
 *
 * const json = Memo.canonicalJson({ b: 1, a: [true, null, "x"] })
 * console.assert(Either.getOrThrow(json) === '{"a":[true,null,"x"],"b":1}')
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const canonicalJson = (value: unknown): Either.Either<string, string> => {
  const json = internal.tryCanonicalJson(value)
  return typeof json === "string" ? Either.right(json) : Either.left(json.error)
}

/**
 * Computes the memo key of an encoded input, exactly as the kernel does. Fails with
 * `AppCacheError` when the input has no JSON form.
 *
 * @example Recomputing a key by hand
 * ```ts
 * import { Effect } from "effect"
 * import { Memo } from "effect-dfk"
 *
 * const key = Effect.runSync(Memo.key({ name: "slow_double", input: { x: 1 } }))
 * console.assert(key.length === 64)
 * ```
 *
 * @since 0.1.0
 * @category hashing
 */
export const key = (options: KeyInput): Effect.Effect<string, AppCacheError> =>
  Effect.suspend(() => {
    const ignore = options.ignoreForCache ?? []
    const json = canonicalJson(internal.withoutKeys(options.input, ignore))
    if (Either.isLeft(json)) {
      return Effect.fail(new AppCacheError({ app: options.name, reason: `The input has no JSON form: ${json.left}` }))
    }
    return Effect.succeed(internal.keyFromJson(options.name, options.version ?? null, json.right))
  })

/**
 * What the integrity rule needs of a checkpoint entry: its hash and what the hash must be the
 * memo key of.
 *
 * @since 0.2.0
 * @category models
 */
export interface KeyedEntry {
  /** The hash the entry claims: the key it is looked up by. */
  readonly hash: string
  /** The app's name. */
  readonly app: string
  /** The app's version, or `null`. */
  readonly version: string | null
  /** The encoded input that went into the key. */
  readonly input: unknown
}

/**
 * The integrity rule, as the kernel applies it before it serves a loaded entry and as
 * `dfk verify`, `dfk compact` and `dfk repair` apply it: an entry's `hash` must be the memo
 * key of its own `app`, `version` and `input`. Returns `Some` with the reason when it is not
 * (a hand-edited or damaged line); such an entry is never served.
 *
 * @example An edited hash is caught
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Memo } from "effect-dfk"
 *
 * const hash = Effect.runSync(Memo.key({ name: "sq", input: { x: 3 } }))
 * console.assert(Option.isNone(Memo.checkEntry({ hash, app: "sq", version: null, input: { x: 3 } })))
 * console.assert(Option.isSome(Memo.checkEntry({ hash, app: "sq", version: null, input: { x: 4 } })))
 * ```
 *
 * @since 0.2.0
 * @category hashing
 */
export const checkEntry = (entry: KeyedEntry): Option.Option<string> =>
  Option.fromNullable(internal.entryKeyProblem(entry))
