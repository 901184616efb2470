/**
 * The SQL store's LISTEN (PostgreSQL): started once, its own hellos heard (whether waits may
 * rely on notifications), and let finish at the close.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { realTime, type SqlStoreContext } from "./context.ts"

/** The LISTEN of a SQL store. */
export interface Listen {
  /** Whether waits may rely on notifications (LISTEN is on, and its hellos are heard). */
  readonly isListening: () => boolean
  /** Hears one of this process's hellos. */
  readonly heardHello: () => void
  /** Starts LISTEN, once (PostgreSQL with a client that listens; otherwise nothing). */
  readonly startListening: Effect.Effect<void>
}

/** The LISTEN of the store of `ctx`, which hands each notification to `onNotification`. */
export const makeListen = (
  ctx: SqlStoreContext,
  onNotification: (payload: string) => void
): Effect.Effect<Listen, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { channel, isPg, ownerKey, scope, sql } = ctx
    const FULL_MS = ctx.fullMs
    // LISTEN starts when the store opens (or with the first claim). The store says hello (`h`) on the channel now and then, and waits rely on notifications only
    // while it hears its own hellos (the first, then one at least every three): otherwise they
    // poll. (@effect/sql-pg 0.53 drops a listen connection that fails without a word, and
    // stores on one client share one: the first to close ends the others'.) At the close, a
    // listen that has not heard its first hello is let finish first (2 s at most): with
    // @effect/sql-pg 0.53 a listen interrupted while its connection is being made leaves that
    // connection open, and the process never exits.
    const listen: Stream.Stream<string, SqlError> | undefined = isPg &&
        typeof (sql as unknown as { listen?: unknown }).listen === "function"
      ? (sql as unknown as { listen: (channel: string) => Stream.Stream<string, SqlError> }).listen(channel)
      : undefined
    let listenState: "off" | "starting" | "on" | "failed" = listen === undefined ? "failed" : "off"
    let lastHello = 0
    const isListening = (): boolean => listenState === "on" && Date.now() - lastHello < 3 * FULL_MS
    const listenReady = Deferred.unsafeMake<void>(FiberId.none)
    const listenScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    yield* Effect.addFinalizer(() =>
      listenState === "starting"
        // (Interruptible: a finalizer is not, and a timeout cannot end what it cannot interrupt.)
        ? realTime(
          Effect.ignore(Effect.timeout(Effect.interruptible(Deferred.await(listenReady)), Duration.seconds(2)))
        )
        : Effect.void
    )
    const heardHello = (): void => {
      lastHello = Date.now()
      if (listenState !== "starting") return
      listenState = "on"
      Deferred.unsafeDone(listenReady, Exit.void)
    }
    const startListening: Effect.Effect<void> = Effect.suspend(() => {
      if (listenState !== "off" || listen === undefined) return Effect.void
      listenState = "starting"
      const run = listen.pipe(
        Stream.runForEach((payload) => Effect.sync(() => onNotification(payload))),
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.sync(() => {
              listenState = "failed"
              Deferred.unsafeDone(listenReady, Exit.void)
            }),
            Effect.logWarning("SqlStore: LISTEN failed; waiters poll instead", cause)
          )
        ),
        Effect.interruptible
      )
      // Until the first is heard, 5 ms apart and backing off to 200 ms; then at each full check.
      const hello = Effect.gen(function*() {
        let delay = 5
        while (listenState !== "failed") {
          yield* Effect.ignore(sql`SELECT pg_notify(${channel}, ${`${ownerKey}\n""\nh\n`})`)
          yield* Effect.sleep(Duration.millis(listenState === "starting" ? delay : FULL_MS))
          delay = Math.min(200, delay * 2)
        }
      }).pipe(Effect.interruptible)
      return Effect.zipRight(
        Effect.forkIn(run, listenScope),
        Effect.asVoid(Effect.forkIn(realTime(hello), listenScope))
      )
    })
    const out: Listen = { isListening, heardHello, startListening }
    return out
  })
