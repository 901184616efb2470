/**
 * The kernel's own queue of checkpoint entries not yet written, for stores without a queue
 * of their own (`CheckpointStoreService.queue`): encoded entries in order, written with the
 * store's `appendEncoded` (or parsed for its `append`).
 */
import type * as Effect from "effect/Effect"
import type { AppendOptions, CheckpointStoreService, EncodedEntry, StoreBatch, StoreQueue } from "../CheckpointStore.ts"
import type { CheckpointError } from "../errors.ts"

/** A batch of encoded entries. */
export class EntryBatch implements StoreBatch {
  constructor(readonly entries: ReadonlyArray<EncodedEntry>) {}
  get count(): number {
    return this.entries.length
  }
}

/** Encoded entries, in the order they were queued, written by `append`. */
export class PendingQueue implements StoreQueue {
  private entries: Array<EncodedEntry> = []
  constructor(
    private readonly append: (entries: ReadonlyArray<EncodedEntry>) => Effect.Effect<void, CheckpointError>
  ) {}
  get size(): number {
    return this.entries.length
  }
  readonly push = (entry: EncodedEntry): void => {
    this.entries.push(entry)
  }
  readonly take = (): EntryBatch => {
    const batch = new EntryBatch(this.entries)
    this.entries = []
    return batch
  }
  readonly write = (batch: StoreBatch): Effect.Effect<void, CheckpointError> =>
    this.append((batch as EntryBatch).entries)
  readonly putBack = (batch: StoreBatch, written: number): void => {
    const entries = (batch as EntryBatch).entries
    this.entries = (written > 0 ? entries.slice(written) : entries).concat(this.entries)
  }
}

/** The queue for the checkpoint in `dir` of `store`: its own, or the kernel's over `appendEncoded` (or `append`). */
export const queueFor = (
  store: CheckpointStoreService,
  dir: string,
  options: AppendOptions,
  appendEncoded: (
    dir: string,
    entries: ReadonlyArray<EncodedEntry>,
    options: AppendOptions
  ) => Effect.Effect<void, CheckpointError>
): StoreQueue =>
  store.queue !== undefined
    ? store.queue(dir, options)
    : new PendingQueue((entries) => appendEncoded(dir, entries, options))
