/**
 * The kernel's counters (DESIGN's stats and the detailed ones), the app-calls metric and each
 * call's outcome on its span, and the progress stream that follows them.
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { DfkDetailedStats, DfkStats } from "../Dfk.ts"
import * as Metrics from "../Metrics.ts"
import type { Outcome } from "../Metrics.ts"
import type { AppSpec } from "./appSpec.ts"
import type { SpanLike } from "./spans.ts"

/** The counters of one kernel. */
export class Counters {
  readonly stats = { tasks: 0, hits: 0, misses: 0, fromCheckpoint: 0, running: 0, checkpointed: 0 }
  // Progress: waiters of the next change of the counters. Notifying costs one check when
  // nobody listens.
  private changed: Deferred.Deferred<void> | undefined
  private closed = false

  constructor(
    /** Entries not written yet (the checkpointer's count). */
    private readonly pending: () => number
  ) {}

  /** Wakes whoever waits for the next change. */
  notify(): void {
    if (this.changed !== undefined) {
      const d = this.changed
      this.changed = undefined
      Deferred.unsafeDone(d, Exit.void)
    }
  }

  /** Counts a served call: the stats, the app-calls metric and the call's span. */
  record(app: AppSpec, span: SpanLike, outcome: Outcome): void {
    const stats = this.stats
    if (outcome === "miss") stats.misses++
    else {
      stats.hits++
      if (outcome === "checkpoint") stats.fromCheckpoint++
    }
    Metrics.appCalls.unsafeUpdate(1, app.metricTags[outcome])
    span.attribute("outcome", outcome)
    this.notify()
  }

  /** DESIGN's five counters. */
  snapshot(): DfkStats {
    const stats = this.stats
    return {
      tasks: stats.tasks,
      hits: stats.hits,
      misses: stats.misses,
      checkpointed: stats.checkpointed,
      pending: this.pending()
    }
  }

  /** Every counter. */
  detailed(): DfkDetailedStats {
    return { ...this.stats, pending: this.pending() }
  }

  /** Ends the progress streams (the kernel closed). */
  close(): void {
    this.closed = true
    this.notify()
  }

  /** Whether the kernel has closed. */
  get isClosed(): boolean {
    return this.closed
  }

  private readonly nextChange: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    if (this.changed === undefined) this.changed = Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(this.changed)
  })

  /**
   * The counters now, then again after each change (at most once per `interval`), until
   * the kernel closes.
   */
  progress(interval: Duration.Duration): Stream.Stream<DfkDetailedStats> {
    return Stream.concat(
      Stream.sync(() => this.detailed()),
      Stream.repeatEffectOption(
        Effect.suspend(() =>
          this.closed ? Effect.fail(Option.none()) : this.nextChange.pipe(
            Effect.zipRight(Effect.sleep(interval)),
            Effect.map(() => this.detailed())
          )
        )
      )
    )
  }
}
