/**
 * The default checkpoint store: one `tasks.jsonl` per checkpoint directory, appended; runs
 * are folders (`runDirs.ts`). The only place, with `format.ts`, that knows the file format.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { AppendOptions, CheckpointEntry, CheckpointStoreService, EncodedEntry } from "../CheckpointStore.ts"
import type { BadCheckpoint } from "../errors.ts"
import { CheckpointError } from "../errors.ts"
import { isAbsent, loadFile } from "./fileLoad.ts"
import { encodedLine, entryLine, TASKS_FILE } from "./format.ts"
import { reasonOf } from "./messages.ts"
import * as runDirs from "./runDirs.ts"
import { PieceEncoder, utf8, utf8ByteLength } from "./utf8.ts"

// Lines are encoded and written in pieces of this many bytes; appends of up to SMALL_APPEND
// lines in one piece made at once.
const PIECE = 1 << 20
const SMALL_APPEND = 256

/** The JSON Lines store over the platform's `FileSystem`; its open files close with the scope. */
export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  // The size each file had after its last good append. After a failed append (which may
  // have written part of its bytes), the next append first cuts the file back to that size,
  // so a failed pass never leaves a torn line in the middle of a checkpoint.
  const goodSize = new Map<string, number>()
  const damaged = new Set<string>()

  // Large appends go in pieces of 1 MiB, each encoded into one reused buffer: no copy of the
  // whole batch as text or bytes (`dfk compact` appends whole checkpoints).
  const writeLines = (handle: FileSystem.File, lines: ReadonlyArray<string>): Effect.Effect<number, PlatformError> => {
    if (lines.length === 0) return Effect.succeed(0)
    if (lines.length <= SMALL_APPEND) {
      const bytes = utf8(lines.length === 1 ? lines[0]! : lines.join(""))
      return Effect.as(handle.writeAll(bytes), bytes.length)
    }
    return Effect.suspend(() => {
      const encoder = new PieceEncoder(lines, PIECE)
      let written = 0
      const step = (piece: Uint8Array | undefined): Effect.Effect<number, PlatformError> => {
        if (piece === undefined) return Effect.succeed(written)
        written += piece.length
        return Effect.flatMap(handle.writeAll(piece), () => step(encoder.piece()))
      }
      return step(encoder.piece())
    })
  }

  // Each checkpoint file is kept open for appending while the store lives (one write per
  // pass instead of open, write and close), in a scope of its own so that a handle that
  // failed can be closed and opened again.
  const handles = new Map<string, { readonly file: FileSystem.File; readonly scope: Scope.CloseableScope }>()
  // Registered now, so it runs after finalizers added later (such as a kernel's final pass).
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      const open = [...handles.values()]
      handles.clear()
      return Effect.forEach(open, (h) => Scope.close(h.scope, Exit.void), { discard: true })
    })
  )
  const handleFor = (file: string) => {
    const open = handles.get(file)
    if (open !== undefined) return Effect.succeed(open.file)
    return Effect.flatMap(Scope.make(ExecutionStrategy.sequential), (child) =>
      fs.open(file, { flag: "a" }).pipe(
        Scope.extend(child),
        Effect.tap((handle) => Effect.sync(() => handles.set(file, { file: handle, scope: child }))),
        Effect.tapErrorCause(() => Scope.close(child, Exit.void))
      ))
  }
  const dropHandle = (file: string) =>
    Effect.suspend(() => {
      const open = handles.get(file)
      handles.delete(file)
      return open === undefined ? Effect.void : Scope.close(open.scope, Exit.void)
    })

  // With fsync: sync the file after each write, and its directory the first time (so that
  // a new file's directory entry survives a power loss too).
  const synced = new Set<string>()
  const syncDir = (dir: string) =>
    synced.has(dir) ? Effect.void : Effect.scoped(Effect.gen(function*() {
      const dirHandle = yield* fs.open(dir, { flag: "r" })
      yield* dirHandle.sync
      synced.add(dir)
    }))
  // Appends to `dir`'s file what `write` writes to its handle (returning the byte count).
  // `linesIn(n)` says how many complete lines the first `n` bytes of the append hold, and
  // their length in bytes: after a write cut short (a full disk), the complete lines that
  // landed are kept (and counted as written), the torn rest is cut off.
  const appendWith = (
    dir: string,
    options: AppendOptions | undefined,
    write: (handle: FileSystem.File) => Effect.Effect<number, PlatformError>,
    linesIn: (bytes: number) => { readonly lines: number; readonly bytes: number }
  ): Effect.Effect<void, CheckpointError> =>
    Effect.suspend(() => {
      const file = path.join(dir, TASKS_FILE)
      const fail = (cause: unknown, written?: number) =>
        new CheckpointError({
          path: file,
          reason: reasonOf(cause),
          cause,
          ...(written !== undefined && written > 0 ? { written } : {})
        })
      const fsync = options?.durability === "fsync"
      const written = Effect.flatMap(handleFor(file), (handle) =>
        fsync ? write(handle).pipe(Effect.tap(handle.sync), Effect.tap(syncDir(dir))) : write(handle)).pipe(
          // A failed handle is closed; the next append opens the file again.
          Effect.onError(() => dropHandle(file))
        )
      // After a failed write from `size` on: keeps the complete lines that landed, cuts off
      // the rest, and fails saying how many landed. When the file cannot be looked at, it
      // stays marked damaged, and the next append cuts it back to `size` first.
      const salvage = (size: number, cause: unknown): Effect.Effect<never, CheckpointError> =>
        Effect.flatMap(
          fs.stat(file).pipe(Effect.map((info) => Number(info.size)), Effect.option),
          (now) => {
            if (now._tag === "None" || now.value < size) return Effect.fail(fail(cause))
            const kept = linesIn(now.value - size)
            const end = size + kept.bytes
            const cut = now.value > end ? fs.truncate(file, end) : Effect.void
            return cut.pipe(
              Effect.matchEffect({
                onFailure: () => Effect.fail(fail(cause)),
                onSuccess: () => {
                  damaged.delete(file)
                  goodSize.set(file, end)
                  return Effect.fail(fail(cause, kept.lines))
                }
              })
            )
          }
        )
      // Writes from `size` on (the file is marked damaged until the write succeeds).
      const writeFrom = (size: number): Effect.Effect<void, CheckpointError> => {
        damaged.add(file)
        return Effect.matchEffect(written, {
          onFailure: (cause) => salvage(size, cause),
          onSuccess: (length) => {
            damaged.delete(file)
            goodSize.set(file, size + length)
            return Effect.void
          }
        })
      }
      const size = goodSize.get(file)
      // The common case: a file this store has written before, intact.
      if (size !== undefined && !damaged.has(file)) return writeFrom(size)
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
        return size
      }).pipe(
        Effect.mapError((cause) => fail(cause)),
        Effect.flatMap(writeFrom)
      )
    })

  /** Complete lines among the first `bytes` bytes of `lines` (strings, each ending in "\n"). */
  const linesOfText = (lines: ReadonlyArray<string>) => (bytes: number) => {
    let at = 0
    let count = 0
    for (const line of lines) {
      const next = at + utf8ByteLength(line)
      if (next > bytes) break
      at = next
      count++
    }
    return { lines: count, bytes: at }
  }

  // Entries as lines: JSON.stringify of each entry object, or the JSON texts of encoded
  // entries (the kernel's) put in place as they are.
  const appendLines = <E>(
    dir: string,
    entries: ReadonlyArray<E>,
    lineOf: (entry: E) => string,
    options: AppendOptions | undefined
  ): Effect.Effect<void, CheckpointError> =>
    Effect.suspend(() => {
      let lines: Array<string>
      try {
        lines = entries.map(lineOf)
      } catch (cause) {
        // JSON.stringify overflows on values nested too deeply: a typed failure, not a defect.
        const file = path.join(dir, TASKS_FILE)
        return Effect.fail(new CheckpointError({ path: file, reason: `An entry has no JSON form: ${reasonOf(cause)}`, cause }))
      }
      return appendWith(dir, options, (handle) => writeLines(handle, lines), linesOfText(lines))
    })

  const append = (dir: string, entries: ReadonlyArray<CheckpointEntry>, options?: AppendOptions) =>
    appendLines(dir, entries, entryLine, options)
  const appendEncoded = (dir: string, entries: ReadonlyArray<EncodedEntry>, options?: AppendOptions) =>
    appendLines(dir, entries, encodedLine, options)

  const load = (dir: string, onEntry: (entry: CheckpointEntry) => void): Effect.Effect<void, BadCheckpoint> =>
    loadFile(fs, path.join(dir, TASKS_FILE), dir, onEntry)

  // A checkpoint file that cannot be stat'ed for another reason than its absence (permissions,
  // I/O) counts as there, so that loading it reports why it cannot be read instead of the run
  // being skipped in silence.
  const exists = (dir: string): Effect.Effect<boolean> =>
    fs.stat(path.join(dir, TASKS_FILE)).pipe(
      Effect.map((info) => info.type === "File"),
      Effect.catchAll((error) => Effect.succeed(!isAbsent(error)))
    )

  const store: CheckpointStoreService = {
    append,
    appendEncoded,
    load,
    exists,
    // Every line is checked against the format as it is read.
    checksEntries: true,
    runs: runDirs.fileRuns(fs, path)
  }
  return store
})
