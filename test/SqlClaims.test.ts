/**
 * SqlStore's claims (DESIGN §7) at the store boundary, on SQLite and on a real PostgreSQL
 * server: one winner, a wait served by the holder's entry, a claim given up, an entry written
 * meanwhile, an entry failing the integrity rule, the renewal of leases past a locked row.
 *
 * Claims here are made by two stores on one database, as two processes would (each store has
 * its own liveness key); test/e2e/SqlProcesses.test.ts runs them in real processes. They run on
 * the live clock (`it.scopedLive`): they wait for the database, as the store's own timing does.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointStore, Dfk, Memo } from "effect-dfk"
import type { EncodedEntry } from "effect-dfk"
import { SqlStore } from "effect-dfk/sql"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { pgLayer, sqliteAvailable, sqliteLayer, sqliteSuite } from "./e2e/sqlHarness.ts"
import { platform } from "./util.ts"

const hashOf = (n: number) => n.toString(16).padStart(64, "a")
const encoded = (n: number): EncodedEntry => ({
  hash: hashOf(n),
  app: "app",
  version: null,
  input: JSON.stringify({ n }),
  result: JSON.stringify(n * n),
  time: new Date(n).toISOString()
})

/** Claims between two stores on one database (`client` makes a fresh one per test). */
const claimsSuite = (name: string, client: () => Layer.Layer<SqlClient.SqlClient, unknown>, isPg: boolean) =>
  describe(name, () => {
    const twoStores = (lease: Duration.DurationInput = Duration.seconds(30)) =>
      Effect.gen(function*() {
        const a = yield* SqlStore.make({ lease })
        const b = yield* SqlStore.make({ lease })
        const runA = yield* a.runs!.allocate("ns")
        const runB = yield* b.runs!.allocate("ns")
        return { a, b, runA, runB }
      })

    it.scopedLive("one winner; the other waits and is served the holder's entry once it is written", () =>
      Effect.gen(function*() {
        const { a, b, runA, runB } = yield* twoStores()
        assert.strictEqual(yield* a.claims!.claim("ns", hashOf(1), runA), "won")
        assert.strictEqual(yield* b.claims!.claim("ns", hashOf(1), runB), "held")
        // Claimed at once, in one batch: a won one and a held one.
        const both = yield* Effect.all(
          [a.claims!.claim("ns", hashOf(2), runA), b.claims!.claim("ns", hashOf(2), runB)],
          {
            concurrency: "unbounded"
          }
        )
        assert.sameMembers(both, ["won", "held"])
        const waiting = yield* Effect.fork(b.claims!.await("ns", hashOf(1)))
        yield* a.appendEncoded!(`${runA}/checkpoint`, [encoded(1)])
        const served = yield* Fiber.join(waiting)
        assert.strictEqual(served?.result, 1)
        // Written: a claim now is answered by the entry.
        const again = yield* b.claims!.claim("ns", hashOf(1), runB)
        assert.strictEqual(typeof again === "object" ? again.result : again, 1)
      }).pipe(Effect.scoped, Effect.provide(client())))

    it.scopedLive("a claim given up without an entry ends the wait: the waiter claims it and wins", () =>
      Effect.gen(function*() {
        const { a, b, runA, runB } = yield* twoStores()
        assert.strictEqual(yield* a.claims!.claim("ns", hashOf(3), runA), "won")
        assert.strictEqual(yield* b.claims!.claim("ns", hashOf(3), runB), "held")
        const waiting = yield* Effect.fork(b.claims!.await("ns", hashOf(3)))
        yield* a.claims!.release("ns", [hashOf(3)], runA)
        assert.isUndefined(yield* Fiber.join(waiting))
        assert.strictEqual(yield* b.claims!.claim("ns", hashOf(3), runB), "won")
      }).pipe(Effect.scoped, Effect.provide(client())))

    it.scopedLive(
      isPg
        ? "a holder that is gone (its store closed: its lock is free) is taken over at once, whatever the lease"
        : "a holder that stopped renewing (its store closed) is taken over once its lease ends",
      () =>
        Effect.gen(function*() {
          const lease = isPg ? Duration.minutes(10) : Duration.millis(300)
          const holderScope = yield* Scope.make()
          const a = yield* SqlStore.make({ lease }).pipe(Scope.extend(holderScope))
          const b = yield* SqlStore.make({ lease })
          const runA = yield* a.runs!.allocate("ns")
          const runB = yield* b.runs!.allocate("ns")
          assert.strictEqual(yield* a.claims!.claim("ns", hashOf(4), runA), "won")
          assert.strictEqual(yield* b.claims!.claim("ns", hashOf(4), runB), "held")
          const waiting = yield* Effect.fork(b.claims!.await("ns", hashOf(4)))
          // Its store closes: it renews nothing from now on (PostgreSQL: its lock goes too).
          yield* Scope.close(holderScope, Exit.void)
          assert.isUndefined(yield* Fiber.join(waiting))
          assert.strictEqual(yield* b.claims!.claim("ns", hashOf(4), runB), "won")
        }).pipe(Effect.scoped, Effect.provide(client()))
    )

    it.scopedLive("an entry written meanwhile answers a claim that wins, and the claim is given back", () =>
      Effect.gen(function*() {
        const { a, b, runA, runB } = yield* twoStores()
        yield* a.appendEncoded!(`${runA}/checkpoint`, [encoded(5)])
        const answer = yield* b.claims!.claim("ns", hashOf(5), runB)
        assert.strictEqual(typeof answer === "object" ? answer.result : answer, 25)
        // Given back: nobody holds it.
        assert.strictEqual(yield* a.claims!.claim("ns", hashOf(6), runA), "won")
      }).pipe(Effect.scoped, Effect.provide(client())))

    it.scopedLive("one batch of claims: a key with no entry is won, one with an entry answered, one held, one whose newest entry is a tombstone won", () =>
      Effect.gen(function*() {
        const { a, b, runA, runB } = yield* twoStores()
        yield* a.appendEncoded!(`${runA}/checkpoint`, [encoded(7), encoded(8)])
        // Key 8: its newest entry is a tombstone (invalidated): no entry answers it.
        yield* a.appendEncoded!(`${runA}/checkpoint`, [{ ...encoded(8), result: "null", deleted: true }])
        assert.strictEqual(yield* a.claims!.claim("ns", hashOf(9), runA), "won")
        const answers = yield* Effect.all(
          [10, 7, 9, 8].map((n) => b.claims!.claim("ns", hashOf(n), runB)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(answers.map((x) => typeof x === "object" ? x.result : x), ["won", 49, "held", "won"])
        // Won: the others find keys 10 and 8 held (no claim was given back).
        const later = yield* Effect.all([10, 8].map((n) => a.claims!.claim("ns", hashOf(n), runA)), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(later, ["held", "held"])
      }).pipe(Effect.scoped, Effect.provide(client())))

    if (isPg) {
      it.scopedLive("a claim row another transaction has locked does not hold back the renewal of the run's other leases", () =>
        Effect.gen(function*() {
          // A lease of 900 ms, renewed every 300 ms: the check below comes after more than two
          // leases (a renewal held back by the lock lets claim 12 run out by then), and only a
          // stall of 600 ms in this process could let it run out with the renewal working.
          const { a, b, runA, runB } = yield* twoStores(Duration.millis(900))
          assert.strictEqual(yield* a.claims!.claim("ns", hashOf(11), runA), "won")
          assert.strictEqual(yield* a.claims!.claim("ns", hashOf(12), runA), "won")
          const sql = yield* SqlClient.SqlClient
          const locked = yield* Deferred.make<void>()
          const unlock = yield* Deferred.make<void>()
          // Another transaction holds the row of claim 11 until the check below is done.
          yield* Effect.fork(sql.withTransaction(
            sql`SELECT hash FROM dfk_claims WHERE hash = ${hashOf(11)} FOR UPDATE`.pipe(
              Effect.zipRight(Deferred.succeed(locked, undefined)),
              Effect.zipRight(Deferred.await(unlock))
            )
          ))
          yield* Deferred.await(locked)
          yield* Effect.sleep(Duration.millis(2400))
          // Claim 12's lease was renewed meanwhile: its holder lives, so the claim is held.
          // (A renewal that waited for the lock let it run out: the other took it over.)
          const claim12 = yield* b.claims!.claim("ns", hashOf(12), runB)
          yield* Deferred.succeed(unlock, undefined)
          assert.strictEqual(claim12, "held")
        }).pipe(Effect.scoped, Effect.provide(client())))
    }

    it.scopedLive("an entry failing the integrity rule is not served and its key runs once (no claim loop)", () =>
      Effect.gen(function*() {
        const store = yield* SqlStore.make()
        const run = yield* store.runs!.allocate("ns")
        const hash = yield* Memo.key({ name: "tampered", input: { x: 1 } })
        // The key of { x: 1 }, with the input of { x: 2 }.
        yield* store.appendEncoded!(`${run}/checkpoint`, [{ ...encoded(2), hash, app: "tampered" }])
        let bodies = 0
        const app = App.make(
          { name: "tampered", input: Schema.Struct({ x: Schema.Number }), output: Schema.Number, cache: true },
          ({ x }) => Effect.sync(() => (bodies++, x * 10))
        )
        const value = yield* app({ x: 1 }).pipe(
          Effect.provide(Dfk.layer({ runDir: "ns", checkpointMode: "task_exit" })),
          Effect.provide(Layer.succeed(CheckpointStore, store)),
          Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => new Error("the call never ended") })
        )
        assert.strictEqual(value, 10)
        assert.strictEqual(bodies, 1)
      }).pipe(Effect.scoped, Effect.provide(client()), Effect.provide(platform)))
  })

describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore claims on SQLite"), () => {
  claimsSuite("claims (SQLite)", () => sqliteLayer(), false)
})

describe("SqlStore claims on PostgreSQL", () => {
  claimsSuite("claims (PostgreSQL)", () => pgLayer(), true)
})
