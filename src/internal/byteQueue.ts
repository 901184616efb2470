/**
 * The file store's queue of pending lines (`StoreQueue`): each line encoded once, when it is
 * queued, into slabs of 1 MiB, so that a checkpoint pass writes the slabs as they are.
 */
import type { StoreBatch } from "../CheckpointStore.ts"
import { allocBytes, utf8, utf8Into } from "./utf8.ts"

/** A batch of encoded lines, in pieces of up to about 1 MiB. */
export class ByteBatch implements StoreBatch {
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
export class ByteQueue {
  private sealed: Array<Uint8Array> = []
  private slab: Uint8Array | undefined
  private start = 0
  private offset = 0
  private count = 0
  get size(): number {
    return this.count
  }
  /** Queues a line (newline included). */
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

/** Complete lines among the first `bytes` bytes of `pieces` (which hold whole lines), and their length. */
export const completeLinesOfPieces = (
  pieces: ReadonlyArray<Uint8Array>,
  bytes: number
): { readonly lines: number; readonly bytes: number } => {
  let seen = 0
  let count = 0
  let end = 0
  for (const piece of pieces) {
    const upTo = Math.min(piece.length, bytes - seen)
    for (let i = 0; i < upTo; i++) {
      if (piece[i] === 10) {
        count++
        end = seen + i + 1
      }
    }
    seen += piece.length
    if (seen >= bytes) break
  }
  return { lines: count, bytes: end }
}
