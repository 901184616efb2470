/**
 * `dfk compact <runDir> [--out DIR] [--prune [--force]]`: merges every checkpoint under
 * `runDir` (numeric run order, the last entry of a key wins, as when loading) into one new
 * checkpoint dir, written to a temporary path and renamed into place. Entries the library
 * would refuse to serve (`Memo.checkEntry`: a hash that is not the memo key of the entry's
 * app, version and input) are dropped, and counted, as are keys whose last entry is a
 * tombstone (with the tombstone). `--prune` then deletes the run dirs it merged, once the
 * merged checkpoint is written and synced; it refuses a run dir written to in the last
 * minute (a run may still be writing it) unless `--force`. With a SQL store (`dfk --store`),
 * `--prune` is refused (exit status 2) before anything is read: its runs are the store's own.
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
import {
  CliError,
  CliStore,
  ExitStatus,
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
  /**
   * Keys whose last entry is a tombstone: none of their entries (nor the tombstone) is written.
   *
   * @since 0.2.0
   */
  readonly tombstoned: number
  /**
   * The run dirs deleted after the merge (`--prune`), in order.
   *
   * @since 0.2.0
   */
  readonly pruned: ReadonlyArray<string>
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
  out: Option.Option<string>,
  prune: { readonly prune?: boolean | undefined; readonly force?: boolean | undefined } = {}
): Effect.Effect<Compaction, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const store = yield* CheckpointStore
    const cliStore = yield* CliStore
    // Refused before anything is read or written: --prune deletes run dirs on disk, and a SQL
    // store's runs are rows it keeps itself, which dfk has no command to delete.
    if (prune.prune === true && cliStore.sql) {
      return yield* usageError(
        `Cannot prune runs of the store ${cliStore.name}: --prune deletes run dirs of the JSON Lines files, ` +
          "and a SQL store keeps its runs itself; run compact without --prune"
      )
    }
    const { dirs, entries } = yield* loadRunDir(runDir)
    const sources = dirs.map((dir) => ({ dir, entries: entries.filter((l) => l.dir === dir).length }))
    const nothing = { sources, before: 0, after: 0, dropped: 0, tombstoned: 0, pruned: [], out: null, bytes: 0 }
    if (dirs.length === 0) return nothing
    // The run dirs to prune, checked before anything is written: none written to in the last minute.
    const runs = prune.prune === true ? yield* prunable(dirs, out, prune.force === true) : []
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
    let tombstoned = 0
    for (const [hash, entry] of merged) {
      if (entry.deleted === true) {
        merged.delete(hash)
        tombstoned++
      } else if (Option.isSome(Memo.checkEntry(entry))) merged.delete(hash)
    }
    const before = entries.length
    const result = (out: string, after: number, bytes: number, pruned: ReadonlyArray<string>): Compaction => ({
      sources,
      before,
      after,
      dropped,
      tombstoned,
      pruned,
      out,
      bytes
    })

    if (cliStore.sql) {
      const { name } = cliStore
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
      return result(target, written.length, jsonLinesBytes(written), [])
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
      // Synced (the file and its dir) when run dirs are pruned after it: the merge must be on disk first.
      const durability = runs.length > 0 ? "fsync" : "none"
      yield* store.append(tmp, [...merged.values()], { durability }).pipe(Effect.mapError(writeFailed(tmp)))
      yield* fs.rename(tmp, target).pipe(Effect.mapError(writeFailed(target)))
      if (runs.length > 0) yield* syncDirectory(parent).pipe(Effect.mapError(writeFailed(parent)))
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
    for (const run of runs) yield* fs.remove(run, { recursive: true }).pipe(Effect.mapError(writeFailed(run)))
    return result(target, written.length, Number(info.size), runs)
  })

/** A directory's entry synced to stable storage (after a rename into it). */
const syncDirectory = (dir: string) =>
  Effect.scoped(
    Effect.flatMap(FileSystem.FileSystem, (fs) => Effect.flatMap(fs.open(dir, { flag: "r" }), (handle) => handle.sync))
  )

/** How long a run dir must have been left alone before `--prune` deletes it without `--force`. */
const QUIET_MS = 60_000

/**
 * The run dirs of the checkpoints `dirs` (`<runDir>/<NNN>/checkpoint`), to delete after the
 * merge: refused when one was written to in the last minute (unless `force`), or when `out`
 * lies inside one.
 */
const prunable = (
  dirs: ReadonlyArray<string>,
  out: Option.Option<string>,
  force: boolean
): Effect.Effect<Array<string>, CliError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const runs = dirs.map((dir) => path.dirname(dir))
    if (Option.isSome(out)) {
      const target = path.resolve(out.value)
      const inside = runs.find((run) => (target + path.sep).startsWith(path.resolve(run) + path.sep))
      if (inside !== undefined) {
        return yield* usageError(`The output ${out.value} is inside ${inside}, which --prune deletes`)
      }
    }
    if (!force) {
      const now = Date.now()
      for (const dir of dirs) {
        const info = yield* Effect.option(fs.stat(path.join(dir, CheckpointFile.name)))
        const mtime = Option.isSome(info) ? Option.getOrUndefined(info.value.mtime)?.getTime() : undefined
        if (mtime !== undefined && now - mtime < QUIET_MS) {
          const ago = Math.max(0, Math.round((now - mtime) / 1000))
          return yield* new CliError({
            message:
              `Refusing to prune ${path.dirname(dir)}: written to ${ago} s ago (a run may still be writing it); ` +
              "nothing was written or deleted; --force prunes it anyway",
            code: ExitStatus.failed
          })
        }
      }
    }
    return runs
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
    ),
    prune: Options.boolean("prune").pipe(
      Options.withDescription(
        "Then delete the run dirs merged (once the merged checkpoint is written and synced); refused for a run dir " +
          "written to in the last minute"
      )
    ),
    force: Options.boolean("force").pipe(
      Options.withDescription("With --prune: prune run dirs written to in the last minute too")
    )
  },
  ({ force, out, prune, runDir }) =>
    Effect.gen(function*() {
      const result = yield* compact(runDir, out, { prune, force })
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
        ...(result.tombstoned === 0 ? [] : [
          `Dropped ${result.tombstoned} invalidated ${
            result.tombstoned === 1 ? "key" : "keys"
          } (last entry a tombstone)`
        ]),
        `After: ${result.after} entries (one per key, last entry wins) in ${result.out} (${formatBytes(result.bytes)})`,
        ...(result.pruned.length === 0 ? [] : [
          `Pruned ${result.pruned.length} run ${result.pruned.length === 1 ? "dir" : "dirs"}: ${
            result.pruned.join(", ")
          }`
        ])
      ])
    })
).pipe(Command.withDescription(
  "Merge every checkpoint under runDir (last entry wins; invalidated keys dropped) into one new checkpoint dir, " +
    "written to a temporary path and renamed into place; print the entries before and after; --prune then deletes " +
    "the run dirs merged"
))
