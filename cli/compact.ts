/**
 * `dfk compact <runDir> [--out DIR]`: merges every checkpoint under `runDir` (numeric run
 * order, the last entry of a key wins, as when loading) into one new checkpoint dir,
 * written to a temporary path and renamed into place. Entries the library would refuse to
 * serve (`Memo.checkEntry`: a hash that is not the memo key of the entry's app, version and
 * input) are dropped, and counted.
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CheckpointFile, CheckpointStore, Memo, RunDirs } from "../mod.ts"
import type { CheckpointEntry } from "../mod.ts"
import type { CliError } from "./common.ts"
import {
  CliStore,
  formatBytes,
  jsonLinesBytes,
  loadCheckpoint,
  loadRunDir,
  printLines,
  usageError,
  writeFailed
} from "./common.ts"

/**
 * What `compact` did.
 *
 * @since 0.1.0
 */
export interface Compaction {
  /** The checkpoint dirs merged, in order. */
  readonly sources: ReadonlyArray<{ readonly dir: string; readonly entries: number }>
  /** Entries read, all sources together. */
  readonly before: number
  /** Entries in the new checkpoint (one per key). */
  readonly after: number
  /**
   * Entries read that the library would refuse to serve (`Memo.checkEntry` fails: the hash
   * is not the memo key of their app, version and input), none of which is written.
   *
   * @since 0.2.0
   */
  readonly dropped: number
  /** The new checkpoint dir, or `null` when there was nothing to compact. */
  readonly out: string | null
  /** Size of the new `tasks.jsonl`; in a SQL store, the size its entries would have as one. */
  readonly bytes: number
}

/**
 * Merges every checkpoint under `runDir` into a new checkpoint dir: `out`, or a new run dir
 * `<runDir>/<NNN>/checkpoint` (so `CheckpointFiles.last` and `.all` pick it up). With a SQL
 * store, the new checkpoint is written in one transaction of the store's `append` (there is
 * no temporary folder), the new run allocated by the store.
 *
 * @since 0.1.0
 */
export const compact = (
  runDir: string,
  out: Option.Option<string>
): Effect.Effect<Compaction, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const store = yield* CheckpointStore
    const { dirs, entries } = yield* loadRunDir(runDir)
    const sources = dirs.map((dir) => ({ dir, entries: entries.filter((l) => l.dir === dir).length }))
    if (dirs.length === 0) return { sources, before: 0, after: 0, dropped: 0, out: null, bytes: 0 }
    // Last entry wins; the merged file lists keys in the order of their winning entries. A
    // refused entry takes part in that, as when loading: the library reads every entry (the
    // last of a key wins) and refuses a bad one when it would serve it, so a key whose last
    // entry is bad is served by no entry, and the compacted checkpoint holds none for it.
    const merged = new Map<string, CheckpointEntry>()
    let dropped = 0
    for (const { entry } of entries) {
      merged.delete(entry.hash)
      merged.set(entry.hash, entry)
      if (Option.isSome(Memo.checkEntry(entry))) dropped++
    }
    for (const [hash, entry] of merged) if (Option.isSome(Memo.checkEntry(entry))) merged.delete(hash)
    const before = entries.length

    if ((yield* CliStore).sql) {
      const { name } = yield* CliStore
      let target: string
      if (Option.isSome(out)) {
        target = path.normalize(out.value).replace(/(.)\/+$/, "$1")
        if (yield* store.exists(target)) {
          return yield* usageError(`The output ${out.value} already exists in the store ${name}`)
        }
      } else {
        const runs = store.runs
        if (runs === undefined) return yield* usageError(`The store ${name} keeps no runs`)
        const run = yield* runs.allocate(runDir).pipe(Effect.mapError(writeFailed(`a new run under ${runDir}`)))
        target = path.join(run, "checkpoint")
      }
      yield* store.append(target, [...merged.values()]).pipe(Effect.mapError(writeFailed(target)))
      const written = yield* loadCheckpoint(target)
      return { sources, before, after: written.length, dropped, out: target, bytes: jsonLinesBytes(written) }
    }

    // Where to write: a temporary dir next to the target, renamed into place at the end.
    let target: string
    let parent: string
    let allocated: string | undefined
    if (Option.isSome(out)) {
      target = out.value
      if (Option.isSome(yield* Effect.option(fs.stat(target)))) {
        return yield* usageError(`The output ${target} already exists`)
      }
      parent = path.dirname(path.resolve(target))
      yield* fs.makeDirectory(parent, { recursive: true }).pipe(Effect.mapError(writeFailed(parent)))
    } else {
      allocated = yield* RunDirs.allocate(runDir).pipe(Effect.mapError(writeFailed(`a new run dir under ${runDir}`)))
      parent = allocated
      target = path.join(allocated, "checkpoint")
    }
    const tmp = yield* fs.makeTempDirectory({ directory: parent, prefix: ".dfk-compact-" }).pipe(
      Effect.mapError(writeFailed(`a temporary directory in ${parent}`))
    )
    yield* Effect.gen(function*() {
      yield* store.append(tmp, [...merged.values()]).pipe(Effect.mapError(writeFailed(tmp)))
      yield* fs.rename(tmp, target).pipe(Effect.mapError(writeFailed(target)))
    }).pipe(
      Effect.onError(() =>
        Effect.gen(function*() {
          yield* Effect.ignore(fs.remove(tmp, { recursive: true }))
          if (allocated !== undefined) yield* Effect.ignore(fs.remove(allocated))
        })
      )
    )
    // Read the result back through the library, as a resume would.
    const written = yield* loadCheckpoint(target)
    const info = yield* fs.stat(path.join(target, CheckpointFile.name)).pipe(Effect.mapError(writeFailed(target)))
    return { sources, before, after: written.length, dropped, out: target, bytes: Number(info.size) }
  })

/**
 * The `compact` subcommand.
 *
 * @since 0.1.0
 */
export const compactCommand = Command.make(
  "compact",
  {
    runDir: Args.text({ name: "runDir" }).pipe(Args.withDescription("The run directory holding 000, 001, …")),
    out: Options.text("out").pipe(
      Options.withDescription(
        "The new checkpoint dir (must not exist); default: a new run dir <runDir>/<NNN>/checkpoint"
      ),
      Options.optional
    )
  },
  ({ out, runDir }) =>
    Effect.gen(function*() {
      const result = yield* compact(runDir, out)
      if (result.out === null) return yield* printLines([`Nothing to compact: no checkpoints under ${runDir}`])
      const n = result.dropped
      yield* printLines([
        `Before: ${result.before} ${result.before === 1 ? "entry" : "entries"} in ${result.sources.length} checkpoint${
          result.sources.length === 1 ? "" : "s"
        }`,
        ...result.sources.map((s) => `  ${s.dir}: ${s.entries}`),
        ...(n === 0 ? [] : [
          `Dropped ${n} ${n === 1 ? "entry whose hash is" : "entries whose hash is"} not the memo key of their app, ` +
          `version and input (dfk verify lists them)`
        ]),
        `After: ${result.after} entries (one per key, last entry wins) in ${result.out} (${formatBytes(result.bytes)})`
      ])
    })
).pipe(Command.withDescription(
  "Merge every checkpoint under runDir (last entry wins) into one new checkpoint dir, written to a temporary path " +
    "and renamed into place; print the entries before and after"
))
