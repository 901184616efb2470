/**
 * `dfk repair <checkpoint dir>`: moves the bad lines of a checkpoint's `tasks.jsonl` (the
 * corrupt lines `dfk verify` reports, and a torn last line) into `tasks.jsonl.bad` next to it,
 * and keeps the good lines, in order.
 *
 * Nothing is lost if it stops half-way: the bad lines are appended to `tasks.jsonl.bad` and
 * synced, and the good lines written to a temporary file in the same directory and synced,
 * before that file is renamed over `tasks.jsonl`.
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import { CliError, CliStore, printLines, resolveCheckpoint, usageError, writeFailed } from "./common.ts"
import { scanLines, verifyCheckpointFile } from "./verify.ts"
import type { Problem } from "./verify.ts"

/**
 * What `repair` did.
 *
 * @since 0.2.0
 */
export interface Repair {
  /** The `tasks.jsonl` file repaired. */
  readonly file: string
  /** The file the bad lines went to. */
  readonly badFile: string
  /** The lines moved, in line order (none when the checkpoint was good: nothing was written). */
  readonly moved: ReadonlyArray<Problem>
  /** The good entries kept in `file`. */
  readonly kept: number
}

/**
 * Moves the bad lines of the checkpoint in `dir` to `tasks.jsonl.bad` (appending to it when
 * it exists) and keeps the good ones in `tasks.jsonl`, in order; blank lines are dropped. When
 * no line is bad, nothing is written. A failed write is exit status 1 and leaves `tasks.jsonl`
 * as it was.
 *
 * @since 0.2.0
 */
export const repair = (dir: string): Effect.Effect<Repair, CliError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const report = yield* verifyCheckpointFile(dir)
    const file = report.file
    const badFile = `${file}.bad`
    if (report.problems.length === 0) return { file, badFile, moved: [], kept: report.entries }

    const encoder = new TextEncoder()
    const suffix = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)
    const tmp = path.join(dir, `.${path.basename(file)}.repair-${suffix}`)
    const moved: Array<Problem> = []
    const badLines: Array<string> = []
    let kept = 0
    yield* Effect.gen(function*() {
      // The good lines, to the temporary file (read again: what counts is what is in the file now).
      yield* Effect.scoped(Effect.gen(function*() {
        const out = yield* fs.open(tmp, { flag: "wx" }).pipe(Effect.mapError(writeFailed(tmp)))
        yield* scanLines(file, (lines) => {
          const good: Array<string> = []
          for (const { text, verdict } of lines) {
            if (verdict === "entry") {
              good.push(text, "\n")
              kept++
            } else if (verdict !== "blank") {
              moved.push(verdict)
              badLines.push(text, "\n")
            }
          }
          return good.length === 0 ? Effect.void : out.writeAll(encoder.encode(good.join("")))
        }).pipe(Effect.mapError((e) => e instanceof CliError ? e : writeFailed(tmp)(e)))
        yield* out.sync.pipe(Effect.mapError(writeFailed(tmp)))
      }))
      const info = yield* Effect.option(fs.stat(file))
      if (Option.isSome(info)) yield* Effect.ignore(fs.chmod(tmp, info.value.mode & 0o777))
      // The bad lines, appended and synced before the rename: a crash at any point loses none.
      if (badLines.length > 0) {
        yield* Effect.scoped(Effect.gen(function*() {
          const bad = yield* fs.open(badFile, { flag: "a" })
          yield* bad.writeAll(encoder.encode(badLines.join("")))
          yield* bad.sync
        })).pipe(Effect.mapError(writeFailed(badFile)))
      }
      yield* fs.rename(tmp, file).pipe(Effect.mapError(writeFailed(file)))
      // The rename itself, made durable where the platform can sync a directory.
      yield* Effect.ignore(Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)))
    }).pipe(Effect.onError(() => Effect.ignore(fs.remove(tmp))))
    return { file, badFile, moved, kept }
  })

/**
 * The `repair` subcommand.
 *
 * @since 0.2.0
 */
export const repairCommand = Command.make(
  "repair",
  {
    checkpoint: Args.text({ name: "checkpoint dir" }).pipe(
      Args.withDescription("A checkpoint dir (runinfo/001/checkpoint), its run dir, or its tasks.jsonl")
    )
  },
  ({ checkpoint }) =>
    Effect.gen(function*() {
      const store = yield* CliStore
      if (store.sql) {
        return yield* usageError(
          `dfk repair moves bad lines of tasks.jsonl files; the store ${store.name} has no lines to move ` +
            `(dfk verify checks its entries)`
        )
      }
      const dir = yield* resolveCheckpoint(checkpoint)
      const result = yield* repair(dir)
      const entries = `${result.kept} ${result.kept === 1 ? "entry" : "entries"}`
      if (result.moved.length === 0) {
        return yield* printLines([`Nothing to repair in ${result.file}: ${entries}, no corrupt or torn lines`])
      }
      const n = result.moved.length
      yield* printLines([
        ...result.moved.map((p) => `${p.file}:${p.line}: ${p.kind}: ${p.reason}`),
        `Moved ${n} ${n === 1 ? "line" : "lines"} to ${result.badFile}; ${entries} kept in ${result.file}`
      ])
    })
).pipe(Command.withDescription(
  "Move the corrupt lines and a torn last line of a checkpoint's tasks.jsonl into tasks.jsonl.bad next to it " +
    "(appended), keeping the good lines in order; the file is replaced atomically. Nothing changes when no line is bad"
))
