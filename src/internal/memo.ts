/**
 * The in-run memo's slots: an execution in flight (with the callers waiting for it), a
 * memoized failure, or a success held as its bare value.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * A memo slot: the execution in flight, a failure, or a success held as its bare value
 * (`undefined` as `Undefined`): an Exit per entry would be most of what a memoized result
 * keeps in memory, and a hit can make one.
 */
export type Slot = Flight | Failed | unknown

/** A memoized failure (or defect). */
export class Failed {
  constructor(readonly exit: Exit.Exit<unknown, unknown>) {}
}

/** The memo's stand-in for a result that is `undefined`. */
export const Undefined: unique symbol = Symbol("effect-dfk/Undefined")

/** The slot that memoizes an outcome. */
export const slotOf = (exit: Exit.Exit<unknown, unknown>): Slot =>
  Exit.isFailure(exit) ? new Failed(exit) : exit.value === undefined ? Undefined : exit.value

/** The outcome a memoized slot (not a Flight) stands for. */
export const outcomeOf = (slot: unknown): Exit.Exit<unknown, unknown> =>
  slot instanceof Failed ? slot.exit : Exit.succeed(slot === Undefined ? undefined : slot)

/**
 * An execution in flight and the callers waiting for it (none, usually: then it costs nothing).
 * Waiters are a `Set`, so that one interrupted among many leaves in O(1), and are served in
 * the order they came.
 */
export class Flight {
  private waiters: Set<(outcome: Exit.Exit<unknown, unknown> | undefined) => void> | undefined
  /** Hands the outcome (or `undefined`: the execution was interrupted) to every waiter. */
  done(outcome: Exit.Exit<unknown, unknown> | undefined): void {
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) { for (const w of waiters) w(outcome) }
  }
  /** Waits for the outcome; an interrupted waiter leaves the set. */
  wait(): Effect.Effect<Exit.Exit<unknown, unknown> | undefined> {
    return Effect.async((resume) => {
      const waiter = (outcome: Exit.Exit<unknown, unknown> | undefined) => resume(Effect.succeed(outcome))
      ;(this.waiters ??= new Set()).add(waiter)
      return Effect.sync(() => {
        this.waiters?.delete(waiter)
      })
    })
  }
}
