/**
 * Shared helpers of the `dfk` command: the error that carries an exit status, path
 * resolution, checkpoint loading through the public `CheckpointStore` API, and text
 * formatting (tables, previews, and the escaping of control characters in stored text).
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { CheckpointFile, CheckpointStore, getAllCheckpoints, RunDirs } from "../mod.ts"
import type { CheckpointEntry } from "../mod.ts"

const TASKS_FILE = CheckpointFile.name

/**
 * Exit statuses of `dfk`: `0` success, `1` a negative answer or damaged data (a miss in
 * `explain`, a corrupt line in `verify`, a checkpoint that cannot be loaded), `2` bad usage
 * (a bad path, bad JSON, a missing or unknown option).
 *
 * @since 0.1.0
 */
export const ExitStatus = { ok: 0, failed: 1, usage: 2 } as const

/**
 * A failure of a `dfk` command: `message` is printed as one line on stderr (nothing when
 * empty) and the process exits with `code`.
 *
 * @since 0.1.0
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  readonly code: number
}> {}

/**
 * Fails with exit status 2 (bad usage: a bad path, bad JSON).
 *
 * @since 0.1.0
 */
export const usageError = (message: string): Effect.Effect<never, CliError> =>
  Effect.fail(new CliError({ message, code: ExitStatus.usage }))

/**
 * The message of an error (a platform error, an `Error`, anything with a `message`), else
 * its text.
 *
 * @since 0.2.0
 */
export const reasonOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e)

/**
 * A failed write, as the `CliError` (exit status 1) of the commands that write:
 * `Cannot write <what>: <reason>`.
 *
 * @since 0.2.0
 */
export const writeFailed = (what: string) => (e: unknown): CliError =>
  new CliError({ message: `Cannot write ${what}: ${reasonOf(e)}`, code: ExitStatus.failed })

/**
 * Which store the commands work on (`dfk --store`): the JSON Lines files, or a SQL store,
 * whose runs and checkpoints are names (`nightly/003/checkpoint`) with no folder on disk.
 * `name` is printable: `files`, `sqlite:PATH` or `postgres://host:port/db` (never a password).
 *
 * @since 0.2.0
 */
export class CliStore extends Context.Tag("effect-dfk/cli/CliStore")<CliStore, {
  readonly sql: boolean
  readonly name: string
  /** The `--store` value as given (it may hold a password), for `dfk demo --workers` to hand on. */
  readonly spec: Option.Option<Redacted.Redacted<string>>
}>() {}

const secrets = new Set<string>()

/**
 * Registers text that `dfk` must never print (a connection URL, its password): `maskSecrets`
 * replaces it in every error and log line.
 *
 * @since 0.2.0
 */
export const addSecret = (secret: string): void => {
  if (secret.length >= 3) secrets.add(secret)
}

/**
 * `text` with every registered secret (`addSecret`) replaced by `***`, longest first.
 *
 * @since 0.2.0
 */
export const maskSecrets = (text: string): string => {
  let out = text
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join("***")
  return out
}

/**
 * A loaded checkpoint entry with where it came from.
 *
 * @since 0.1.0
 */
export interface Located {
  /** The entry as stored. */
  readonly entry: CheckpointEntry
  /** The checkpoint directory it was read from. */
  readonly dir: string
  /** The run id (the numeric run dir name), or the checkpoint dir when it is not in a run dir. */
  readonly run: string
}

const statOption = (path: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => Effect.option(fs.stat(path)))

/**
 * Checks that `dir` is an existing directory; a bad path is exit status 2.
 *
 * @since 0.1.0
 */
export const requireDirectory = (dir: string, what: string): Effect.Effect<string, CliError, FileSystem.FileSystem> =>
  Effect.flatMap(statOption(dir), (info) =>
    Option.isNone(info)
      ? usageError(`The ${what} ${dir} does not exist`)
      : info.value.type !== "Directory"
      ? usageError(`The ${what} ${dir} is not a directory`)
      : Effect.succeed(dir))

/**
 * Checks that `runDir` is a run directory: with the files, an existing directory; with a SQL
 * store, a name the store has runs under. Otherwise exit status 2.
 *
 * @since 0.2.0
 */
export const requireRunDir = (
  runDir: string
): Effect.Effect<string, CliError, FileSystem.FileSystem | Path.Path | CliStore | CheckpointStore> =>
  Effect.flatMap(CliStore, (store) =>
    !store.sql
      ? requireDirectory(runDir, "run directory")
      : Effect.flatMap(RunDirs.list(runDir), (runs) =>
        runs.length > 0
          ? Effect.succeed(runDir)
          : usageError(`The run directory ${runDir} does not exist in the store ${store.name}`)))

/** A checkpoint named on the command line, in a SQL store: `<run>/checkpoint`, `<run>`, or `…/tasks.jsonl`. */
const resolveStoredCheckpoint = (
  given: string,
  storeName: string
): Effect.Effect<string, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const store = yield* CheckpointStore
    let dir = path.normalize(given).replace(/(.)\/+$/, "$1")
    if (path.basename(dir) === TASKS_FILE) dir = path.dirname(dir)
    if (yield* store.exists(dir)) return dir
    const inner = path.join(dir, "checkpoint")
    if (yield* store.exists(inner)) return inner
    const runs = yield* RunDirs.list(path.dirname(dir))
    if (runs.some((run) => run.path === dir)) {
      return yield* usageError(`${given} holds no checkpoint in the store ${storeName}`)
    }
    return yield* usageError(`The checkpoint ${given} does not exist in the store ${storeName}`)
  })

/**
 * Turns a path given on the command line into a checkpoint directory: a checkpoint dir
 * itself (holding `tasks.jsonl`), a run dir holding `checkpoint/tasks.jsonl`, or a
 * `tasks.jsonl` file; with a SQL store, the same names as the store knows them
 * (`nightly/003/checkpoint`, `nightly/003`). Anything else is exit status 2.
 *
 * @since 0.1.0
 */
export const resolveCheckpoint = (
  given: string
): Effect.Effect<string, CliError, FileSystem.FileSystem | Path.Path | CliStore | CheckpointStore> =>
  Effect.flatMap(
    CliStore,
    (store) => store.sql ? resolveStoredCheckpoint(given, store.name) : resolveCheckpointFile(given)
  )

const resolveCheckpointFile = (
  given: string
): Effect.Effect<string, CliError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const info = yield* statOption(given)
    if (Option.isNone(info)) return yield* usageError(`The checkpoint ${given} does not exist`)
    if (info.value.type === "File") {
      if (path.basename(given) === TASKS_FILE) return path.dirname(given)
      return yield* usageError(
        `${given} is a file, not a checkpoint directory (expected a directory holding ${TASKS_FILE})`
      )
    }
    if (info.value.type !== "Directory") return yield* usageError(`${given} is not a checkpoint directory`)
    if (yield* isFile(path.join(given, TASKS_FILE))) return given
    const inner = path.join(given, "checkpoint")
    if (yield* isFile(path.join(inner, TASKS_FILE))) return inner
    return yield* usageError(`${given} holds no checkpoint (no ${TASKS_FILE} in it or in ${inner})`)
  })

/**
 * Whether `path` is a regular file.
 *
 * @since 0.1.0
 */
export const isFile = (path: string): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.map(statOption(path), (info) => Option.isSome(info) && info.value.type === "File")

/**
 * An entry as the line of `tasks.jsonl` that holds it (without its newline): what a SQL
 * store's entry would be as a file, for `dfk verify`'s line rule and the sizes `dfk runs`
 * and `dfk compact` print.
 *
 * @since 0.2.0
 */
export const entryLine = (e: CheckpointEntry): string =>
  JSON.stringify(
    e.deleted === true
      ? { v: 1, hash: e.hash, app: e.app, version: e.version, input: e.input, deleted: true, time: e.time }
      : { v: 1, hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time }
  )

const utf8 = new TextEncoder()

/**
 * The size in bytes of entries as the lines of a `tasks.jsonl` (`entryLine`, each with its newline).
 *
 * @since 0.2.0
 */
export const jsonLinesBytes = (entries: ReadonlyArray<CheckpointEntry>): number =>
  entries.reduce((n, e) => n + utf8.encode(entryLine(e)).length + 1, 0)

/**
 * The run id of a checkpoint dir `<runDir>/<NNN>/checkpoint`: `NNN`; otherwise the dir itself.
 *
 * @since 0.1.0
 */
export const runIdOf = (dir: string): Effect.Effect<string, never, Path.Path> =>
  Effect.map(Path.Path, (path) => {
    const normalized = path.normalize(dir)
    const parent = path.basename(path.dirname(normalized))
    return path.basename(normalized) === "checkpoint" && /^[0-9]+$/.test(parent) ? parent : dir
  })

/**
 * Every entry of one checkpoint dir, in stored order, read with the library's
 * `CheckpointStore.load`. A checkpoint that cannot be loaded is exit status 1.
 *
 * @since 0.1.0
 */
export const loadCheckpoint = (
  dir: string
): Effect.Effect<Array<CheckpointEntry>, CliError, CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const out: Array<CheckpointEntry> = []
    yield* store.load(dir, (entry) => out.push(entry)).pipe(
      Effect.mapError((e) =>
        new CliError({
          message: `${e.message} (dfk verify lists every bad line, dfk repair moves them aside)`,
          code: ExitStatus.failed
        })
      )
    )
    return out
  })

/**
 * Every entry of every checkpoint under `runDir` (numeric run order, stored order within
 * a run), each with its run. `runDir` must be an existing directory. With
 * `acceptCheckpoint`, a `runDir` with no runs that is itself a checkpoint (or a run dir
 * holding one) is read as that one checkpoint.
 *
 * @since 0.1.0
 */
export const loadRunDir = (
  runDir: string,
  acceptCheckpoint = false
): Effect.Effect<
  { readonly dirs: Array<string>; readonly entries: Array<Located> },
  CliError,
  FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore
> =>
  Effect.gen(function*() {
    const store = yield* CliStore
    let dirs: Array<string>
    if (!store.sql) {
      yield* requireDirectory(runDir, "run directory")
      dirs = yield* getAllCheckpoints(runDir)
      if (dirs.length === 0 && acceptCheckpoint) {
        const single = yield* Effect.option(resolveCheckpoint(runDir))
        if (Option.isSome(single)) dirs = [single.value]
      }
    } else if ((yield* RunDirs.list(runDir)).length > 0) {
      dirs = yield* getAllCheckpoints(runDir)
    } else {
      // No runs under that name: with acceptCheckpoint, the name of one checkpoint (or its run).
      const single = acceptCheckpoint ? yield* Effect.option(resolveCheckpoint(runDir)) : Option.none()
      dirs = Option.isSome(single) ? [single.value] : [yield* requireRunDir(runDir)]
    }
    const entries: Array<Located> = []
    for (const dir of dirs) {
      const run = yield* runIdOf(dir)
      for (const entry of yield* loadCheckpoint(dir)) entries.push({ entry, dir, run })
    }
    return { dirs, entries }
  })

// What a terminal must never be handed raw: C0 controls, DEL, C1 controls (U+009B is a CSI
// on many terminals), the line and paragraph separators, and the bidi embeddings, overrides
// and isolates (which reorder what follows them on screen).
// eslint-disable-next-line no-control-regex -- control characters are what it matches
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
// eslint-disable-next-line no-control-regex -- control characters are what it matches
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const SHORT_ESCAPES: Record<string, string> = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" }
const escapeChar = (c: string): string => SHORT_ESCAPES[c] ?? "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")

/**
 * Text for a terminal: every control character shown as an escape, the way JSON writes it
 * (`\n`, `\t`, `\u001b`, …): C0 controls, DEL, C1 controls (U+0080–U+009F), U+2028, U+2029
 * and the bidi controls U+202A–U+202E and U+2066–U+2069. Every command prints stored text
 * (app names, versions, inputs, results, times, reasons quoting them, paths) through this,
 * so a checkpoint cannot break a table row or send escape sequences to the terminal.
 * `keepNewlines` leaves `\n` as it is, for text whose lines are already safe (indented
 * JSON). Other text is left as it is, so escaped text is unchanged by a second pass; inside
 * JSON text the escapes are valid JSON escapes, so JSON stays valid JSON.
 *
 * @since 0.2.0
 */
export const escapeControls = (text: string, keepNewlines = false): string =>
  text.replace(keepNewlines ? UNSAFE_BUT_NEWLINE : UNSAFE, escapeChar)

/**
 * Compact JSON text of a value (`undefined` shows as `undefined`), with every control
 * character escaped (see `escapeControls`).
 *
 * @since 0.1.0
 */
export const json = (value: unknown): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? "undefined"
  } catch {
    text = String(value)
  }
  return escapeControls(text)
}

/**
 * The `--json` output of a command: indented JSON with every control character in its
 * strings escaped as `\uXXXX` (JSON.stringify leaves DEL, C1, U+2028/U+2029 and the bidi
 * controls raw), so it is valid JSON and safe on a terminal.
 *
 * @since 0.2.0
 */
export const jsonText = (value: unknown): string => escapeControls(JSON.stringify(value, null, 2) ?? "null", true)

/**
 * Prints a value on stdout as the `--json` output of a command (see `jsonText`).
 *
 * @since 0.2.0
 */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(jsonText(value))

/**
 * Prints lines on stdout, each with its control characters escaped (`escapeControls`): one
 * element is one line on the terminal, whatever stored text it holds.
 *
 * @since 0.2.0
 */
export const printLines = (lines: ReadonlyArray<string>): Effect.Effect<void> =>
  Console.log(lines.map((line) => escapeControls(line)).join("\n"))

/**
 * Cuts `text` to at most `max` characters, ending with `…` when cut.
 *
 * @since 0.1.0
 */
export const truncate = (text: string, max: number): string => {
  if (text.length <= max) return text
  let end = Math.max(0, max - 1)
  // Never cut a surrogate pair in two.
  const last = text.charCodeAt(end - 1)
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end--
  return text.slice(0, end) + "…"
}

/**
 * A short preview of a JSON value, at most `max` characters.
 *
 * @since 0.1.0
 */
export const preview = (value: unknown, max = 40): string => truncate(json(value), max)

/**
 * Lays out rows as a left-aligned text table with a header row; cells are not cut here, and
 * their control characters are escaped (`escapeControls`), so each row is one line.
 *
 * @since 0.1.0
 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  rows = rows.map((r) => r.map((c) => escapeControls(c)))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/**
 * An ISO-8601 time without milliseconds.
 *
 * @since 0.1.0
 */
export const isoSeconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, "Z")

/**
 * A byte count for people: `812 B`, `1.4 KiB`, `3.2 MiB`.
 *
 * @since 0.1.0
 */
export const formatBytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`

/**
 * How many entries each app has, most frequent first (then by name).
 *
 * @since 0.1.0
 */
export const appCounts = (entries: ReadonlyArray<{ readonly app: string }>): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const e of entries) counts.set(e.app, (counts.get(e.app) ?? 0) + 1)
  return new Map([...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
}

/**
 * The text form of `appCounts`: `a (3), b (1)`, or `-` when there are none.
 *
 * @since 0.1.0
 */
export const formatAppCounts = (counts: ReadonlyMap<string, number>): string =>
  counts.size === 0 ? "-" : [...counts].map(([name, n]) => `${name} (${n})`).join(", ")

/**
 * Whether output to a stream may carry ANSI colour escapes: only on a terminal, and only
 * when `NO_COLOR` is unset or empty (https://no-color.org).
 *
 * @since 0.2.0
 */
export const colorAllowed = (
  stream: { readonly isTTY?: boolean | undefined },
  env: { readonly [name: string]: string | undefined }
): boolean => stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "")

// CSI sequences (colours and styles are "ESC [ … m") and other two-character ESC sequences.
// eslint-disable-next-line no-control-regex -- control characters are what it matches
const ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])/g

/**
 * Removes ANSI escape sequences (colours, styles) from text.
 *
 * @since 0.2.0
 */
export const stripAnsi = (text: string): string => text.replace(ANSI, "")

/**
 * A console that removes ANSI escapes from what it writes to stdout (`log`, `info`, …)
 * unless `colorStdout`, and from what it writes to stderr (`error`, `warn`) unless
 * `colorStderr`. @effect/cli renders help and usage errors with colours whatever the
 * stream; this is how `dfk` prints them plain when piped or with `NO_COLOR` set.
 *
 * @since 0.2.0
 */
export const plainConsole = (
  console: Console.Console,
  options: { readonly colorStdout: boolean; readonly colorStderr: boolean }
): Console.Console => {
  const plain = (color: boolean, print: (...args: ReadonlyArray<any>) => Effect.Effect<void>) =>
    color ? print : (...args: ReadonlyArray<any>) => print(...args.map((a) => typeof a === "string" ? stripAnsi(a) : a))
  return {
    ...console,
    log: plain(options.colorStdout, console.log),
    info: plain(options.colorStdout, console.info),
    debug: plain(options.colorStdout, console.debug),
    error: plain(options.colorStderr, console.error),
    warn: plain(options.colorStderr, console.warn)
  }
}
