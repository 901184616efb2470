/**
 * The runner: app bodies under retries and execution slots (`maxConcurrency`), slot lending
 * to nested apps, and the count of bodies running.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { AppSpec } from "./appSpec.ts"
import { currentLending, Slots } from "./slots.ts"

/** Runs the bodies of one kernel's apps. */
export class Runner {
  private readonly slots: Slots | undefined
  private readonly bodyEnded: Effect.Effect<void>

  constructor(
    /** The kernel's `retries`; an app's own `retries` overrides it. */
    private readonly retries: number,
    maxConcurrency: number | undefined,
    /** Called with +1 when a body starts and -1 when it ends. */
    private readonly onRunning: (delta: 1 | -1) => void
  ) {
    this.slots = maxConcurrency === undefined ? undefined : new Slots(maxConcurrency)
    this.bodyEnded = Effect.sync(() => this.onRunning(-1))
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

  /** Runs `app`'s body with its retries, holding a slot; counted as running while it runs. */
  run(app: AppSpec, input: unknown): Effect.Effect<unknown, unknown, unknown> {
    let body: Effect.Effect<unknown, unknown, unknown> = Effect.suspend(() => {
      this.onRunning(1)
      // bodyOf: a body that throws is a defect here too, and `running` still comes back down.
      return Effect.ensuring(this.bodyOf(app, input), this.bodyEnded)
    })
    const retries = this.retriesOf(app)
    if (retries > 0) {
      body = body.pipe(
        Effect.sandbox,
        Effect.retry({ times: retries, while: (cause) => !Cause.isInterrupted(cause) }),
        Effect.unsandbox
      )
    }
    const slots = this.slots
    if (slots === undefined) return body
    // A call made from inside a running body (a nested app) is served before top-level calls.
    // (withFiberRuntime leaves no frame on the stack of a call that waits for its slot.)
    // (The slot's body is built once the slot is held: a call waiting for one keeps less.)
    return Effect.withFiberRuntime((fiber) =>
      slots.with(
        Effect.suspend(() => Effect.locally(body, currentLending, { nested: 0 })),
        fiber.getFiberRef(currentLending) !== null
      )
    )
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
