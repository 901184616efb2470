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
import { ByteQueue, completeLinesOfPieces } from "./byteQueue.ts"
import type { ByteBatch } from "./byteQueue.ts"
import { isAbsent, loadFile } from "./fileLoad.ts"
import { encodedLine, entryLine, TASKS_FILE } from "./format.ts"
import { reasonOf } from "./messages.ts"
import * as runDirs from "./runDirs.ts"
import { PieceEncoder, utf8, utf8ByteLength } from "./utf8.ts"

// Lines are encoded and written in pieces of this many bytes; appends of up to SMALL_APPEND
// lines in one piece made at once.
const PIECE = 1 << 20
const SMALL_APPEND = 256

/** An open checkpoint file, in a scope of its own (so that a handle that failed can be closed and opened again). */
interface OpenFile {
  readonly file: FileSystem.File
  readonly scope: Scope.CloseableScope
}

/**
 * What one append writes: the bytes it writes to a handle (returning their count), and how
 * many complete lines the first `bytes` of them hold, with their length (after a write cut
 * short, those are kept).
 */
interface Payload {
  readonly write: (handle: FileSystem.File) => Effect.Effect<number, PlatformError>
  readonly landed: (bytes: number) => { readonly lines: number; readonly bytes: number }
}

/** Complete lines among the first `bytes` bytes of `lines` (strings, each ending in "\n"), and their length. */
const completeLines = (
  lines: ReadonlyArray<string>,
  bytes: number
): { readonly lines: number; readonly bytes: number } => {
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

/**
 * Large appends go in pieces of 1 MiB, each encoded into one reused buffer: no copy of the
 * whole batch as text or bytes (`dfk compact` appends whole checkpoints). Returns the byte count.
 */
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

/** Writes pieces that hold whole lines, one after another. Returns the byte count. */
const writePieces = (
  handle: FileSystem.File,
  pieces: ReadonlyArray<Uint8Array>
): Effect.Effect<number, PlatformError> =>
  Effect.suspend(() => {
    let length = 0
    for (const piece of pieces) length += piece.length
    if (pieces.length === 1) return Effect.as(handle.writeAll(pieces[0]!), length)
    return Effect.as(Effect.forEach(pieces, (piece) => handle.writeAll(piece), { discard: true }), length)
  })

/** The JSON Lines files of one store: open handles, the size of each file after its last good append. */
class FileStore {
  /**
   * The size each file had after its last good append. After a failed append (which may have
   * written part of its bytes), the next append first cuts the file back to that size, so a
   * failed pass never leaves a torn line in the middle of a checkpoint.
   */
  private readonly goodSize = new Map<string, number>()
  private readonly damaged = new Set<string>()
  /**
   * Each checkpoint file is kept open for appending while the store lives (one write per pass
   * instead of open, write and close).
   */
  private readonly handles = new Map<string, OpenFile>()
  /** Directories synced once (with fsync: a new file's directory entry survives a power loss too). */
  private readonly synced = new Set<string>()

  constructor(private readonly fs: FileSystem.FileSystem, private readonly path: Path.Path) {}

  /** Closes every open file. */
  readonly closeAll: Effect.Effect<void> = Effect.suspend(() => {
    const open = [...this.handles.values()]
    this.handles.clear()
    return Effect.forEach(open, (h) => Scope.close(h.scope, Exit.void), { discard: true })
  })

  /** The service: entries appended as lines (JSON.stringify of an entry, or the texts of an encoded one). */
  service(): CheckpointStoreService {
    return {
      append: (dir: string, entries: ReadonlyArray<CheckpointEntry>, options?: AppendOptions) =>
        this.appendLines(dir, entries, entryLine, options),
      appendEncoded: (dir: string, entries: ReadonlyArray<EncodedEntry>, options?: AppendOptions) =>
        this.appendLines(dir, entries, encodedLine, options),
      load: (dir: string, onEntry: (entry: CheckpointEntry) => void): Effect.Effect<void, BadCheckpoint> =>
        loadFile(this.fs, this.path.join(dir, TASKS_FILE), dir, onEntry),
      exists: (dir) => this.exists(dir),
      // Pending entries as the UTF-8 bytes of their lines, encoded when they are queued.
      queue: (dir, options) => {
        const bytes = new ByteQueue()
        return {
          get size() {
            return bytes.size
          },
          push: (entry) => bytes.push(encodedLine(entry)),
          take: () => bytes.take(),
          putBack: (batch, written) => bytes.putBack(batch as ByteBatch, written),
          write: (batch) => {
            const pieces = (batch as ByteBatch).pieces
            return this.append(dir, {
              write: (handle) => writePieces(handle, pieces),
              landed: (n) => completeLinesOfPieces(pieces, n)
            }, options)
          }
        }
      },
      // Every line is checked against the format as it is read.
      checksEntries: true,
      runs: runDirs.fileRuns(this.fs, this.path)
    }
  }

  // A checkpoint file that cannot be stat'ed for another reason than its absence (permissions,
  // I/O) counts as there, so that loading it reports why it cannot be read instead of the run
  // being skipped in silence.
  private exists(dir: string): Effect.Effect<boolean> {
    return this.fs.stat(this.path.join(dir, TASKS_FILE)).pipe(
      Effect.map((info) => info.type === "File"),
      Effect.catchAll((error) => Effect.succeed(!isAbsent(error)))
    )
  }

  private appendLines<E>(
    dir: string,
    entries: ReadonlyArray<E>,
    lineOf: (entry: E) => string,
    options: AppendOptions | undefined
  ): Effect.Effect<void, CheckpointError> {
    return Effect.suspend(() => {
      let lines: Array<string>
      try {
        lines = entries.map(lineOf)
      } catch (cause) {
        // JSON.stringify overflows on values nested too deeply: a typed failure, not a defect.
        const file = this.path.join(dir, TASKS_FILE)
        return Effect.fail(
          new CheckpointError({ path: file, reason: `An entry has no JSON form: ${reasonOf(cause)}`, cause })
        )
      }
      return this.append(
        dir,
        { write: (handle) => writeLines(handle, lines), landed: (n) => completeLines(lines, n) },
        options
      )
    })
  }

  /** Appends `payload` to the file of `dir`. */
  private append(
    dir: string,
    payload: Payload,
    options: AppendOptions | undefined
  ): Effect.Effect<void, CheckpointError> {
    return Effect.suspend(() => {
      const file = this.path.join(dir, TASKS_FILE)
      const size = this.goodSize.get(file)
      // The common case: a file this store has written before, intact.
      if (size !== undefined && !this.damaged.has(file)) return this.writeFrom(dir, file, size, payload, options)
      return this.prepare(dir, file).pipe(
        Effect.mapError((cause) => failure(file, cause)),
        Effect.flatMap((size) => this.writeFrom(dir, file, size, payload, options))
      )
    })
  }

  /**
   * Before the first append to a file (its directory made, its size read), or after a failed
   * one (the file cut back to its last good size): the size to write from.
   */
  private prepare(dir: string, file: string): Effect.Effect<number, PlatformError> {
    const fs = this.fs
    return Effect.gen(this, function*() {
      if (!this.goodSize.has(file)) {
        yield* fs.makeDirectory(dir, { recursive: true })
        const size = yield* fs.stat(file).pipe(
          Effect.map((info) => Number(info.size)),
          Effect.catchTag("SystemError", (e) => e.reason === "NotFound" ? Effect.succeed(0) : Effect.fail(e))
        )
        this.goodSize.set(file, size)
      }
      const size = this.goodSize.get(file)!
      if (this.damaged.has(file)) {
        yield* fs.truncate(file, size).pipe(
          Effect.catchTag("SystemError", (e) => e.reason === "NotFound" && size === 0 ? Effect.void : Effect.fail(e))
        )
        this.damaged.delete(file)
      }
      return size
    })
  }

  /** Writes `payload` at the end of `file`, from `size` on (the file is marked damaged until the write succeeds). */
  private writeFrom(
    dir: string,
    file: string,
    size: number,
    payload: Payload,
    options: AppendOptions | undefined
  ): Effect.Effect<void, CheckpointError> {
    this.damaged.add(file)
    const written = Effect.flatMap(this.handleFor(file), (handle) =>
      options?.durability === "fsync"
        ? payload.write(handle).pipe(Effect.tap(handle.sync), Effect.tap(this.syncDir(dir)))
        : payload.write(handle)).pipe(
        // A failed handle is closed; the next append opens the file again.
        Effect.onError(() => this.dropHandle(file))
      )
    return Effect.matchEffect(written, {
      onFailure: (cause) => this.salvage(file, size, payload, cause),
      onSuccess: (length) => {
        this.damaged.delete(file)
        this.goodSize.set(file, size + length)
        return Effect.void
      }
    })
  }

  /**
   * After a failed write from `size` on (a full disk cuts a write short): keeps the complete
   * lines that landed (counted as written), cuts off the torn rest, and fails saying how many
   * landed. When the file cannot be looked at, it stays marked damaged, and the next append
   * cuts it back to `size` first.
   */
  private salvage(
    file: string,
    size: number,
    payload: Payload,
    cause: unknown
  ): Effect.Effect<never, CheckpointError> {
    return Effect.flatMap(
      this.fs.stat(file).pipe(Effect.map((info) => Number(info.size)), Effect.option),
      (now) => {
        if (now._tag === "None" || now.value < size) return Effect.fail(failure(file, cause))
        const kept = payload.landed(now.value - size)
        const end = size + kept.bytes
        const cut = now.value > end ? this.fs.truncate(file, end) : Effect.void
        return cut.pipe(
          Effect.matchEffect({
            onFailure: () => Effect.fail(failure(file, cause)),
            onSuccess: () => {
              this.damaged.delete(file)
              this.goodSize.set(file, end)
              return Effect.fail(failure(file, cause, kept.lines))
            }
          })
        )
      }
    )
  }

  private handleFor(file: string): Effect.Effect<FileSystem.File, PlatformError> {
    const open = this.handles.get(file)
    if (open !== undefined) return Effect.succeed(open.file)
    return Effect.flatMap(Scope.make(ExecutionStrategy.sequential), (child) =>
      this.fs.open(file, { flag: "a" }).pipe(
        Scope.extend(child),
        Effect.tap((handle) => Effect.sync(() => this.handles.set(file, { file: handle, scope: child }))),
        Effect.tapErrorCause(() => Scope.close(child, Exit.void))
      ))
  }

  private dropHandle(file: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const open = this.handles.get(file)
      this.handles.delete(file)
      return open === undefined ? Effect.void : Scope.close(open.scope, Exit.void)
    })
  }

  private syncDir(dir: string): Effect.Effect<void, PlatformError> {
    const fs = this.fs
    return this.synced.has(dir) ? Effect.void : Effect.scoped(Effect.gen(this, function*() {
      const dirHandle = yield* fs.open(dir, { flag: "r" })
      yield* dirHandle.sync
      this.synced.add(dir)
    }))
  }
}

/** A failed append to `file`, with the number of entries it stored all the same. */
const failure = (file: string, cause: unknown, written?: number): CheckpointError =>
  new CheckpointError({
    path: file,
    reason: reasonOf(cause),
    cause,
    ...(written !== undefined && written > 0 ? { written } : {})
  })

/** The JSON Lines store over the platform's `FileSystem`; its open files close with the scope. */
export const make: Effect.Effect<CheckpointStoreService, never, FileSystem.FileSystem | Path.Path | Scope.Scope> =
  Effect
    .gen(function*() {
      const store = new FileStore(yield* FileSystem.FileSystem, yield* Path.Path)
      // Registered now, so it runs after finalizers added later (such as a kernel's final pass).
      yield* Effect.addFinalizer(() => store.closeAll)
      return store.service()
    })
