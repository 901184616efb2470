/**
 * `dfk verify <checkpoint dir>…`: reports torn and corrupt lines with file and line number.
 *
 * Exit status: `1` when any line is corrupt: the library refuses to load a checkpoint with a
 * line that is not an entry (`BadCheckpoint`), and never serves an entry whose hash is not the
 * memo key of its app, version and input (`Memo.checkEntry`). A torn last line (an interrupted write) is reported too, but it is
 * loadable (the library skips it with a warning), so by default it leaves the status at `0`;
 * with `--strict` it yields `1` as well.
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { CheckpointFile, CheckpointStore, getAllCheckpoints, Memo } from "../mod.ts"
import { CliError, CliStore, entryLine, ExitStatus, printLines, resolveCheckpoint } from "./common.ts"

/**
 * A problem found on one line.
 *
 * @since 0.1.0
 */
export interface Problem {
  /** The file. */
  readonly file: string
  /** The 1-based line number. */
  readonly line: number
  /**
   * `corrupt`: loading fails, or (a hash that is not the entry's memo key) the entry is never
   * served; `torn`: an unterminated, unparsable last line, skipped on load.
   */
  readonly kind: "corrupt" | "torn"
  /** What is wrong. */
  readonly reason: string
}

/**
 * The verdict on one checkpoint file.
 *
 * @since 0.1.0
 */
export interface FileReport {
  /** The `tasks.jsonl` file. */
  readonly file: string
  /** Good entries. */
  readonly entries: number
  /** Every problem, in line order. */
  readonly problems: ReadonlyArray<Problem>
}

/**
 * One line of a checkpoint file, with the verdict on it.
 *
 * @since 0.2.0
 */
export interface ScannedLine {
  /** The line's text, without its newline. */
  readonly text: string
  /** The 1-based line number. */
  readonly line: number
  /** `entry`: a good entry; `blank`: an empty line (skipped on load); else what is wrong. */
  readonly verdict: "entry" | "blank" | Problem
}

/**
 * The verdict on one line: the library's own line rule (`CheckpointFile.checkLine`, as a load
 * applies it: JSON, the entry format, a torn last line), then the integrity rule
 * (`Memo.checkEntry`: the hash is the memo key of the entry's app, version and input).
 *
 * @since 0.2.0
 */
export const checkLine = (
  file: string,
  text: string,
  line: number,
  terminated: boolean
): ScannedLine["verdict"] => {
  const verdict = CheckpointFile.checkLine(text, terminated)
  switch (verdict._tag) {
    case "Blank":
      return "blank"
    case "Torn":
      return { file, line, kind: "torn", reason: verdict.reason }
    case "Corrupt":
      return { file, line, kind: "corrupt", reason: verdict.reason }
    case "Entry": {
      const mismatch = Memo.checkEntry(verdict.entry)
      return Option.isSome(mismatch) ? { file, line, kind: "corrupt", reason: mismatch.value } : "entry"
    }
  }
}

/**
 * Reads the checkpoint file `file` line by line (`CheckpointFile.lines`: split as the library
 * loads it), and hands each batch of checked lines (a batch per chunk read) to `onLines`, in
 * order. A file that cannot be read is exit status 2.
 *
 * @since 0.2.0
 */
export const scanLines = <E, R>(
  file: string,
  onLines: (lines: ReadonlyArray<ScannedLine>) => Effect.Effect<void, E, R>
): Effect.Effect<void, CliError | E, FileSystem.FileSystem | R> =>
  CheckpointFile.lines(file).pipe(
    Stream.mapError((e) => new CliError({ message: `Cannot read ${file}: ${e.message}`, code: ExitStatus.usage })),
    Stream.runForEachChunk((chunk) =>
      Chunk.isEmpty(chunk) ?
        Effect.void :
        onLines(Chunk.toReadonlyArray(Chunk.map(chunk, ({ line, terminated, text }) => ({
          text,
          line,
          verdict: checkLine(file, text, line, terminated)
        }))))
    )
  )

/**
 * Checks every entry of the checkpoint `dir` of a SQL store by the same rule, each as the line
 * it would be in a `tasks.jsonl` (`entryLine`); the report names the checkpoint dir, and
 * entries by their 1-based position in stored order. An entry the store cannot hand over
 * (its JSON text is not JSON) is a corrupt one, and ends the check of that checkpoint.
 *
 * @since 0.2.0
 */
export const verifyStoredCheckpoint = (dir: string): Effect.Effect<FileReport, never, CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const problems: Array<Problem> = []
    let entries = 0
    let n = 0
    const loaded = yield* Effect.either(store.load(dir, (entry) => {
      n++
      let text: string
      try {
        text = entryLine(entry)
      } catch (e) {
        problems.push({ file: dir, line: n, kind: "corrupt", reason: `the entry has no JSON form: ${String(e)}` })
        return
      }
      const verdict = checkLine(dir, text, n, true)
      if (verdict === "entry") entries++
      else if (verdict !== "blank") problems.push({ ...verdict, line: n })
      else problems.push({ file: dir, line: n, kind: "corrupt", reason: "the entry is empty" })
    }))
    if (loaded._tag === "Left") {
      const e = loaded.left
      problems.push({ file: dir, line: e.line > 0 ? e.line : n + 1, kind: "corrupt", reason: e.reason })
    }
    return { file: dir, entries, problems }
  })

/**
 * Checks every line of the checkpoint in `dir` (see `checkLine`); with a SQL store, every
 * entry (`verifyStoredCheckpoint`).
 *
 * @since 0.1.0
 */
export const verifyCheckpoint = (
  dir: string
): Effect.Effect<FileReport, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  Effect.flatMap(
    CliStore,
    (store): Effect.Effect<FileReport, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore> =>
      store.sql ? verifyStoredCheckpoint(dir) : verifyCheckpointFile(dir)
  )

/**
 * Checks every line of the checkpoint file in `dir` (see `checkLine`).
 *
 * @since 0.2.0
 */
export const verifyCheckpointFile = (
  dir: string
): Effect.Effect<FileReport, CliError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const file = path.join(dir, CheckpointFile.name)
    const problems: Array<Problem> = []
    let entries = 0
    yield* scanLines(file, (lines) =>
      Effect.sync(() => {
        for (const { verdict } of lines) {
          if (verdict === "entry") entries++
          else if (verdict !== "blank") problems.push(verdict)
        }
      }))
    return { file, entries, problems }
  })

/**
 * Turns a path into the checkpoint dirs to verify: a checkpoint dir (or its run dir or
 * `tasks.jsonl`), or a run directory, meaning every checkpoint under it.
 *
 * @since 0.1.0
 */
export const resolveForVerify = (
  given: string
): Effect.Effect<Array<string>, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  resolveCheckpoint(given).pipe(
    Effect.map((dir) => [dir]),
    Effect.catchAll((e) =>
      Effect.flatMap(getAllCheckpoints(given), (dirs) => dirs.length > 0 ? Effect.succeed(dirs) : Effect.fail(e))
    )
  )

/**
 * The `verify` subcommand.
 *
 * @since 0.1.0
 */
export const verifyCommand = Command.make(
  "verify",
  {
    dirs: Args.text({ name: "checkpoint dir" }).pipe(
      Args.withDescription(
        "Checkpoint dirs (or their run dirs or tasks.jsonl files), or a run directory for all its checkpoints"
      ),
      Args.atLeast(1)
    ),
    strict: Options.boolean("strict").pipe(
      Options.withDescription(
        "Exit with status 1 for a torn last line too (it is loadable, so by default it is not an error)"
      )
    )
  },
  ({ dirs, strict }) =>
    Effect.gen(function*() {
      // Every path is checked before anything is read: a bad one is exit status 2.
      const resolved = (yield* Effect.forEach(dirs, resolveForVerify)).flat()
      let corrupt = 0
      let torn = 0
      let entries = 0
      for (const dir of [...new Set(resolved)]) {
        const report = yield* verifyCheckpoint(dir)
        entries += report.entries
        const lines = report.problems.map((p) => `${p.file}:${p.line}: ${p.kind}: ${p.reason}`)
        const c = report.problems.filter((p) => p.kind === "corrupt").length
        const t = report.problems.length - c
        corrupt += c
        torn += t
        lines.push(
          `${report.file}: ${report.entries} ${report.entries === 1 ? "entry" : "entries"}, ` +
            (report.problems.length === 0
              ? "ok"
              : [
                c > 0 ? `${c} corrupt ${c === 1 ? "line" : "lines"} (refused by the library)` : "",
                t > 0 ? "torn last line (loadable)" : ""
              ]
                .filter((s) => s !== "").join(", "))
        )
        yield* printLines(lines)
      }
      const files = new Set(resolved).size
      yield* printLines([
        `Checked ${files} ${files === 1 ? "checkpoint" : "checkpoints"}, ${entries} entries: ` +
        (corrupt === 0 && torn === 0
          ? "all good"
          : `${corrupt} corrupt ${corrupt === 1 ? "line" : "lines"}, ${torn} torn last ${
            torn === 1 ? "line" : "lines"
          }`)
      ])
      if (corrupt > 0 || (strict && torn > 0)) return yield* new CliError({ message: "", code: ExitStatus.failed })
    })
).pipe(Command.withDescription(
  "Report torn and corrupt lines of checkpoints with file and line number. Exit status 1 if any line is corrupt; " +
    "a torn last line is reported but loadable, so it yields 1 only with --strict"
))
