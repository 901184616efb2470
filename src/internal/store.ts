/**
 * The store a kernel (or a listing of checkpoints) works with: the `CheckpointStore` in the
 * context, else the JSON Lines files; its runs (its own, or folders); the checkpoints under a
 * `runDir`; and how the kernel's encoded entries reach it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { CheckpointStore } from "../CheckpointStore.ts"
import type {
  AppendOptions,
  CheckpointEntry,
  CheckpointStoreService,
  EncodedEntry,
  StoreRuns
} from "../CheckpointStore.ts"
import type { CheckpointError } from "../errors.ts"
import * as fileStore from "./fileStore.ts"
import { fileRuns } from "./runDirs.ts"

/** The provided `CheckpointStore`, else a JSON Lines store for the current scope. */
export const currentStore: Effect.Effect<
  CheckpointStoreService,
  never,
  FileSystem.FileSystem | Path.Path | Scope.Scope
> = Effect.flatMap(
  Effect.serviceOption(CheckpointStore),
  (store) => Option.isSome(store) ? Effect.succeed(store.value) : fileStore.make
)

/** A store's runs: its own, or folders through the platform's `FileSystem`. */
export const runsOf = (
  store: CheckpointStoreService
): Effect.Effect<StoreRuns, never, FileSystem.FileSystem | Path.Path> =>
  store.runs !== undefined
    ? Effect.succeed(store.runs)
    : Effect.zipWith(FileSystem.FileSystem, Path.Path, (fs, path) => fileRuns(fs, path))

/**
 * The checkpoint dirs (`<run>/checkpoint`) of the runs under `runDir` that hold a checkpoint,
 * oldest first, in the provided store (the JSON Lines files by default).
 */
export const allCheckpoints = (
  runDir: string
): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.flatMap(currentStore, (store) => checkpointsOf(store, runDir)))

/** The checkpoint dirs of the runs under `runDir` that hold a checkpoint in `store`, oldest first. */
export const checkpointsOf = (
  store: CheckpointStoreService,
  runDir: string
): Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const runs = yield* runsOf(store)
    const out: Array<string> = []
    for (const run of yield* runs.list(runDir)) {
      const dir = path.join(run, "checkpoint")
      if (yield* store.exists(dir)) out.push(dir)
    }
    return out
  })

/** The entry object of an encoded entry (its texts parsed), for a store without `appendEncoded`. */
export const decodedEntry = (e: EncodedEntry): CheckpointEntry =>
  e.deleted === true
    ? {
      hash: e.hash,
      app: e.app,
      version: e.version,
      input: JSON.parse(e.input),
      result: undefined,
      time: e.time,
      deleted: true
    }
    : ({
      hash: e.hash,
      app: e.app,
      version: e.version,
      input: JSON.parse(e.input),
      result: JSON.parse(e.result),
      time: e.time
    } satisfies CheckpointEntry)

/** How encoded entries are appended to `store`: as they are, or parsed into entry objects. */
export const appendEncodedTo = (store: CheckpointStoreService) => {
  const appendEncoded = store.appendEncoded
  return appendEncoded !== undefined
    ? (
      dir: string,
      entries: ReadonlyArray<EncodedEntry>,
      options: AppendOptions
    ): Effect.Effect<void, CheckpointError> => appendEncoded(dir, entries, options)
    : (
      dir: string,
      entries: ReadonlyArray<EncodedEntry>,
      options: AppendOptions
    ): Effect.Effect<void, CheckpointError> =>
      Effect.suspend(() => store.append(dir, entries.map(decodedEntry), options))
}
