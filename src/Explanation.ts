/**
 * Why a call hits or misses (DESIGN §8): the typed answer of `Dfk.explain`, and the same
 * logic over any stored entries for tools (`dfk explain` uses it): the key; on a hit, which
 * checkpoint holds it; on a miss, the closest stored entries of that app and exactly what
 * differs.
 *
 * @module
 */
import type * as Duration from "effect/Duration"
import type { CheckpointEntry } from "./CheckpointStore.ts"
import * as internal from "./internal/explain.ts"

/**
 * One thing that differs between a stored entry and the asked call, or that keeps a stored
 * entry of the asked key from being served:
 * - `Version`: the app's version.
 * - `MissingKey` / `ExtraKey` / `Changed`: an input key the asked input lacks, one it has and
 *   the stored input lacks, a value that differs (both values); `path` starts at `input`
 *   (`input.x`, `input.opts.depth`, `input["a b"]`).
 * - `Tombstoned`: the key was invalidated (`dfk invalidate`, `Dfk.invalidate`), by the
 *   tombstone in `checkpoint`.
 * - `HashMismatch`: the stored hash is not the key of the entry's app, version and input
 *   (edited or damaged), so it is never served.
 * - `Undecodable`: the stored result no longer decodes with the app's output schema.
 * - `Expired`: the entry is older than the app's `expiresAfter` (`ExplainOptions.expiresAfter`).
 * - `FileChanged`: a file of the key (`File.Content`, `File.Stat`) is not as it was: in the
 *   input (`path` is the file's; `stored` and `actual` its encoded forms then and now), or in
 *   the stored result (`actual` says what happened: changed, gone).
 *
 * @since 0.2.0
 * @category models
 */
export type Difference =
  | { readonly _tag: "Version"; readonly stored: string | null; readonly asked: string | null }
  | { readonly _tag: "MissingKey"; readonly path: string; readonly stored: unknown }
  | { readonly _tag: "ExtraKey"; readonly path: string; readonly asked: unknown }
  | { readonly _tag: "Changed"; readonly path: string; readonly stored: unknown; readonly asked: unknown }
  | { readonly _tag: "Tombstoned"; readonly checkpoint: string; readonly time: string }
  | { readonly _tag: "HashMismatch"; readonly reason: string }
  | { readonly _tag: "Undecodable"; readonly reason: string }
  | { readonly _tag: "Expired"; readonly time: string; readonly expiresAfter: string }
  | { readonly _tag: "FileChanged"; readonly path: string; readonly stored: unknown; readonly actual: unknown }

/**
 * A stored entry of the app, as a candidate for the asked call: its key, where it is, what it
 * holds, and every difference from the asked call (`[]`: none that the key shows).
 *
 * @since 0.2.0
 * @category models
 */
export interface Candidate {
  /** Its memo key. */
  readonly hash: string
  /** The checkpoint dir that holds it (its last result; a tombstoned key: that result, else the tombstone). */
  readonly checkpoint: string
  /** When it was computed, ISO-8601. */
  readonly time: string
  /** Its app version. */
  readonly version: string | null
  /** Its stored (encoded) input. */
  readonly input: unknown
  /** Its stored (encoded) result; `undefined` when only a tombstone is left. */
  readonly result: unknown
  /** What differs, version first, then input paths in key order, then what keeps it from being served. */
  readonly differences: ReadonlyArray<Difference>
}

/**
 * A call whose key is answered.
 *
 * @since 0.2.0
 * @category models
 */
export interface ExplanationHit {
  /** A hit. */
  readonly _tag: "Hit"
  /** The memo key. */
  readonly key: string
  /** The app's name. */
  readonly app: string
  /** The app's version. */
  readonly version: string | null
  /** The encoded input as it goes into the key (without the `ignoreForCache` keys). */
  readonly input: unknown
  /** The checkpoint dir whose entry answers it; `null`: this run computed it (the in-run memo answers it). */
  readonly checkpoint: string | null
  /** When the answering entry was computed; `null` with `checkpoint: null`. */
  readonly time: string | null
  /** The answering entry's (encoded) result; `undefined` with `checkpoint: null`. */
  readonly result: unknown
  /** Other checkpoint dirs that hold a result for the key (the last one read wins). */
  readonly alsoIn: ReadonlyArray<string>
}

/**
 * A call whose key no stored entry answers.
 *
 * @since 0.2.0
 * @category models
 */
export interface ExplanationMiss {
  /** A miss. */
  readonly _tag: "Miss"
  /** The memo key. */
  readonly key: string
  /** The app's name. */
  readonly app: string
  /** The app's version. */
  readonly version: string | null
  /** The encoded input as it goes into the key (without the `ignoreForCache` keys). */
  readonly input: unknown
  /** How many keys of the app are stored (tombstoned ones not counted). */
  readonly stored: number
  /** The closest stored keys of the app: the asked key first when it is stored (tombstoned or damaged), then the fewest differences, then the newest. */
  readonly closest: ReadonlyArray<Candidate>
}

/**
 * What `Dfk.explain` (or `explain`) says of a call's key.
 *
 * @since 0.2.0
 * @category models
 */
export type Explanation = ExplanationHit | ExplanationMiss

/**
 * The asked call, as its key is made: the app's name and version, the encoded input less
 * its `ignoreForCache` keys (`CheckpointFile.keyInput`), and its key (`Memo.key`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Asked {
  /** The app's name. */
  readonly app: string
  /** The app's version, or `null`. */
  readonly version: string | null
  /** The encoded input, as it goes into the key. */
  readonly input: unknown
  /** Its memo key. */
  readonly key: string
}

/**
 * A stored entry (a tombstone too) with the checkpoint dir it was read from.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoredEntry {
  /** The entry as stored. */
  readonly entry: CheckpointEntry
  /** The checkpoint dir it was read from. */
  readonly checkpoint: string
}

/**
 * Options of `explain` and `Dfk.explain`.
 *
 * @since 0.2.0
 * @category models
 */
export interface ExplainOptions {
  /** How many of the closest stored keys a miss lists; default 3. */
  readonly closest?: number | undefined
  /**
   * Entries older than this (by their `time`) are not served, as with `App.make`'s
   * `expiresAfter`; default none (`Dfk.explain` uses the app's own).
   */
  readonly expiresAfter?: Duration.DurationInput | undefined
  /** The time to measure ages against, in milliseconds since the epoch; default now. */
  readonly now?: number | undefined
}

/**
 * Explains the key of `asked` against stored entries given in load order (for a repeated key
 * the last entry wins, as when the kernel loads them): a hit when the key's last entry is a
 * result whose hash is its own key, else a miss with the closest stored keys of the app. The
 * logic of `Dfk.explain`, for entries read by a tool (`dfk explain` reads them from a run dir).
 *
 * @example Why a call misses
 * ```ts
 * import { Effect } from "effect"
 * import { Explanation, Memo } from "effect-dfk"
 *
 * const key = (x: number) => Effect.runSync(Memo.key({ name: "sq", input: { x } }))
 * const stored = { hash: key(1), app: "sq", version: null, input: { x: 1 }, result: 1, time: "2026-01-01T00:00:00.000Z" }
 * const entries = [{ entry: stored, checkpoint: "runinfo/000/checkpoint" }]
 *
 * const hit = Explanation.explain({ app: "sq", version: null, input: { x: 1 }, key: key(1) }, entries)
 * console.assert(hit._tag === "Hit" && hit.checkpoint === "runinfo/000/checkpoint")
 *
 * const miss = Explanation.explain({ app: "sq", version: null, input: { x: 2 }, key: key(2) }, entries)
 * console.assert(miss._tag === "Miss" && miss.closest[0]!.differences[0]!._tag === "Changed")
 * console.assert(Explanation.describe(miss).includes("input.x: changed: stored 1, asked 2"))
 * ```
 *
 * @since 0.2.0
 * @category explaining
 */
export const explain: (asked: Asked, entries: Iterable<StoredEntry>, options?: ExplainOptions) => Explanation =
  internal.explainEntries

/**
 * One line describing an explanation, as `explainMisses` logs it: a hit and where, or a
 * miss and what differs in the closest stored entry.
 *
 * @example The line of a tombstoned key
 * ```ts
 * import { Effect } from "effect"
 * import { Explanation, Memo } from "effect-dfk"
 *
 * const key = Effect.runSync(Memo.key({ name: "sq", input: 3 }))
 * const entry = { hash: key, app: "sq", version: null, input: 3, result: 9, time: "2026-01-01T00:00:00.000Z" }
 * const tombstone = { ...entry, result: undefined, deleted: true as const, time: "2026-01-02T00:00:00.000Z" }
 * const x = Explanation.explain({ app: "sq", version: null, input: 3, key }, [
 *   { entry, checkpoint: "runinfo/000/checkpoint" },
 *   { entry: tombstone, checkpoint: "runinfo/001/checkpoint" }
 * ])
 * console.assert(x._tag === "Miss" && Explanation.describe(x).includes("invalidated by a tombstone in runinfo/001/checkpoint"))
 * ```
 *
 * @since 0.2.0
 * @category explaining
 */
export const describe: (explanation: Explanation) => string = internal.describeExplanation

/**
 * One line describing a difference, e.g. `input.x: changed: stored 1, asked 2`.
 *
 * @example Describing differences
 * ```ts
 * import { Explanation } from "effect-dfk"
 *
 * console.assert(
 *   Explanation.describeDifference({ _tag: "Version", stored: "1", asked: "2" }) === `version: stored "1", asked "2"`
 * )
 * console.assert(
 *   Explanation.describeDifference({ _tag: "MissingKey", path: "input.lang", stored: "en" }) ===
 *     `input.lang: missing from the asked input (stored "en")`
 * )
 * ```
 *
 * @since 0.2.0
 * @category explaining
 */
export const describeDifference: (difference: Difference) => string = internal.describeDifference
