/**
 * Run directories: each kernel run gets `<runDir>/000`, `001`, … `999`, `1000`, …, allocated
 * atomically, and writes its checkpoint to `<runDir>/<NNN>/checkpoint`. For tools that list
 * runs or add one (`dfk runs`, `dfk compact`); `getAllCheckpoints` and `getLastCheckpoint`
 * list the checkpoints among them.
 *
 * @module
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type { CheckpointError } from "./errors.ts"
import * as store from "./internal/store.ts"

/**
 * One run directory under a `runDir`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Run {
  /** The directory's name, e.g. `"003"`: the run's id. */
  readonly name: string
  /** The run's number, e.g. `3`. */
  readonly number: number
  /** The run directory, e.g. `runinfo/003`. */
  readonly path: string
  /** Where the run's checkpoint goes, e.g. `runinfo/003/checkpoint` (it may hold none). */
  readonly checkpointDir: string
}

/**
 * The runs under `runDir` in ascending numeric order: in the provided `CheckpointStore` when
 * it keeps runs of its own (`StoreRuns`), else the run directories (names of digits only;
 * anything else there is not a run); none when `runDir` does not exist or cannot be read.
 *
 * @example Listing the runs of a run directory
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { RunDirs } from "effect-dfk"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-runs-" })
 *   for (const name of ["000", "002", "010", "notes"]) yield* fs.makeDirectory(path.join(runDir, name))
 *
 *   const runs = yield* RunDirs.list(runDir)
 *   console.assert(runs.map((run) => run.number).join() === "0,2,10")
 *   console.assert(runs[2]!.checkpointDir === path.join(runDir, "010", "checkpoint"))
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category getters
 */
export const list = (runDir: string): Effect.Effect<Array<Run>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.gen(function*() {
    const path = yield* Path.Path
    const runs = yield* Effect.flatMap(store.currentStore, store.runsOf)
    return (yield* runs.list(runDir)).map((run): Run => {
      const name = path.basename(run)
      return { name, number: Number(name), path: run, checkpointDir: path.join(run, "checkpoint") }
    })
  }))

/**
 * Makes the next run under `runDir` and returns its path: one past the highest number there,
 * at least three digits. Atomic: two processes allocating at once never get the same run (the
 * one that loses the race takes the next number). This is how each kernel run gets its own
 * directory. In the provided `CheckpointStore` when it keeps runs of its own (memory, SQL: no
 * folder is made), else a run directory (`runDir` created too if needed); a failure is a
 * `CheckpointError` naming `runDir`.
 *
 * @example Two new runs
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { RunDirs } from "effect-dfk"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const runDir = path.join(yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-alloc-" }), "runinfo")
 *   const [first, second] = yield* Effect.all([RunDirs.allocate(runDir), RunDirs.allocate(runDir)])
 *   console.assert(first === path.join(runDir, "000") && second === path.join(runDir, "001"))
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const allocate = (runDir: string): Effect.Effect<string, CheckpointError, FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.flatMap(Effect.flatMap(store.currentStore, store.runsOf), (runs) => runs.allocate(runDir)))
