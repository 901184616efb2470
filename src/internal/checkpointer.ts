/**
 * The checkpointer: the queue of entries not yet written, checkpoint passes (one at a time,
 * with group commit), what `task_exit` callers wait for, how failed passes are logged, and
 * the final pass at the close. Where to look for "what happens when a pass fails".
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { EncodedEntry, StoreQueue } from "../CheckpointStore.ts"
import type { CheckpointMode } from "../Dfk.ts"
import { CheckpointError } from "../errors.ts"
import * as Metrics from "../Metrics.ts"
import { causeMessage, keptOf, oneLine, plural } from "./messages.ts"
import { nativeTracer, noSpan } from "./spans.ts"
import type { SpanLike } from "./spans.ts"

/** A caller waiting for the pass under way to end: the queue number it needs written. */
interface PassWaiter {
  readonly seq: number
  readonly wake: () => void
}

/** The pending entries of one kernel and the passes that write them to its checkpoint dir. */
export class Checkpointer {
  /** Entries ever queued: the queue number of the last one. */
  private queued = 0
  /** Entries ever written: a prefix of the queue, in order. */
  written = 0
  /** Entries of the pass under way: still pending until written. */
  private writing = 0
  /** Queue numbers of carried-forward entries (for the summary: how many were written). */
  private readonly carried: Array<number> = []

  // One pass at a time. Callers waiting for a pass sit in a list with the queue number they
  // need written (explicit passes need a pass of their own: Infinity). When a pass ends,
  // those it covered return and the first of the others starts the next pass, which takes
  // every entry queued meanwhile (group commit); the rest sleep on. (Effect's Semaphore
  // wakes every waiter on each release: with hundreds of them that costs more than the write.)
  private passing = false
  private passWaiters: Array<PassWaiter> = []
  // The highest queue number a failed pass tried to write: task_exit callers up to it stop
  // waiting (their entries stay pending), so one failure is one failed write and one log,
  // not one more failing pass per waiting caller.
  private failedThrough = 0

  // Failed writes come in bursts (a full disk fails every pass until space is freed): the
  // first failure of a burst is logged with its reason, the others are counted, and the
  // count is logged once the burst ends (a pass succeeds, or the kernel closes).
  private inBurst = false
  private suppressed = 0
  private lastReason = ""

  /**
   * A pass logs `Done checkpointing N tasks` (or that it wrote none) at info level, as Parsl
   * does, except in task_exit mode (debug: a line per task would flood the console).
   */
  private readonly passLog: (message: string) => Effect.Effect<void>

  /** Writes every pending entry, after the pass under way if there is one. Uninterruptible. */
  readonly pass: Effect.Effect<void, CheckpointError>

  constructor(
    /** Entries not written yet (less those of the pass under way), and how they are written. */
    private readonly queue: StoreQueue,
    private readonly dir: string,
    mode: CheckpointMode | undefined,
    /** Called with the number of entries each write stored. */
    private readonly onWritten: (count: number) => void
  ) {
    this.passLog = mode === "task_exit" ? Effect.logDebug : Effect.logInfo
    this.pass = Effect.uninterruptible(this.exclusivePass(Infinity))
  }

  /** Entries not written yet (those of the pass under way included). */
  get size(): number {
    return this.queue.size + this.writing
  }

  /** Queues an entry; returns its queue number. */
  enqueue(entry: EncodedEntry): number {
    this.queue.push(entry)
    return ++this.queued
  }

  /** Queues the entry of a result carried forward from a loaded checkpoint (not waited for). */
  enqueueCarried(entry: EncodedEntry): void {
    this.carried.push(this.enqueue(entry))
  }

  /** How many carried-forward entries are written. */
  carriedWritten(): number {
    let n = 0
    for (const seq of this.carried) if (seq <= this.written) n++
    return n
  }

  /** Logs a failed write: the first of a burst with its reason, later ones counted. */
  failureLogged(message: string, reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.lastReason = reason
      if (!this.inBurst) {
        this.inBurst = true
        return Effect.logError(`${message}: ${reason}`)
      }
      this.suppressed++
      return Effect.void
    })
  }

  /** Ends a burst of failed writes: logs how many were not logged one by one. */
  burstEnded(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.inBurst = false
      if (this.suppressed === 0) return Effect.void
      const n = this.suppressed
      this.suppressed = 0
      return Effect.logError(
        `${plural(n, "more failed checkpoint write", "more failed checkpoint writes")} (the last: ${this.lastReason})`
      )
    })
  }

  /**
   * task_exit: goes on with `then()` once the entry with queue number `seq` is written (by
   * the pass under way, or by a pass of its own after it), or once writing it failed, which
   * is logged (the entry stays pending). Runs uninterruptibly (inside the call's mask), so
   * `endPass` always runs; the waiter is resumed straight into what comes next.
   */
  afterWrite<A, E, R>(seq: number, then: () => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    // Written, or tried by a pass that failed (which logged it).
    if (this.written >= seq || this.failedThrough >= seq) return then()
    if (this.passing) return this.afterPass(seq, () => this.afterWrite(seq, then))
    this.passing = true
    return Effect.matchCauseEffect(this.unlockedPass(), {
      onFailure: (cause) => {
        this.endPass()
        const pending = this.queue.size
        return Effect.zipRight(
          this.failureLogged(
            `Checkpoint write failed; ${plural(pending, "entry stays", "entries stay")} pending`,
            causeMessage(cause)
          ),
          Effect.suspend(then)
        )
      },
      onSuccess: () => {
        this.endPass()
        return then()
      }
    })
  }

  /**
   * The pass at the close. A failed final pass is logged with the number of entries really
   * not written (a write cut short keeps what landed), then `after` runs (the summary), then
   * it fails with a CheckpointError, so that the kernel's scope ends in failure (`runMain`
   * exits non-zero) and nobody takes the run for a complete one.
   */
  final(after: () => Effect.Effect<void>): Effect.Effect<void, CheckpointError> {
    return Effect.matchCauseEffect(this.pass, {
      onFailure: (cause) =>
        Effect.suspend(() => {
          const lost = this.queue.size
          const reason = causeMessage(cause)
          const failure = Option.getOrUndefined(Cause.failureOption(cause))
          const inner = failure instanceof CheckpointError ? failure : undefined
          return this.burstEnded().pipe(
            Effect.zipRight(
              Effect.logError(
                `Final checkpoint failed: ${plural(lost, "entry", "entries")} lost (not written): ${reason}`
              )
            ),
            Effect.zipRight(Effect.suspend(after)),
            Effect.zipRight(Effect.fail(
              new CheckpointError({
                path: inner?.path ?? this.dir,
                reason: `The final checkpoint failed, ${plural(lost, "entry", "entries")} not written: ${
                  inner === undefined ? reason : oneLine(inner.reason)
                }`
              })
            ))
          )
        }),
      onSuccess: () => Effect.zipRight(this.burstEnded(), Effect.suspend(after))
    })
  }

  /** Runs a pass once no other is under way, unless queue number `seq` is written by then. */
  private exclusivePass(seq: number): Effect.Effect<void, CheckpointError> {
    return Effect.suspend(() => {
      if (this.written >= seq) return Effect.void
      if (this.passing) return this.afterPass(seq, () => this.exclusivePass(seq))
      this.passing = true
      return Effect.ensuring(this.unlockedPass(), this.passEnded)
    })
  }

  private readonly passEnded: Effect.Effect<void> = Effect.sync(() => this.endPass())

  /** Ends the pass under way: wakes those it covered, and the first of the others to run the next. */
  private endPass(): void {
    this.passing = false
    const sleeping: Array<PassWaiter> = []
    let next: PassWaiter | undefined
    for (const waiter of this.passWaiters) {
      if (waiter.seq <= this.written || waiter.seq <= this.failedThrough) waiter.wake()
      else if (next === undefined) next = waiter
      else sleeping.push(waiter)
    }
    this.passWaiters = sleeping
    next?.wake()
  }

  /**
   * Waits (uninterruptibly: every caller is) until the pass under way ends, then goes on
   * with what `next` returns then.
   */
  private afterPass<A, E, R>(seq: number, next: () => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.async<A, E, R>((resume) => {
      this.passWaiters.push({ seq, wake: () => resume(next()) })
    })
  }

  /**
   * One checkpoint pass, by a caller that holds the pass: takes every pending entry and
   * appends it. On failure the entries go back to the front of the queue (less those the
   * store says it kept), so the next pass writes them. Run uninterruptibly, so a pass that has
   * started always ends with its entries either written or pending. A span `dfk.checkpoint`
   * when a tracer is installed.
   */
  private unlockedPass(): Effect.Effect<void, CheckpointError> {
    return Effect.tracerWith((tracer) =>
      tracer === nativeTracer
        ? this.write(noSpan)
        : Effect.useSpan("dfk.checkpoint", { attributes: { dir: this.dir }, captureStackTrace: false }, (span) =>
          this.write(span))
    )
  }

  // The pass yields before it takes the queue: the calls that run now (those a claim or a
  // lookup answered together, or that a pass woke) queue their entries first, and the pass
  // takes them all (group commit). Taken at once, a pass held the first entry or two, and
  // the others waited for the next (B10: a pass of 2 entries, then one of 254).
  private write(span: SpanLike): Effect.Effect<void, CheckpointError> {
    return Effect.zipRight(Effect.yieldNow(), this.writeQueued(span))
  }

  private writeQueued(span: SpanLike): Effect.Effect<void, CheckpointError> {
    return Effect.suspend(() => {
      const queue = this.queue
      const batch = queue.take()
      const count = batch.count
      const through = this.queued // the batch holds the entries after `written`, up to here
      this.writing = count
      span.attribute("entries", count)
      const started = performance.now()
      const timed = () => Metrics.checkpointPassDuration.unsafeUpdate(Duration.millis(performance.now() - started), [])
      const wrote = (count: number) => {
        this.written += count
        Metrics.entriesCheckpointed.unsafeUpdate(count, [])
        this.onWritten(count)
      }
      return Effect.matchCauseEffect(queue.write(batch), {
        // On a failure, and on a defect of the store too, the batch goes back to the queue.
        onFailure: (cause) => {
          timed()
          this.writing = 0
          const kept = Math.min(count, keptOf(cause))
          queue.putBack(batch, kept)
          if (kept > 0) wrote(kept)
          this.failedThrough = Math.max(this.failedThrough, through)
          // A pass is uninterruptible, so an interruption here is the store's own (a fiber it
          // joined, say): a failed write like any other, not the caller's.
          return Cause.isInterruptedOnly(cause)
            ? Effect.fail(new CheckpointError({ path: this.dir, reason: "The store's append was interrupted" }))
            : Effect.failCause(cause as Cause.Cause<CheckpointError>)
        },
        onSuccess: () => {
          timed()
          this.writing = 0
          wrote(count)
          const message = count > 0 ? `Done checkpointing ${count} tasks` : "No tasks checkpointed in this pass"
          return this.inBurst ? Effect.zipRight(this.burstEnded(), this.passLog(message)) : this.passLog(message)
        }
      })
    })
  }
}
