/**
 * `dfk runs [runDir]`: one row per run: id, start time, entries, bytes, apps.
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
import { CheckpointFile, CheckpointStore, RunDirs } from "../mod.ts"
import type { CheckpointEntry } from "../mod.ts"
import type { CliError } from "./common.ts"
import {
  appCounts,
  CliStore,
  formatAppCounts,
  formatBytes,
  isoSeconds,
  jsonLinesBytes,
  loadCheckpoint,
  printJson,
  printLines,
  requireRunDir,
  table
} from "./common.ts"

/**
 * One row of `dfk runs`.
 *
 * @since 0.1.0
 */
export interface RunRow {
  /** The run's id: its directory name (`000`, `001`, …). */
  readonly id: string
  /** The run directory. */
  readonly path: string
  /**
   * When the run started: the run dir's birth time, else its first entry's time, else its
   * mtime; in a SQL store, its first entry's time (`null` when it has none).
   */
  readonly start: string | null
  /** The checkpoint dir, or `null` when the run wrote none. */
  readonly checkpoint: string | null
  /** Lines (entries) in the run's checkpoint. */
  readonly entries: number
  /** Size of the run's `tasks.jsonl` in bytes; in a SQL store, the size its entries would have as one. */
  readonly bytes: number
  /** Entries per app. */
  readonly apps: Record<string, number>
  /** Why the checkpoint could not be loaded, if it could not. */
  readonly error?: string
}

/**
 * Collects the rows of `dfk runs` for `runDir`.
 *
 * @since 0.1.0
 */
export const listRuns = (
  runDir: string
): Effect.Effect<Array<RunRow>, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    yield* requireRunDir(runDir)
    if ((yield* CliStore).sql) return yield* listStoredRuns(runDir)
    const rows: Array<RunRow> = []
    for (const { checkpointDir: checkpoint, name, path: dir } of yield* RunDirs.list(runDir)) {
      const info = yield* Effect.option(fs.stat(dir))
      if (Option.isNone(info) || info.value.type !== "Directory") continue
      const file = yield* Effect.option(fs.stat(path.join(checkpoint, CheckpointFile.name)))
      const size = Option.isSome(file) && file.value.type === "File" ? Number(file.value.size) : undefined
      const hasFile = size !== undefined
      let entries: Array<{ app: string; time: string }> = []
      let error: string | undefined
      if (hasFile) {
        const loaded = yield* Effect.either(loadCheckpoint(checkpoint))
        if (loaded._tag === "Right") entries = loaded.right
        else error = loaded.left.message
      }
      const birth = Option.filter(info.value.birthtime, (d) => d.getTime() > 0)
      const firstEntry = entries.map((e) => Date.parse(e.time)).filter(Number.isFinite).sort((a, b) => a - b)[0]
      const start = Option.isSome(birth)
        ? birth.value
        : firstEntry !== undefined
        ? new Date(firstEntry)
        : Option.getOrUndefined(info.value.mtime)
      rows.push({
        id: name,
        path: dir,
        start: start === undefined ? null : isoSeconds(start),
        checkpoint: hasFile ? checkpoint : null,
        entries: entries.length,
        bytes: size ?? 0,
        apps: Object.fromEntries(appCounts(entries)),
        ...(error === undefined ? {} : { error })
      })
    }
    return rows
  })

/** The rows of `dfk runs` in a SQL store: its runs, no folders. */
const listStoredRuns = (
  runDir: string
): Effect.Effect<Array<RunRow>, never, FileSystem.FileSystem | Path.Path | CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const rows: Array<RunRow> = []
    for (const { checkpointDir: checkpoint, name, path: dir } of yield* RunDirs.list(runDir)) {
      const has = yield* store.exists(checkpoint)
      let entries: ReadonlyArray<CheckpointEntry> = []
      let error: string | undefined
      if (has) {
        const loaded = yield* Effect.either(loadCheckpoint(checkpoint))
        if (loaded._tag === "Right") entries = loaded.right
        else error = loaded.left.message
      }
      const first = entries.map((e) => Date.parse(e.time)).filter(Number.isFinite).sort((a, b) => a - b)[0]
      rows.push({
        id: name,
        path: dir,
        start: first === undefined ? null : isoSeconds(new Date(first)),
        checkpoint: has ? checkpoint : null,
        entries: entries.length,
        bytes: jsonLinesBytes(entries),
        apps: Object.fromEntries(appCounts(entries)),
        ...(error === undefined ? {} : { error })
      })
    }
    return rows
  })

/**
 * The `runs` subcommand.
 *
 * @since 0.1.0
 */
export const runsCommand = Command.make(
  "runs",
  {
    runDir: Args.text({ name: "runDir" }).pipe(
      Args.withDescription("The run directory holding 000, 001, …"),
      Args.withDefault("runinfo")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the rows as a JSON array"))
  },
  ({ json, runDir }) =>
    Effect.gen(function*() {
      const rows = yield* listRuns(runDir)
      if (json) return yield* printJson(rows)
      if (rows.length === 0) return yield* printLines([`No runs in ${runDir}`])
      yield* printLines(
        table(
          ["RUN", "STARTED", "ENTRIES", "BYTES", "APPS"],
          rows.map((r) => [
            r.id,
            r.start ?? "-",
            r.checkpoint === null ? "-" : r.error !== undefined ? "?" : String(r.entries),
            r.checkpoint === null ? "-" : formatBytes(r.bytes),
            r.error !== undefined
              ? `unreadable checkpoint: ${r.error}`
              : r.checkpoint === null
              ? "(no checkpoint)"
              : formatAppCounts(new Map(Object.entries(r.apps)))
          ])
        ).split("\n")
      )
    })
).pipe(
  Command.withDescription("List the runs under a run directory (default runinfo): id, start time, entries, bytes, apps")
)
