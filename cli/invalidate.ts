/**
 * `dfk invalidate <runDir> --app NAME [--app-version V] [--input JSON] [--ignore KEY]…
 * [--older-than DURATION] [--dry-run]`: appends a tombstone (DESIGN §4) for every matching
 * live entry to the checkpoint that holds it, so that a later run misses those keys; prints
 * what it matched (with `--dry-run`, only that).
 *
 * @module
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { CheckpointFile, CheckpointStore, Memo } from "../mod.ts"
import type { CheckpointEntry } from "../mod.ts"
import type { CliStore, Located } from "./common.ts"
import {
  appCounts,
  CliError,
  ExitStatus,
  formatAppCounts,
  json,
  loadRunDir,
  preview,
  printLines,
  usageError,
  writeFailed
} from "./common.ts"
import * as KeyOptions from "./keyOptions.ts"

const UNITS: Record<string, Duration.DurationInput> = {
  ms: "1 millis",
  s: "1 seconds",
  m: "1 minutes",
  h: "1 hours",
  d: "1 days",
  w: "1 weeks"
}

/**
 * Reads a duration: `90s`, `30m`, `12h`, `7d`, `2w`, `500ms`, or Effect's form (`"2 days"`,
 * `"90 minutes"`); anything else is exit status 2.
 *
 * @since 0.2.0
 */
export const parseDuration = (text: string, option: string): Effect.Effect<Duration.Duration, CliError> => {
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
  const parsed = short !== null
    ? Option.some(Duration.times(Duration.decode(UNITS[short[2]!]!), Number(short[1])))
    : Duration.decodeUnknown(text.trim())
  return Option.isSome(parsed) && Duration.isFinite(parsed.value)
    ? Effect.succeed(parsed.value)
    : usageError(`Invalid ${option} duration ${json(text)}: expected e.g. 30m, 12h, 7d or "2 days"`)
}

/**
 * Which entries `invalidate` matches: those of `app`, and of `version`, `input` (the encoded
 * input, compared as it goes into the key) and computed before `before` when given.
 *
 * @since 0.2.0
 */
export interface Selection {
  /** The app's name. */
  readonly app: string
  /** Only this version (`null`: none); `undefined`: any. */
  readonly version?: string | null | undefined
  /** Only this encoded input; `undefined`: any. */
  readonly input?: unknown
  /** Input keys the app leaves out of its key. */
  readonly ignore?: ReadonlyArray<string> | undefined
  /** Only entries computed before this time. */
  readonly before?: Date | undefined
}

/**
 * What `invalidate` matched (and, unless a dry run, invalidated).
 *
 * @since 0.2.0
 */
export interface Invalidation {
  /** The live entries matched, each with its checkpoint, in load order. */
  readonly matched: ReadonlyArray<Located>
  /** The checkpoint dirs written to (none on a dry run). */
  readonly written: ReadonlyArray<string>
  /** Entries per app under the run dir (tombstones included). */
  readonly apps: ReadonlyMap<string, number>
}

/** Whether an entry is selected. */
const selects = (selection: Selection, inputJson: string | undefined) => (e: CheckpointEntry): boolean => {
  if (e.app !== selection.app) return false
  if (selection.version !== undefined && e.version !== selection.version) return false
  if (selection.before !== undefined && !(Date.parse(e.time) < selection.before.getTime())) return false
  if (inputJson === undefined) return true
  const stored = Memo.canonicalJson(e.input)
  return Either.isRight(stored) && stored.right === inputJson
}

/**
 * Appends a tombstone for every live entry under `runDir` that `selection` matches, to the
 * checkpoint that holds it (each checkpoint by itself: a key is live there when its last
 * entry there is a result whose hash is its key). With `dryRun`, only says what matches.
 *
 * @since 0.2.0
 */
export const invalidate = (
  runDir: string,
  selection: Selection,
  dryRun: boolean
): Effect.Effect<Invalidation, CliError, FileSystem.FileSystem | Path.Path | CheckpointStore | CliStore> =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    let inputJson: string | undefined
    if (selection.input !== undefined) {
      const text = Memo.canonicalJson(CheckpointFile.keyInput(selection.input, selection.ignore ?? []))
      if (Either.isLeft(text)) return yield* usageError(`Invalid --input: ${text.left}`)
      inputJson = text.right
    }
    const { dirs, entries } = yield* loadRunDir(runDir, true)
    const matches = selects(selection, inputJson)
    const matched: Array<Located> = []
    const written: Array<string> = []
    const time = new Date().toISOString()
    for (const dir of dirs) {
      // The last entry of each key in this checkpoint.
      const last = new Map<string, Located>()
      for (const l of entries) if (l.dir === dir) last.set(l.entry.hash, l)
      const live = [...last.values()].filter((l) =>
        l.entry.deleted !== true && Option.isNone(Memo.checkEntry(l.entry)) && matches(l.entry)
      )
      if (live.length === 0) continue
      for (const l of live) matched.push(l)
      if (dryRun) continue
      const tombstones = live.map(({ entry: e }): CheckpointEntry => ({
        hash: e.hash,
        app: e.app,
        version: e.version,
        input: e.input,
        result: undefined,
        time,
        deleted: true
      }))
      yield* store.append(dir, tombstones, { durability: "fsync" }).pipe(Effect.mapError(writeFailed(dir)))
      written.push(dir)
    }
    return { matched, written, apps: appCounts(entries.map((l) => l.entry)) }
  })

/**
 * The `invalidate` subcommand. Exit status 0 when it matched entries, 1 when none matched.
 *
 * @since 0.2.0
 */
export const invalidateCommand = Command.make(
  "invalidate",
  {
    runDir: KeyOptions.runDirArg,
    app: KeyOptions.appOption("The app whose entries to invalidate"),
    version: KeyOptions.appVersionOption("Only entries of this app version (default any)"),
    input: Options.optional(KeyOptions.inputOption("Only the entries of this input")),
    ignore: KeyOptions.ignoreOption,
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("Only entries computed longer ago than this: 30m, 12h, 7d, 2w, or \"2 days\""),
      Options.optional
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print what matches, write nothing"))
  },
  (args) =>
    Effect.gen(function*() {
      const input = Option.isSome(args.input) ? yield* KeyOptions.parseInput(args.input.value) : undefined
      const olderThan = Option.isSome(args.olderThan)
        ? yield* parseDuration(args.olderThan.value, "--older-than")
        : undefined
      const before = olderThan === undefined ? undefined : new Date(Date.now() - Duration.toMillis(olderThan))
      const result = yield* invalidate(args.runDir, {
        app: args.app,
        version: Option.getOrUndefined(args.version),
        input,
        ignore: KeyOptions.ignoredKeys(args.ignore),
        before
      }, args.dryRun)
      const n = result.matched.length
      if (n === 0) {
        yield* printLines([
          `No live entry of app ${json(args.app)} under ${args.runDir} matches` +
          `; stored apps: ${formatAppCounts(result.apps)}`
        ])
        return yield* new CliError({ message: "", code: ExitStatus.failed })
      }
      const lines = result.matched.map(({ dir, entry: e }) =>
        `  ${e.hash.slice(0, 12)} ${e.app} version ${json(e.version)} input ${
          preview(e.input, 60)
        } computed ${e.time} in ${dir}`
      )
      const dirs = new Set(result.matched.map((l) => l.dir)).size
      const what = `${n} ${n === 1 ? "entry" : "entries"} in ${dirs} checkpoint${dirs === 1 ? "" : "s"}`
      yield* printLines([
        args.dryRun ? `Would invalidate ${what} (dry run: nothing written):` : `Invalidated ${what}:`,
        ...lines
      ])
    })
).pipe(Command.withDescription(
  "Append a tombstone for every matching live entry (of --app, and --app-version, --input, --older-than when " +
    "given) to the checkpoint that holds it, so that later runs miss those keys; --dry-run only prints the matches. " +
    "Exit status 1 when nothing matches"
))
