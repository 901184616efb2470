/**
 * Which checkpoints a kernel loads when it starts: Parsl's `checkpoint_files`.
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { allCheckpoints } from "./internal/store.ts"

// The base class, its type spelled out so that JSR's fast check needs no inference (deno publish).
const CheckpointFilesBase: Context.TagClass<CheckpointFiles, "effect-dfk/CheckpointFiles", ReadonlyArray<string>> =
  Context.Tag("effect-dfk/CheckpointFiles")<CheckpointFiles, ReadonlyArray<string>>()

/**
 * The checkpoint directories to load, in order (for a repeated key, the last entry read
 * wins). Provide it to resume; without it, a kernel with a checkpoint mode loads every
 * checkpoint under its `runDir`.
 *
 * @example Resuming from the newest checkpoint
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { App, CheckpointFiles, Dfk } from "effect-dfk"
 *
 * const square = App.make(
 *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) => Effect.succeed(x * x)
 * )
 *
 * const program = square(7).pipe(
 *   Effect.provide(Dfk.layer({ runDir: "/tmp/effect-dfk-doc-files", checkpointMode: "task_exit" })),
 *   Effect.provide(CheckpointFiles.last("/tmp/effect-dfk-doc-files")),
 *   Effect.provide(NodeContext.layer)
 * )
 * console.assert((await Effect.runPromise(program)) === 49)
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class CheckpointFiles extends CheckpointFilesBase {
  /**
   * An explicit list of checkpoint directories (Parsl's `checkpoint_files=[...]`), loaded
   * whether or not a checkpoint mode is set.
   *
   * @example Resuming from a checkpoint directory you name
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, CheckpointFiles, Dfk } from "effect-dfk"
   *
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) => Effect.succeed(x * x)
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-files-layer-" })
   *   const dir = yield* square(6).pipe(
   *     Effect.zipRight(Dfk.checkpoint),
   *     Effect.provide(Dfk.layer({ runDir, checkpointMode: "manual" }))
   *   )
   *   // No checkpoint mode in the second run: the listed directories are loaded all the same.
   *   const stats = yield* square(6).pipe(
   *     Effect.zipRight(Dfk.detailedStats),
   *     Effect.provide(Dfk.layer({ runDir })),
   *     Effect.provide(CheckpointFiles.layer([dir]))
   *   )
   *   console.assert(stats.fromCheckpoint === 1 && stats.misses === 0)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static layer(dirs: ReadonlyArray<string>): Layer.Layer<CheckpointFiles> {
    return Layer.succeed(CheckpointFiles, [...dirs])
  }

  /**
   * Every checkpoint under `runDir` (default `"runinfo"`), oldest first: Parsl's
   * `get_all_checkpoints`.
   *
   * @example Resuming from every earlier run
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Layer, Schema } from "effect"
   * import { App, CheckpointFiles, Dfk } from "effect-dfk"
   *
   * let bodyRuns = 0
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) =>
   *     Effect.sync(() => {
   *       bodyRuns++
   *       return x * x
   *     })
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-files-all-" })
   *   // Each run builds its own kernel, which closes (and writes its checkpoint) when the run ends.
   *   const run = (inputs: Array<number>, files: Layer.Layer<CheckpointFiles, never, NodeContext.NodeContext>) =>
   *     Effect.forEach(inputs, square).pipe(
   *       Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
   *       Effect.provide(files)
   *     )
   *
   *   yield* run([2], CheckpointFiles.none) // run 000 computes 2
   *   yield* run([3], CheckpointFiles.none) // run 001 computes 3
   *   bodyRuns = 0
   *   const results = yield* run([2, 3], CheckpointFiles.all(runDir))
   *   console.assert(results.join() === "4,9")
   *   console.assert(bodyRuns === 0) // both results come from checkpoints
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static all(runDir?: string): Layer.Layer<CheckpointFiles, never, FileSystem.FileSystem | Path.Path> {
    return Layer.effect(CheckpointFiles, getAllCheckpoints(runDir))
  }

  /**
   * The newest checkpoint under `runDir` (default `"runinfo"`), or nothing: Parsl's
   * `get_last_checkpoint`. Enough to resume when every run asks for what the earlier ones
   * computed (results served from a checkpoint are written again to the next one); after a
   * run that asked for less (a partial or interrupted run), the results it did not ask for
   * are only in older checkpoints, so resume from every checkpoint (the default with a
   * checkpoint mode, or `CheckpointFiles.all`) to keep them.
   *
   * @example Resuming from the newest run only
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Layer, Schema } from "effect"
   * import { App, CheckpointFiles, Dfk } from "effect-dfk"
   *
   * let bodyRuns = 0
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) =>
   *     Effect.sync(() => {
   *       bodyRuns++
   *       return x * x
   *     })
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-files-last-" })
   *   // Each run builds its own kernel, which closes (and writes its checkpoint) when the run ends.
   *   const run = (inputs: Array<number>, files: Layer.Layer<CheckpointFiles, never, NodeContext.NodeContext>) =>
   *     Effect.forEach(inputs, square).pipe(
   *       Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
   *       Effect.provide(files)
   *     )
   *
   *   yield* run([2], CheckpointFiles.none) // run 000 computes 2
   *   yield* run([3], CheckpointFiles.none) // run 001 computes 3
   *   bodyRuns = 0
   *   const results = yield* run([2, 3], CheckpointFiles.last(runDir))
   *   console.assert(results.join() === "4,9")
   *   console.assert(bodyRuns === 1) // 3 from the newest checkpoint; 2 is only in the older one, so it ran again
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static last(runDir?: string): Layer.Layer<CheckpointFiles, never, FileSystem.FileSystem | Path.Path> {
    return Layer.effect(CheckpointFiles, getLastCheckpoint(runDir))
  }

  /**
   * Load nothing, even with a checkpoint mode set.
   *
   * @example Starting afresh although checkpoints exist
   * ```ts
   * import * as FileSystem from "@effect/platform/FileSystem"
   * import { NodeContext } from "@effect/platform-node"
   * import { Effect, Schema } from "effect"
   * import { App, CheckpointFiles, Dfk } from "effect-dfk"
   *
   * let bodyRuns = 0
   * const square = App.make(
   *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
   *   (x) =>
   *     Effect.sync(() => {
   *       bodyRuns++
   *       return x * x
   *     })
   * )
   *
   * const program = Effect.scoped(Effect.gen(function* () {
   *   const fs = yield* FileSystem.FileSystem
   *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-files-none-" })
   *   const kernel = Dfk.layer({ runDir, checkpointMode: "task_exit" })
   *
   *   yield* square(2).pipe(Effect.provide(kernel))
   *   const stats = yield* square(2).pipe(
   *     Effect.zipRight(Dfk.detailedStats),
   *     Effect.provide(kernel),
   *     Effect.provide(CheckpointFiles.none)
   *   )
   *   console.assert(bodyRuns === 2 && stats.fromCheckpoint === 0 && stats.misses === 1)
   * }))
   * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
   * ```
   *
   * @since 0.1.0
   * @category layers
   */
  static readonly none: Layer.Layer<CheckpointFiles> = Layer.succeed(CheckpointFiles, [])
}

/**
 * The `<runDir>/<NNN>/checkpoint` directories that hold a `tasks.jsonl`, in numeric
 * order of run; `runDir` defaults to `"runinfo"`. Non-numeric names are ignored.
 *
 * @example Listing the checkpoints of earlier runs
 * ```ts
 * import { Effect } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { getAllCheckpoints } from "effect-dfk"
 *
 * const dirs = await Effect.runPromise(
 *   getAllCheckpoints("/tmp/effect-dfk-doc-none").pipe(Effect.provide(NodeContext.layer))
 * )
 * console.assert(Array.isArray(dirs))
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const getAllCheckpoints = (
  runDir: string = "runinfo"
): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> => allCheckpoints(runDir)

/**
 * The newest checkpoint directory under `runDir` (numerically highest run), as a
 * one-element list, or an empty list when there is none.
 *
 * @example The newest checkpoint, if any
 * ```ts
 * import { Effect } from "effect"
 * import { NodeContext } from "@effect/platform-node"
 * import { getLastCheckpoint } from "effect-dfk"
 *
 * const last = await Effect.runPromise(
 *   getLastCheckpoint("/tmp/effect-dfk-doc-none").pipe(Effect.provide(NodeContext.layer))
 * )
 * console.assert(last.length <= 1)
 * ```
 *
 * @since 0.1.0
 * @category getters
 */
export const getLastCheckpoint = (
  runDir: string = "runinfo"
): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.map(getAllCheckpoints(runDir), (all) => all.length === 0 ? [] : [all[all.length - 1]!])
