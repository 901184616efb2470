/**
 * The kernel's queue of checkpoint entries not yet written, in the order they were queued:
 * encoded entries (`EncodedEntry`: the input and result as JSON text), which every store is
 * handed (through `appendEncoded`, or parsed for `append`).
 */
import type { EncodedEntry } from "../CheckpointStore.ts"

/** Entries not yet written, in the order they were queued. */
export class PendingQueue {
  private entries: Array<EncodedEntry> = []
  /** How many entries are queued. */
  get size(): number {
    return this.entries.length
  }
  /** Queues an entry. */
  push(entry: EncodedEntry): void {
    this.entries.push(entry)
  }
  /** Takes every queued entry. */
  take(): Array<EncodedEntry> {
    const batch = this.entries
    this.entries = []
    return batch
  }
  /**
   * Puts a batch back in front of whatever was queued since it was taken, less its first
   * `written` entries (which a failed append stored all the same).
   */
  putBack(batch: ReadonlyArray<EncodedEntry>, written: number): void {
    this.entries = (written > 0 ? batch.slice(written) : batch).concat(this.entries)
  }
}
