/**
 * The runner: app bodies under retries and execution slots (`maxConcurrency`), slot lending
 * to nested apps, and the count of bodies running.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import type { AppSpec } from "./appSpec.ts"
import { currentLending, Slots } from "./slots.ts"

/** Runs the bodies of one kernel's apps. */
export class Runner {
  private readonly slots: Slots | undefined

  constructor(
    /** The kernel's `retries`; an app's own `retries` overrides it. */
    private readonly retries: number,
    maxConcurrency: number | undefined,
    /** Called with +1 when a body starts and -1 when it ends. */
    private readonly onRunning: (delta: 1 | -1) => void
  ) {
    this.slots = maxConcurrency === undefined ? undefined : new Slots(maxConcurrency)
  }

  /** How many more times a failed body of `app` runs. */
  retriesOf(app: AppSpec): number {
    return app.retries ?? this.retries
  }

  /**
   * Whether `app`'s body runs as it is (no retries, no slots): then the caller counts it as
   * running itself (`started`/`ended`), which saves an ensuring and a suspend per miss.
   */
  plain(app: AppSpec): boolean {
    return this.slots === undefined && this.retriesOf(app) === 0
  }

  /** Counts a plain body as running. */
  started(): void {
    this.onRunning(1)
  }

  /** Counts a plain body as no longer running. */
  ended(): void {
    this.onRunning(-1)
  }

  /** The body's effect; a body that throws instead of returning one is a defect of the call. */
  bodyOf(app: AppSpec, input: unknown): Effect.Effect<unknown, unknown, unknown> {
    try {
      return app.body(input)
    } catch (defect) {
      return Effect.die(defect)
    }
  }

  /**
   * Runs `app`'s body with its retries, holding a slot; counted as running while it runs. To
   * be run in an uninterruptible region (the call's mask): `restore` makes the body, and the
   * wait for a slot, interruptible; the bookkeeping around them is not (and needs no mask of
   * its own: each mask costs a call about a microsecond and a kilobyte).
   */
  run(
    app: AppSpec,
    input: unknown,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<unknown, unknown, unknown> {
    return this.holding(this.attempts(app, input, restore), restore, false)
  }

  /**
   * `app`'s body with its retries, counted as running from before each attempt starts
   * (outside `restore`, so an attempt interrupted before it starts is counted too) until it
   * ends, however it ends. Takes no slot.
   */
  attempts(
    app: AppSpec,
    input: unknown,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<unknown, unknown, unknown> {
    const body: Effect.Effect<unknown, unknown, unknown> = Effect.suspend(() => {
      this.onRunning(1)
      return Effect.matchCauseEffect(restore(this.bodyOf(app, input)), this.attemptEnded)
    })
    const retries = this.retriesOf(app)
    return retries === 0 ? body : body.pipe(
      Effect.sandbox,
      Effect.retry({ times: retries, while: (cause) => !Cause.isInterrupted(cause) }),
      Effect.unsandbox
    )
  }

  /**
   * From now on a free slot goes to one of the first waiting top-level calls at random
   * (`Slots.spread`): another process claims the same keys.
   */
  spreadSlots(): void {
    if (this.slots !== undefined) this.slots.spread = true
  }

  /** Whether a call would hold a slot without waiting: no slots, or one free now. */
  slotFree(): boolean {
    return this.slots === undefined || this.slots.available
  }

  /**
   * Runs `inSlot` holding a slot, when there are slots (else as it is). A call made from
   * inside a running body (a nested app), or one with `priority` (a call that waited for
   * another process's claim and tries again), is served before top-level calls. Once the
   * slot is held, `inSlot` runs with a lending record of its own (for the apps its body
   * calls), and the caller's comes back when it ends.
   */
  holding<A, E, R>(
    inSlot: Effect.Effect<A, E, R>,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    priority: boolean
  ): Effect.Effect<A, E, R> {
    const slots = this.slots
    if (slots === undefined) return inSlot
    return Effect.withFiberRuntime((fiber) => {
      const outer = fiber.getFiberRef(currentLending)
      const back = FiberRef.set(currentLending, outer)
      return slots.hold(
        () =>
          Effect.zipRight(
            FiberRef.set(currentLending, { nested: 0 }),
            Effect.matchCauseEffect(inSlot, {
              onFailure: (cause) => Effect.zipRight(back, Effect.failCause(cause)),
              onSuccess: (value) => Effect.as(back, value)
            })
          ),
        priority || outer !== null,
        restore
      )
    })
  }

  /** Ends an attempt's count as running, and ends as it did. */
  private readonly attemptEnded = {
    onFailure: (cause: Cause.Cause<unknown>): Effect.Effect<unknown, unknown> => {
      this.onRunning(-1)
      return Effect.failCause(cause)
    },
    onSuccess: (value: unknown): Effect.Effect<unknown, unknown> => {
      this.onRunning(-1)
      return Effect.succeed(value)
    }
  }

  /**
   * With `maxConcurrency`, a call made by a running app body lends that body's slot while it
   * runs, as Parsl's join apps hold no worker slot while they wait: the first nested call to
   * start gives the slot back, the last to end takes it back (before top-level calls).
   */
  lendSlot<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const slots = this.slots
    return slots === undefined ? effect : Effect.withFiberRuntime((fiber) => {
      const lending = fiber.getFiberRef(currentLending)
      return lending === null ? effect : Effect.acquireUseRelease(
        Effect.sync(() => {
          if (lending.nested++ === 0) slots.release()
        }),
        () => effect,
        () => Effect.suspend(() => --lending.nested === 0 ? slots.takeBack : Effect.void)
      )
    })
  }
}
