/**
 * Run directories: each kernel run gets `<runDir>/000`, `001`, … `999`, `1000`, …, allocated
 * atomically, and writes its checkpoint to `<runDir>/<NNN>/checkpoint`. For tools that list
 * runs or add one (`dfk runs`, `dfk compact`); `getAllCheckpoints` and `getLastCheckpoint`
 * list the checkpoints among them.
 *
 * @module
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as runDirs from "./internal/runDirs.ts"

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
 * The run directories under `runDir` (names of digits only; anything else there is not a
 * run), in ascending numeric order; none when `runDir` does not exist or cannot be read.
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
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const out: Array<Run> = []
    for (const { n, name } of yield* runDirs.runEntries(runDir)) {
      const dir = path.join(runDir, name)
      const info = yield* Effect.option(fs.stat(dir))
      if (info._tag === "None" || info.value.type !== "Directory") continue
      out.push({ name, number: n, path: dir, checkpointDir: path.join(dir, "checkpoint") })
    }
    return out
  })

/**
 * Creates the next run directory under `runDir` (creating `runDir` too if needed) and
 * returns its path: one past the highest number there, at least three digits. Atomic: two
 * processes allocating at once never get the same directory (the one that loses the race
 * takes the next number). This is how each kernel run gets its own directory.
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
export const allocate = (runDir: string): Effect.Effect<string, PlatformError, FileSystem.FileSystem | Path.Path> =>
  runDirs.allocate(runDir)
