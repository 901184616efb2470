/**
 * The kernel's queue of checkpoint entries not yet written, in two forms: the UTF-8 bytes
 * of their lines (for the built-in JSON Lines store) or entry objects (for any other store).
 */
import type * as Effect from "effect/Effect"
import type { AppendOptions, CheckpointEntry, CheckpointStoreService } from "../CheckpointStore.ts"
import type { CheckpointError } from "../errors.ts"
import { allocBytes, entryOfLine, utf8, utf8Into } from "./entry.ts"

/**
 * What the built-in store offers besides `append`: appending lines already encoded (one
 * piece after another). Found on a store under this key.
 */
export const AppendEncoded: unique symbol = Symbol.for("effect-dfk/AppendEncoded")

/** Appends encoded lines; the pieces hold whole lines. */
export type AppendEncodedFn = (
  dir: string,
  pieces: ReadonlyArray<Uint8Array>,
  options?: AppendOptions
) => Effect.Effect<void, CheckpointError>

/** The encoded-append function of a store, when it has one. */
export const appendEncodedOf = (store: CheckpointStoreService): AppendEncodedFn | undefined =>
  (store as { readonly [AppendEncoded]?: AppendEncodedFn })[AppendEncoded]

/** A batch taken off a queue: given back to it, in front, when writing it failed. */
export interface Batch {
  readonly count: number
}

/** Entries not yet written, in the order they were queued. */
export interface PendingQueue<B extends Batch> {
  /** How many entries are queued. */
  readonly size: number
  /** Queues an entry, given as its line (newline included). */
  push(line: string): void
  /** Takes every queued entry. */
  take(): B
  /**
   * Puts a batch back in front of whatever was queued since it was taken, less its first
   * `written` entries (which a failed append stored all the same).
   */
  putBack(batch: B, written: number): void
}

/** A batch of entries for a store that takes entry objects: the lines, and plain entries made of them. */
export class EntryBatch implements Batch {
  /** Plain objects with the fields of `CheckpointEntry`, made when the batch is taken. */
  readonly entries: Array<CheckpointEntry>
  constructor(readonly lines: Array<string>) {
    this.entries = lines.map(entryOfLine)
  }
  get count(): number {
    return this.lines.length
  }
}

/** The queue for a store that takes entry objects: lines until a pass takes them. */
export class EntryQueue implements PendingQueue<EntryBatch> {
  private lines: Array<string> = []
  get size(): number {
    return this.lines.length
  }
  push(line: string): void {
    this.lines.push(line)
  }
  take(): EntryBatch {
    const batch = new EntryBatch(this.lines)
    this.lines = []
    return batch
  }
  putBack(batch: EntryBatch, written: number): void {
    this.lines = (written > 0 ? batch.lines.slice(written) : batch.lines).concat(this.lines)
  }
}

/** A batch of encoded lines, in pieces of up to about 1 MiB. */
export class ByteBatch implements Batch {
  constructor(readonly pieces: Array<Uint8Array>, readonly count: number) {}
}

const FIRST_SLAB = 64 * 1024
const SLAB = 1024 * 1024

/**
 * The queue for the built-in store: each line is encoded once, when it is queued, into
 * slabs of 1 MiB, so a pending entry costs its bytes outside the JavaScript heap (the
 * garbage collector never copies or scans them) and a pass writes the slabs as they are.
 * Bytes handed out in a batch are never written over: a slab only fills further on.
 */
export class ByteQueue implements PendingQueue<ByteBatch> {
  private sealed: Array<Uint8Array> = []
  private slab: Uint8Array | undefined
  private start = 0
  private offset = 0
  private count = 0
  get size(): number {
    return this.count
  }
  push(line: string): void {
    this.count++
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const most = line.length * 3
    if (this.slab === undefined || this.offset + most > this.slab.length) {
      this.seal()
      if (most > SLAB) {
        // A line longer than a slab is a piece of its own.
        this.sealed.push(utf8(line))
        return
      }
      this.slab = allocBytes(this.slab === undefined ? Math.max(FIRST_SLAB, most) : SLAB)
      this.start = 0
      this.offset = 0
    }
    this.offset += utf8Into(this.slab, line, this.offset)
  }
  take(): ByteBatch {
    this.seal()
    const batch = new ByteBatch(this.sealed, this.count)
    this.sealed = []
    this.count = 0
    return batch
  }
  putBack(batch: ByteBatch, written: number): void {
    this.seal()
    this.sealed = (written > 0 ? skipLines(batch.pieces, written) : batch.pieces).concat(this.sealed)
    this.count += batch.count - Math.min(written, batch.count)
  }
  // Moves the filled part of the current slab to the sealed pieces.
  private seal(): void {
    if (this.slab !== undefined && this.offset > this.start) {
      this.sealed.push(this.slab.subarray(this.start, this.offset))
      this.start = this.offset
    }
  }
}

/** The pieces after the first `n` lines of `pieces` (which hold whole lines). */
const skipLines = (pieces: ReadonlyArray<Uint8Array>, n: number): Array<Uint8Array> => {
  let left = n
  for (let p = 0; p < pieces.length; p++) {
    const piece = pieces[p]!
    let i = 0
    while (left > 0) {
      const nl = piece.indexOf(10, i)
      if (nl === -1) break
      left--
      i = nl + 1
    }
    if (left === 0) {
      const rest = pieces.slice(p + 1)
      return i < piece.length ? [piece.subarray(i), ...rest] : rest
    }
  }
  return []
}

/** A queue and the way to write its batches to a store's checkpoint directory. */
export interface Pending {
  readonly queue: PendingQueue<Batch>
  /** Writes a batch taken off `queue`. */
  write(batch: Batch): Effect.Effect<void, CheckpointError>
}

const pendingOf = <B extends Batch>(
  queue: PendingQueue<B>,
  write: (batch: B) => Effect.Effect<void, CheckpointError>
): Pending => ({
  queue,
  write(batch: B) {
    return write(batch)
  }
})

/** The queue that suits `store`: encoded lines for the built-in store, entry objects for others. */
export const pendingFor = (store: CheckpointStoreService, dir: string, options: AppendOptions): Pending => {
  const appendEncoded = appendEncodedOf(store)
  return appendEncoded !== undefined
    ? pendingOf(new ByteQueue(), (batch) => appendEncoded(dir, batch.pieces, options))
    : pendingOf(new EntryQueue(), (batch) => store.append(dir, batch.entries, options))
}
