/**
 * The typed errors of effect-dfk. Every error is a `Schema.TaggedError`, so it can be
 * matched with `Effect.catchTag`, serialized, and compared structurally.
 *
 * @module
 */
import * as Schema from "effect/Schema"

/**
 * A `DfkConfig` that cannot be used: `periodic` without a period, a malformed
 * `"HH:MM:SS"` period, a negative `retries`, a `maxConcurrency` below one.
 *
 * @example Catching a bad configuration
 * ```ts
 * import { Effect } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { Dfk } from "effect-dfk"
 *
 * const program = Dfk.runDir.pipe(
 *   Effect.provide(Dfk.layer({ checkpointMode: "periodic" })),
 *   Effect.provide(NodeContext.layer),
 *   Effect.catchTag("ConfigurationError", (e) => Effect.succeed(e.reason))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()(
  "ConfigurationError",
  {
    /** The configuration field at fault, e.g. `"checkpointPeriod"`. */
    field: Schema.String,
    /** What is wrong with it, in a sentence. */
    reason: Schema.String
  }
) {
  /** @since 0.1.0 */
  override get message(): string {
    return `Invalid ${this.field}: ${this.reason}`
  }
}

/**
 * A checkpoint that cannot be loaded: a listed directory without a `tasks.jsonl`, or a
 * file that is not a checkpoint. `line` is the 1-based line at fault, or `0` when the
 * whole file is at fault (for example, when it does not exist).
 *
 * @example Reporting the line at fault
 * ```ts
 * import { Effect } from "effect"
 * import { BadCheckpoint } from "effect-dfk"
 *
 * const report = (e: BadCheckpoint) => Effect.logError(`${e.path}:${e.line}: ${e.reason}`)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BadCheckpoint extends Schema.TaggedError<BadCheckpoint>()("BadCheckpoint", {
  /** The file (or directory) at fault. */
  path: Schema.String,
  /** The 1-based line number at fault; `0` for the whole file. */
  line: Schema.Number,
  /** What is wrong, in a sentence. */
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  override get message(): string {
    if (this.line === 0) return `Bad checkpoint ${this.path}: ${this.reason}`
    const text = `Bad checkpoint ${this.path} at line ${this.line}: ${this.reason}`
    // A line of a checkpoint file: say how to get going again (nothing is dropped silently).
    const m = /^(.*)[\\/]tasks\.jsonl$/.exec(this.path)
    if (m === null) return text
    const dir = m[1]!
    return `${text}. To go on: dfk verify ${dir} lists every bad line; dfk repair ${dir} moves them to tasks.jsonl.bad`
  }
}

/**
 * A checkpoint pass that could not write its entries (read-only directory, full disk, a
 * failing store). The entries stay pending: the next successful pass writes them.
 *
 * @example Retrying a failed checkpoint
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Dfk } from "effect-dfk"
 *
 * const checkpointWithRetry = Dfk.checkpoint.pipe(
 *   Effect.retry({ schedule: Schedule.spaced("1 second"), times: 3 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointError extends Schema.TaggedError<CheckpointError>()("CheckpointError", {
  /** The file or directory that could not be written. */
  path: Schema.String,
  /** What went wrong, in a sentence. */
  reason: Schema.String,
  /** The underlying error, when there is one. */
  cause: Schema.optional(Schema.Defect),
  /**
   * How many of the append's entries, the first ones, are stored all the same (a write cut
   * short by a full disk keeps the complete lines before the cut). Absent: none; a store that
   * cannot tell leaves it out, and those entries are written again by a later pass.
   */
  written: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return `Checkpoint failed for ${this.path}: ${this.reason}`
  }
}

/**
 * An app call whose input cannot be turned into a memo key: it fails to encode with the
 * app's `input` schema, or encodes to something JSON cannot hold (NaN, Infinity,
 * `undefined` in an array, a cycle, a class instance). The body does not run.
 *
 * @example Falling back when an input cannot be hashed
 * ```ts
 * import { Effect } from "effect"
 * import type { AppCacheError } from "effect-dfk"
 *
 * const explain = (e: AppCacheError) => Effect.logWarning(`${e.app}: ${e.reason}`)
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AppCacheError extends Schema.TaggedError<AppCacheError>()("AppCacheError", {
  /** The app's name. */
  app: Schema.String,
  /** What is wrong with the input, in a sentence. */
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return `Cannot memoize a call of ${this.app}: ${this.reason}`
  }
}

/**
 * Every error `Dfk.layer` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type DfkError = ConfigurationError | BadCheckpoint | CheckpointError
