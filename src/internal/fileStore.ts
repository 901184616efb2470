/**
 * The default checkpoint store: one `tasks.jsonl` per checkpoint directory, appended.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { AppendOptions, CheckpointEntry, CheckpointStoreService } from "../CheckpointStore.ts"
import { BadCheckpoint, CheckpointError } from "../errors.ts"
import { entryLine, invalidEntry, TASKS_FILE } from "./entry.ts"

const reasonOf = (error: unknown): string =>
  error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)

/**
 * Splits text chunks into lines and hands each complete line, and a final unterminated
 * one, to `onLine`. Lines are numbered from 1.
 */
export class LineSplitter {
  private carry = ""
  private lineNo = 0
  constructor(private readonly onLine: (line: string, lineNo: number, terminated: boolean) => void) {}
  push(text: string): void {
    let start = 0
    let nl = text.indexOf("\n", start)
    while (nl !== -1) {
      const line = this.carry === "" ? text.slice(start, nl) : this.carry + text.slice(start, nl)
      this.carry = ""
      this.onLine(line, ++this.lineNo, true)
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    if (start < text.length) this.carry += text.slice(start)
  }
  end(): void {
    if (this.carry !== "") {
      const line = this.carry
      this.carry = ""
      this.onLine(line, ++this.lineNo, false)
    }
  }
}

class Stop {
  constructor(readonly error: BadCheckpoint) {}
}

/**
 * Parses checkpoint text fed in chunks. A bad line throws `Stop` with a `BadCheckpoint`;
 * an unterminated, unparsable last line (a torn write) is reported through `onTorn`.
 */
export const makeParser = (
  file: string,
  onEntry: (entry: CheckpointEntry) => void,
  onTorn: (lineNo: number) => void
): LineSplitter =>
  new LineSplitter((line, lineNo, terminated) => {
    if (line.trim() === "") return
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      if (!terminated) return onTorn(lineNo)
      throw new Stop(new BadCheckpoint({ path: file, line: lineNo, reason: "the line is not valid JSON" }))
    }
    const invalid = invalidEntry(value)
    if (invalid !== undefined) throw new Stop(new BadCheckpoint({ path: file, line: lineNo, reason: invalid }))
    onEntry(value as CheckpointEntry)
  })

/** The JSON Lines store over the platform's `FileSystem`. */
export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  // The size each file had after its last good append. After a failed append (which may
  // have written part of its bytes), the next append first cuts the file back to that size,
  // so a failed pass never leaves a torn line in the middle of a checkpoint.
  const goodSize = new Map<string, number>()
  const damaged = new Set<string>()
  const encoder = new TextEncoder()

  // With fsync: write through an open handle, sync it, and sync the directory the first
  // time (so that a new file's directory entry survives a power loss too).
  const synced = new Set<string>()
  const appendSynced = (dir: string, file: string, bytes: Uint8Array) =>
    Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(file, { flag: "a" })
      if (bytes.length > 0) yield* handle.writeAll(bytes)
      yield* handle.sync
      if (!synced.has(dir)) {
        const dirHandle = yield* fs.open(dir, { flag: "r" })
        yield* dirHandle.sync
        synced.add(dir)
      }
    }))

  const append = (
    dir: string,
    entries: ReadonlyArray<CheckpointEntry>,
    options?: AppendOptions
  ): Effect.Effect<void, CheckpointError> =>
    Effect.suspend(() => {
      const file = path.join(dir, TASKS_FILE)
      let text = ""
      try {
        for (const e of entries) text += entryLine(e)
      } catch (cause) {
        // JSON.stringify overflows on values nested too deeply: a typed failure, not a defect.
        return Effect.fail(new CheckpointError({ path: file, reason: `An entry has no JSON form: ${reasonOf(cause)}`, cause }))
      }
      const bytes = encoder.encode(text)
      return Effect.gen(function*() {
        if (!goodSize.has(file)) {
          yield* fs.makeDirectory(dir, { recursive: true })
          const size = yield* fs.stat(file).pipe(
            Effect.map((info) => Number(info.size)),
            Effect.catchTag("SystemError", (e) => e.reason === "NotFound" ? Effect.succeed(0) : Effect.fail(e))
          )
          goodSize.set(file, size)
        }
        const size = goodSize.get(file)!
        if (damaged.has(file)) {
          yield* fs.truncate(file, size).pipe(
            Effect.catchTag("SystemError", (e) => e.reason === "NotFound" && size === 0 ? Effect.void : Effect.fail(e))
          )
          damaged.delete(file)
        }
        damaged.add(file)
        if (options?.durability === "fsync") yield* appendSynced(dir, file, bytes)
        else yield* fs.writeFile(file, bytes, { flag: "a" })
        damaged.delete(file)
        goodSize.set(file, size + bytes.length)
      }).pipe(
        Effect.mapError((cause) => new CheckpointError({ path: file, reason: reasonOf(cause), cause }))
      )
    })

  const load = (
    dir: string,
    onEntry: (entry: CheckpointEntry) => void
  ): Effect.Effect<void, BadCheckpoint> => {
    const file = path.join(dir, TASKS_FILE)
    return Effect.gen(function*() {
      const info = yield* fs.stat(file).pipe(Effect.option)
      if (Option.isNone(info) || info.value.type !== "File") {
        const dirInfo = yield* fs.stat(dir).pipe(Effect.option)
        return yield* new BadCheckpoint({
          path: file,
          line: 0,
          reason: Option.isNone(dirInfo)
            ? "the checkpoint directory does not exist"
            : "the directory holds no checkpoint file (tasks.jsonl)"
        })
      }
      let torn = 0
      const parser = makeParser(file, onEntry, (n) => {
        torn = n
      })
      const decoder = new TextDecoder("utf-8")
      const feed = (chunk: Uint8Array) =>
        Effect.suspend(() => {
          try {
            parser.push(decoder.decode(chunk, { stream: true }))
            return Effect.void
          } catch (e) {
            return e instanceof Stop ? Effect.fail(e.error) : Effect.die(e)
          }
        })
      yield* fs.stream(file, { chunkSize: FileSystem.KiB(256) }).pipe(
        Stream.mapError((cause) => new BadCheckpoint({ path: file, line: 0, reason: `Cannot read: ${reasonOf(cause)}` })),
        Stream.runForEach(feed)
      )
      yield* Effect.suspend(() => {
        try {
          parser.push(decoder.decode())
          parser.end()
          return Effect.void
        } catch (e) {
          return e instanceof Stop ? Effect.fail(e.error) : Effect.die(e)
        }
      })
      if (torn > 0) {
        yield* Effect.logWarning(`Skipped a torn last line (line ${torn}) in ${file}: an interrupted write`)
      }
    })
  }

  const exists = (dir: string): Effect.Effect<boolean> =>
    fs.stat(path.join(dir, TASKS_FILE)).pipe(
      Effect.map((info) => info.type === "File"),
      Effect.orElseSucceed(() => false)
    )

  return { append, load, exists } satisfies CheckpointStoreService
})
