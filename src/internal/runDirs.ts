/**
 * Run directories on the file system: `runDir/000`, `001`, … `999`, `1000`, allocated
 * atomically (the runs of the file store, and of stores that keep no runs of their own).
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type { StoreRuns } from "../CheckpointStore.ts"
import { CheckpointError } from "../errors.ts"
import { reasonOf } from "./messages.ts"

const NUMERIC = /^[0-9]+$/

/** A numeric entry of a run directory. */
export interface RunEntry {
  readonly name: string
  readonly n: number
}

/** The numeric names under `runDir` (files too), in ascending numeric order; none if it does not exist. */
export const runEntries = (runDir: string): Effect.Effect<Array<RunEntry>, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.readDirectory(runDir).pipe(
      Effect.map((names) =>
        names.filter((name) => NUMERIC.test(name)).map((name) => ({ name, n: Number(name) })).sort((a, b) =>
          a.n - b.n || (a.name < b.name ? -1 : 1)
        )
      ),
      Effect.orElseSucceed(() => [])
    ))

/** The name of run number `n`: at least three digits. */
export const runName = (n: number): string => String(n).padStart(3, "0")

/**
 * Creates the next run directory under `runDir` and returns its path. `makeDirectory`
 * without `recursive` fails when the directory exists, so two processes starting at
 * once cannot get the same one: the loser tries the next number.
 */
export const allocate = (runDir: string): Effect.Effect<string, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    yield* fs.makeDirectory(runDir, { recursive: true })
    const entries = yield* runEntries(runDir)
    let next = entries.length === 0 ? 0 : entries[entries.length - 1].n + 1
    for (let attempt = 0;; attempt++) {
      const dir = path.join(runDir, runName(next))
      const made = yield* fs.makeDirectory(dir).pipe(
        Effect.as(true),
        Effect.catchTag(
          "SystemError",
          (e) => e.reason === "AlreadyExists" && attempt < 10_000 ? Effect.succeed(false) : Effect.fail(e)
        )
      )
      if (made) return dir
      next++
    }
  })

/**
 * The run directories under `runDir` (numeric names that are directories, or that cannot be
 * looked at: a run that cannot be read is listed, so that loading it says why), oldest first.
 */
export const listRuns = (runDir: string): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const out: Array<string> = []
    for (const { name } of yield* runEntries(runDir)) {
      const dir = path.join(runDir, name)
      const info = yield* Effect.option(fs.stat(dir))
      if (info._tag === "None" || info.value.type === "Directory") out.push(dir)
    }
    return out
  })

/** Runs as folders through `fs` and `path`: the runs of the file store (`StoreRuns`). */
export const fileRuns = (fs: FileSystem.FileSystem, path: Path.Path): StoreRuns => {
  const provide = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>) =>
    effect.pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))
  return {
    list: (runDir) => provide(listRuns(runDir)),
    allocate: (runDir) =>
      provide(allocate(runDir)).pipe(
        Effect.mapError((cause) =>
          new CheckpointError({ path: runDir, reason: `Cannot create a run directory: ${reasonOf(cause)}`, cause })
        )
      )
  }
}
