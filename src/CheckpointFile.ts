/**
 * The JSON Lines checkpoint file, for tools that read it (`dfk verify`, `dfk repair`, your
 * own): its name, the rule that says what each line is, and its lines as a stream.
 *
 * A checkpoint dir `<runDir>/<NNN>/checkpoint` holds one `tasks.jsonl`: UTF-8, one entry per
 * line, `{"v":1,"hash":…,"app":…,"version":…,"input":…,"result":…,"time":…}`. `checkLine` is
 * the rule the library itself applies when it loads the file, so a tool that uses it judges
 * every line exactly as a resume would.
 *
 * @module
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { CheckpointEntry } from "./CheckpointStore.ts"
import { withoutKeys } from "./internal/canonical.ts"
import { ByteLines } from "./internal/fileLoad.ts"
import { LineFault, lineRule, TASKS_FILE } from "./internal/format.ts"

/**
 * The name of the checkpoint file inside a checkpoint directory: `tasks.jsonl`.
 *
 * @example The file of a checkpoint dir
 * ```ts
 * import * as path from "node:path"
 * import { CheckpointFile } from "effect-dfk"
 *
 * const file = path.join("runinfo", "000", "checkpoint", CheckpointFile.name)
 * console.assert(file.endsWith("tasks.jsonl"))
 * ```
 *
 * @since 0.2.0
 * @category constants
 */
export const name: "tasks.jsonl" = TASKS_FILE as "tasks.jsonl"

/**
 * A blank line (empty, or only whitespace): skipped on load.
 *
 * @since 0.2.0
 * @category models
 */
export interface Blank {
  /** The verdict: a blank line. */
  readonly _tag: "Blank"
}

/**
 * A line that is an entry of the current format (not yet checked against its hash: that is
 * `Memo.checkEntry`, which the kernel applies before it serves the entry).
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  /** The verdict: an entry. */
  readonly _tag: "Entry"
  /** The parsed entry, as `JSON.parse` made it. */
  readonly entry: CheckpointEntry
}

/**
 * A torn last line: unterminated, not JSON, and starting like an entry. What a write cut
 * short (a crash) leaves; the library skips it with a warning.
 *
 * @since 0.2.0
 * @category models
 */
export interface Torn {
  /** The verdict: a torn last line. */
  readonly _tag: "Torn"
  /** What that means, for a report. */
  readonly reason: string
}

/**
 * A corrupt line: not JSON, or not an entry of the current format. The library refuses to
 * load a file that has one (`BadCheckpoint`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Corrupt {
  /** The verdict: a corrupt line. */
  readonly _tag: "Corrupt"
  /** What is wrong, e.g. `the line is not valid JSON` or `"hash" is not 64 lowercase hex digits`. */
  readonly reason: string
}

/**
 * The verdict on one line of a checkpoint file (see `checkLine`).
 *
 * @since 0.2.0
 * @category models
 */
export type LineVerdict = Blank | Entry | Torn | Corrupt

const BLANK: Blank = { _tag: "Blank" }

/**
 * What one line of a checkpoint file is, by the rule the library applies when it loads the
 * file: `Blank` (skipped), `Entry` (with the parsed entry), `Torn` (an unterminated,
 * unparsable last line that starts like an entry: skipped with a warning) or `Corrupt` (the
 * load fails), with the reason. `text` is the line without its newline; `terminated` says
 * whether a newline ended it (only a file's last line can lack one).
 *
 * The hash is not checked here: `Memo.checkEntry` says whether an entry's hash is the memo
 * key of its app, version and input (the kernel never serves one that is not).
 *
 * @example Judging lines as a load does
 * ```ts
 * import { CheckpointFile } from "effect-dfk"
 *
 * const hash = "0".repeat(64)
 * const line = JSON.stringify({ v: 1, hash, app: "sq", version: null, input: 3, result: 9, time: "2026-01-01T00:00:00.000Z" })
 *
 * const good = CheckpointFile.checkLine(line, true)
 * console.assert(good._tag === "Entry" && good.entry.result === 9)
 * console.assert(CheckpointFile.checkLine("  ", true)._tag === "Blank")
 * // The start of an entry, cut short by a crash, at the end of the file:
 * console.assert(CheckpointFile.checkLine(line.slice(0, 20), false)._tag === "Torn")
 * // The same text followed by a newline cannot be a torn write:
 * const cut = CheckpointFile.checkLine(line.slice(0, 20), true)
 * console.assert(cut._tag === "Corrupt" && cut.reason === "the line is not valid JSON")
 * ```
 *
 * @since 0.2.0
 * @category parsing
 */
export const checkLine = (text: string, terminated: boolean): LineVerdict => {
  const verdict = lineRule(text, terminated)
  if (!(verdict instanceof LineFault)) return { _tag: "Entry", entry: verdict }
  switch (verdict.kind) {
    case "blank":
      return BLANK
    case "torn":
      return { _tag: "Torn", reason: verdict.reason }
    case "corrupt":
      return { _tag: "Corrupt", reason: verdict.reason }
  }
}

/**
 * One line of a checkpoint file.
 *
 * @since 0.2.0
 * @category models
 */
export interface Line {
  /** The line's text, without its newline (and without a byte order mark at the start of the file). */
  readonly text: string
  /** The 1-based line number. */
  readonly line: number
  /** Whether a newline ended the line (`false` only for an unterminated last line). */
  readonly terminated: boolean
}

/**
 * The lines of a checkpoint file, in order, split and decoded exactly as the library's loader
 * does (UTF-8, a byte order mark at the start dropped, a final unterminated line included):
 * one chunk of the stream per read of the file, so memory stays bounded by the longest line
 * and the read size (1 MiB), whatever the size of the file. Fails with the `PlatformError`
 * of a file that cannot be opened or read. Judge each line with `checkLine`.
 *
 * @example Counting the entries of a file with a torn last line
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Stream } from "effect"
 * import { CheckpointFile } from "effect-dfk"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-lines-" }) // removed when the scope closes
 *   const file = path.join(dir, CheckpointFile.name)
 *   const entry = { v: 1, hash: "a".repeat(64), app: "sq", version: null, input: 3, result: 9, time: "2026-01-01T00:00:00Z" }
 *   yield* fs.writeFileString(file, JSON.stringify(entry) + "\n\n" + '{"v":1,"ha')
 *
 *   const verdicts = yield* CheckpointFile.lines(file).pipe(
 *     Stream.map((line) => CheckpointFile.checkLine(line.text, line.terminated)._tag),
 *     Stream.runCollect
 *   )
 *   console.assert([...verdicts].join() === "Entry,Blank,Torn")
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category reading
 */
export const lines = (file: string): Stream.Stream<Line, PlatformError, FileSystem.FileSystem> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const handle = yield* fs.open(file, { flag: "r" })
    let batch: Array<Line> = []
    const reader = new ByteLines((text, line, terminated) => {
      batch.push({ text, line, terminated })
    })
    let ended = false
    const take = () => {
      const out = batch
      batch = []
      return Chunk.unsafeFromArray(out)
    }
    const next: Effect.Effect<Chunk.Chunk<Line>, Option.Option<PlatformError>> = Effect.suspend(() =>
      ended ? Effect.fail(Option.none()) : Effect.flatMap(
        Effect.mapError(handle.read(reader.room()), Option.some),
        (n) =>
          Effect.sync(() => {
            if (Number(n) === 0) {
              reader.end()
              ended = true
            } else reader.push(Number(n))
            return take()
          })
      )
    )
    return Stream.repeatEffectChunkOption(next)
  }))

/**
 * The encoded input as it goes into the memo key and into a checkpoint entry's `input`: the
 * input less its top-level `ignoreForCache` keys (an input that is not a plain object is
 * returned as it is). Compare it with a stored entry's `input` to see why a call missed.
 *
 * @example The input an entry stores
 * ```ts
 * import { CheckpointFile } from "effect-dfk"
 *
 * const stored = CheckpointFile.keyInput({ x: 1, sleepMs: 500 }, ["sleepMs"])
 * console.assert(JSON.stringify(stored) === '{"x":1}')
 * console.assert(CheckpointFile.keyInput(7, ["sleepMs"]) === 7)
 * ```
 *
 * @since 0.2.0
 * @category keys
 */
export const keyInput = (encodedInput: unknown, ignoreForCache: ReadonlyArray<string>): unknown =>
  withoutKeys(encodedInput, ignoreForCache)
