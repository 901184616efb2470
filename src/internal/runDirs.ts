/**
 * Run directories: `runDir/000`, `001`, … `999`, `1000`, allocated atomically.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import type { PlatformError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import { CheckpointStore } from "../CheckpointStore.ts"
import * as fileStore from "./fileStore.ts"

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
        Effect.catchTag("SystemError", (e) => e.reason === "AlreadyExists" && attempt < 10_000 ? Effect.succeed(false) : Effect.fail(e))
      )
      if (made) return dir
      next++
    }
  })

/**
 * The `<runDir>/<NNN>/checkpoint` directories that hold a checkpoint, in numeric order.
 * Uses the provided `CheckpointStore` to tell, or the JSON Lines files by default.
 */
export const allCheckpoints = (
  runDir: string
): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const store = yield* Effect.serviceOption(CheckpointStore)
    const exists = store._tag === "Some" ? store.value.exists : (yield* Effect.scoped(fileStore.make)).exists
    const entries = yield* runEntries(runDir)
    const out: Array<string> = []
    for (const { name } of entries) {
      const dir = path.join(runDir, name, "checkpoint")
      if (yield* exists(dir)) out.push(dir)
    }
    return out
  })
