/**
 * The typed errors of effect-dfk. Every error is a `Schema.TaggedError`, so it can be
 * matched with `Effect.catchTag`, serialized, and compared structurally.
 *
 * @module
 */
import * as Schema from "effect/Schema"

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const ConfigurationErrorBase: Schema.TaggedErrorClass<ConfigurationError, "ConfigurationError", {
  readonly _tag: Schema.tag<"ConfigurationError">
  /** The configuration field at fault, e.g. `"checkpointPeriod"`. */
  readonly field: typeof Schema.String
  /** What is wrong with it, in a sentence. */
  readonly reason: typeof Schema.String
}> = Schema.TaggedError<ConfigurationError>()("ConfigurationError", { field: Schema.String, reason: Schema.String })

/**
 * A `DfkConfig` that cannot be used: `periodic` without a period, a malformed
 * `"HH:MM:SS"` period, a negative `retries`, a `maxConcurrency` below one.
 *
 * @example Catching a bad configuration
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { ConfigurationError, Dfk } from "effect-dfk"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-config-" })
 *   const error = yield* Dfk.runDir.pipe(
 *     Effect.provide(Dfk.layer({ runDir, checkpointMode: "periodic" })), // no checkpointPeriod
 *     Effect.catchTag("ConfigurationError", (e) => Effect.succeed(e))
 *   )
 *   console.assert(error instanceof ConfigurationError && error.field === "checkpointPeriod")
 *   console.assert(error instanceof ConfigurationError && error.reason.includes("checkpointPeriod"))
 *   console.assert((yield* fs.readDirectory(runDir)).length === 0) // no run directory was made
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError extends ConfigurationErrorBase {
  /**
   * The error's message, on one line, naming what failed and why.
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid ${this.field}: ${this.reason}`
  }
}

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const BadCheckpointBase: Schema.TaggedErrorClass<BadCheckpoint, "BadCheckpoint", {
  readonly _tag: Schema.tag<"BadCheckpoint">
  /** The file (or directory) at fault. */
  readonly path: typeof Schema.String
  /** The 1-based line number at fault; `0` for the whole file. */
  readonly line: typeof Schema.Number
  /** What is wrong, in a sentence. */
  readonly reason: typeof Schema.String
}> = Schema.TaggedError<BadCheckpoint>()("BadCheckpoint", {
  path: Schema.String,
  line: Schema.Number,
  reason: Schema.String
})

/**
 * A checkpoint that cannot be loaded: a listed directory without a `tasks.jsonl`, or a
 * file that is not a checkpoint. `line` is the 1-based line at fault, or `0` when the
 * whole file is at fault (for example, when it does not exist).
 *
 * @example Reporting the line at fault
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { BadCheckpoint, CheckpointFiles, Dfk } from "effect-dfk"
 *
 * const report = (e: BadCheckpoint) => Effect.logError(`${e.path}:${e.line}: ${e.reason}`)
 * const resumeFrom = (dir: string) =>
 *   Dfk.runDir.pipe(
 *     Effect.provide(Dfk.layer({ runDir: path.join(dir, "runinfo") })),
 *     Effect.provide(CheckpointFiles.layer([dir])),
 *     Effect.catchTag("BadCheckpoint", (e) => Effect.as(report(e), e))
 *   )
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   // A checkpoint whose second line is not JSON.
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-bad-" })
 *   const file = path.join(dir, "tasks.jsonl")
 *   const entry = { v: 1, hash: "a".repeat(64), app: "square", version: null, input: 3, result: 9, time: "2026-01-01T00:00:00.000Z" }
 *   yield* fs.writeFileString(file, JSON.stringify(entry) + "\nnot json\n")
 *   const corrupt = yield* resumeFrom(dir)
 *   console.assert(corrupt instanceof BadCheckpoint && corrupt.path === file && corrupt.line === 2)
 *   console.assert(corrupt instanceof BadCheckpoint && corrupt.reason === "the line is not valid JSON")
 *
 *   // A listed directory without a checkpoint: the whole file is at fault, line 0.
 *   yield* fs.remove(file)
 *   const missing = yield* resumeFrom(dir)
 *   console.assert(missing instanceof BadCheckpoint && missing.path === file && missing.line === 0)
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class BadCheckpoint extends BadCheckpointBase {
  /**
   * The error's message, on one line, naming what failed and why.
   * @since 0.1.0
   */
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

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const CheckpointErrorBase: Schema.TaggedErrorClass<CheckpointError, "CheckpointError", {
  readonly _tag: Schema.tag<"CheckpointError">
  /** The file or directory that could not be written. */
  readonly path: typeof Schema.String
  /** What went wrong, in a sentence. */
  readonly reason: typeof Schema.String
  /** The underlying error, when there is one. */
  readonly cause: Schema.optional<typeof Schema.Defect>
  /**
   * How many of the append's entries, the first ones, are stored all the same (a write cut
   * short by a full disk keeps the complete lines before the cut). Absent: none; a store that
   * cannot tell leaves it out, and those entries are written again by a later pass.
   */
  readonly written: Schema.optional<typeof Schema.Number>
}> = Schema.TaggedError<CheckpointError>()("CheckpointError", {
  path: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect),
  written: Schema.optional(Schema.Number)
})

/**
 * A checkpoint pass that could not write its entries (read-only directory, full disk, a
 * failing store). The entries stay pending: the next successful pass writes them.
 *
 * @example Retrying a failed checkpoint
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Schedule, Schema } from "effect"
 * import { App, CheckpointError, Dfk } from "effect-dfk"
 *
 * const square = App.make(
 *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) => Effect.succeed(x * x)
 * )
 *
 * const failures: Array<CheckpointError> = []
 * const run = (runDir: string) =>
 *   Effect.gen(function* () {
 *     const fs = yield* FileSystem.FileSystem
 *     yield* square(3) // pending until the next checkpoint
 *     // Something in the way: a directory where the checkpoint file goes.
 *     const { checkpointDir } = yield* Dfk
 *     const obstacle = path.join(checkpointDir, "tasks.jsonl")
 *     yield* fs.makeDirectory(obstacle, { recursive: true })
 *
 *     const checkpointWithRetry = Dfk.checkpoint.pipe(
 *       Effect.tapError((e) => {
 *         failures.push(e)
 *         return Effect.orDie(fs.remove(obstacle, { recursive: true })) // the way is cleared before the next attempt
 *       }),
 *       Effect.retry({ schedule: Schedule.spaced("5 millis"), times: 3 })
 *     )
 *     const dir = yield* checkpointWithRetry
 *     return { dir, stats: yield* Dfk.stats }
 *   }).pipe(Effect.provide(Dfk.layer({ runDir, checkpointMode: "manual" })))
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-checkpoint-error-" })
 *   const { dir, stats } = yield* run(runDir)
 *   const file = path.join(dir, "tasks.jsonl")
 *   console.assert(failures.length === 1 && failures[0] instanceof CheckpointError)
 *   console.assert(failures[0]!.path === file && failures[0]!.written === undefined) // nothing of it stored
 *   // The entry stayed pending through the failure; the retry wrote it.
 *   console.assert(stats.checkpointed === 1 && stats.pending === 0 && (yield* fs.stat(file)).type === "File")
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointError extends CheckpointErrorBase {
  /**
   * The error's message, on one line, naming what failed and why.
   * @since 0.1.0
   */
  override get message(): string {
    return `Checkpoint failed for ${this.path}: ${this.reason}`
  }
}

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const AppCacheErrorBase: Schema.TaggedErrorClass<AppCacheError, "AppCacheError", {
  readonly _tag: Schema.tag<"AppCacheError">
  /** The app's name. */
  readonly app: typeof Schema.String
  /** What is wrong with the input, in a sentence. */
  readonly reason: typeof Schema.String
}> = Schema.TaggedError<AppCacheError>()("AppCacheError", { app: Schema.String, reason: Schema.String })

/**
 * An app call whose input cannot be turned into a memo key: it fails to encode with the
 * app's `input` schema, or encodes to something JSON cannot hold (NaN, Infinity,
 * `undefined` in an array, a cycle, a class instance). The body does not run.
 *
 * @example Falling back when an input cannot be hashed
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Schema } from "effect"
 * import { App, AppCacheError, Dfk } from "effect-dfk"
 *
 * let bodyRuns = 0
 * const half = App.make(
 *   { name: "half", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) =>
 *     Effect.sync(() => {
 *       bodyRuns++
 *       return x / 2
 *     })
 * )
 * const explain = (e: AppCacheError) => Effect.logWarning(`${e.app}: ${e.reason}`)
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-app-cache-" })
 *   // NaN has no JSON form, so the call has no memo key: it fails, and the body does not run.
 *   const error = yield* half(NaN).pipe(
 *     Effect.catchTag("AppCacheError", (e) => Effect.as(explain(e), e)),
 *     Effect.provide(Dfk.layer({ runDir }))
 *   )
 *   console.assert(error instanceof AppCacheError && error.app === "half")
 *   console.assert(error instanceof AppCacheError && error.reason.startsWith("The input has no JSON form"))
 *   console.assert(bodyRuns === 0)
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class AppCacheError extends AppCacheErrorBase {
  /**
   * The error's message, on one line, naming what failed and why.
   * @since 0.1.0
   */
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
