/**
 * SqlStore (`effect-dfk/sql`) on SQLite and on a real PostgreSQL server: the one store suite,
 * and what a SQL store adds (DESIGN §7): lookups on demand instead of a load, live resume,
 * claims between runs (here two kernels with stores of their own in one process; separate
 * processes in test/e2e/SqlProcesses.test.ts), tables created once, no URL in the logs.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, CheckpointStore, Dfk, Memo, Metrics } from "effect-dfk"
import type { CheckpointStoreService, DfkConfig, LookupScope } from "effect-dfk"
import { SqlStore } from "effect-dfk/sql"
import type { SqlStoreOptions } from "effect-dfk/sql"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { storeSuite } from "./contract/storeSuite.ts"
import { pgDatabase, pgLayer, sqliteAvailable, sqliteFile, sqliteLayer, sqliteSuite } from "./e2e/sqlHarness.ts"
import { captureLogs, platform } from "./util.ts"

describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore on SQLite"), () => {
  storeSuite("SqlStore.layer (SQLite)", Layer.suspend(() => SqlStore.layer().pipe(Layer.provide(sqliteLayer()))))
})

describe("SqlStore on PostgreSQL", () => {
  storeSuite("SqlStore.layer (PostgreSQL)", Layer.suspend(() => SqlStore.layer().pipe(Layer.provide(pgLayer()))))
})

/** A database for one test: a maker of clients on it (each a process of its own, as far as claims go). */
type Database = Effect.Effect<() => Layer.Layer<SqlClient.SqlClient>, never, Scope.Scope>

const sqliteDb: Database = Effect.map(sqliteFile, (filename) => () => Layer.orDie(SqliteClient.layer({ filename })))
const pgDb: Database = Effect.map(
  Effect.orDie(pgDatabase),
  (url) => () => Layer.orDie(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
)

/** A store on `client`, with the number of loads and of lookups (and the keys asked) it saw. */
const countingStore = (client: Layer.Layer<SqlClient.SqlClient>, options?: SqlStoreOptions) =>
  Effect.gen(function*() {
    // The client lives as long as the test's scope (as the store does).
    const context = yield* Layer.build(client)
    const store = yield* SqlStore.make(options).pipe(Effect.provide(context), Effect.orDie)
    const seen = { loads: 0, lookups: 0, keys: 0, claims: 0 }
    const counted: CheckpointStoreService = {
      ...store,
      load: (dir, onEntry) => Effect.suspend(() => (seen.loads++, store.load(dir, onEntry))),
      lookup: (scope: LookupScope, hashes) =>
        Effect.suspend(() => (seen.lookups++, seen.keys += hashes.length, store.lookup!(scope, hashes))),
      claims: {
        ...store.claims!,
        claim: (runDir, hash, run) => Effect.suspend(() => (seen.claims++, store.claims!.claim(runDir, hash, run)))
      }
    }
    return { store: counted, layer: Layer.succeed(CheckpointStore, counted), seen }
  })

let bodies = 0
const gates = new Map<number, Deferred.Deferred<void>>()
const failing = new Set<number>()
class Boom extends Schema.TaggedError<Boom>()("Boom", { n: Schema.Number }) {}
const square = App.make(
  { name: "sql_square", input: Schema.Number, output: Schema.Number, cache: true },
  (n) =>
    Effect.gen(function*() {
      bodies++
      const gate = gates.get(n)
      if (gate !== undefined) yield* Deferred.await(gate)
      // (A failing key fails once: the next body of it succeeds.)
      if (failing.delete(n)) return yield* new Boom({ n })
      return n * n
    })
)

const remoteCount = Metric.value(
  Metrics.appCalls.pipe(Metric.tagged("outcome", "remote"), Metric.tagged("app", "sql_square"))
)

const kernel = (store: Layer.Layer<CheckpointStore>, config: DfkConfig, runDir: string) =>
  Dfk.layer({ runDir, ...config }).pipe(Layer.provide(store), Layer.provide(platform))

const sqlCases = (name: string, database: Database, isPg: boolean) =>
  describe(name, () => {
    it.scopedLive("a kernel resumes by lookups: nothing is loaded at its start, and concurrent misses share lookups", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `lookups-${Math.random()}`
        const a = yield* countingStore(client())
        bodies = 0
        const keys = Array.from({ length: 50 }, (_, i) => i)
        yield* Effect.forEach(keys, square, { concurrency: 10 }).pipe(
          Effect.provide(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        )
        assert.strictEqual(bodies, 50)
        const b = yield* countingStore(client())
        const [[values, stats], dir] = yield* Effect.zip(
          Effect.zip(Effect.forEach(keys, square, { concurrency: "unbounded" }), Dfk.detailedStats),
          Effect.map(Dfk, (dfk) => dfk.checkpointDir)
        ).pipe(Effect.provide(kernel(b.layer, { checkpointMode: "dfk_exit" }, runDir)))
        assert.strictEqual(b.seen.loads, 0)
        // One entry per key in all: what a lookup answered is not copied into the new run.
        let copied = 0
        yield* b.store.load(dir, () => copied++)
        assert.strictEqual(copied, 0)
        assert.deepStrictEqual(values, keys.map((n) => n * n))
        assert.strictEqual(bodies, 50)
        assert.strictEqual(stats.fromCheckpoint, 50)
        assert.strictEqual(b.seen.keys, 50)
        assert.isAtMost(b.seen.lookups, 5, "50 concurrent misses should share a few lookups")
        assert.strictEqual(b.seen.claims, 0, "every key was answered: nothing to claim")
      }))

    it.scopedLive("live resume: a run sees the entries of a run that is still running", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `live-${Math.random()}`
        const a = yield* countingStore(client())
        const b = yield* countingStore(client())
        bodies = 0
        const aRun = yield* Layer.build(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        assert.strictEqual(yield* square(1007).pipe(Effect.provide(aRun)), 1007 * 1007)
        // `a` is still open; `b` starts now and finds 7 answered.
        const [value, stats] = yield* Effect.zip(square(1007), Dfk.detailedStats).pipe(
          Effect.provide(kernel(b.layer, { checkpointMode: "task_exit" }, runDir))
        )
        assert.strictEqual(value, 1007 * 1007)
        assert.strictEqual(bodies, 1)
        assert.strictEqual(stats.fromCheckpoint, 1)
      }))

    it.scopedLive("a key claimed by a live run is waited for, and served from its entry (outcome remote, a hit)", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `claims-${Math.random()}`
        const a = yield* countingStore(client())
        const b = yield* countingStore(client())
        bodies = 0
        const gate = yield* Deferred.make<void>()
        gates.set(1011, gate)
        const remoteBefore = (yield* remoteCount).count
        const aRun = yield* Layer.build(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        const bRun = yield* Layer.build(kernel(b.layer, { checkpointMode: "task_exit" }, runDir))
        const first = yield* Effect.fork(square(1011).pipe(Effect.provide(aRun)))
        while (bodies === 0) yield* Effect.sleep(5)
        const second = yield* Effect.fork(Effect.zip(square(1011), Dfk.stats).pipe(Effect.provide(bRun)))
        // `b` claims, finds the key held, and waits: its body does not run.
        while (b.seen.claims === 0) yield* Effect.sleep(5)
        yield* Effect.sleep(150)
        assert.strictEqual(bodies, 1)
        assert.isNull(second.unsafePoll())
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(first), 1011 * 1011)
        const [value, stats] = yield* Fiber.join(second)
        gates.delete(1011)
        assert.strictEqual(value, 1011 * 1011)
        assert.strictEqual(bodies, 1)
        assert.strictEqual(stats.hits, 1)
        assert.strictEqual(stats.misses, 0)
        assert.strictEqual((yield* remoteCount).count, remoteBefore + 1)
      }))

    it.scopedLive("a run whose keys mostly miss claims them without a lookup first; an entry a claim finds is served (outcome checkpoint)", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `claim-first-${Math.random()}`
        const a = yield* countingStore(client())
        bodies = 0
        // An earlier run wrote 100..119.
        const written = Array.from({ length: 20 }, (_, i) => 100 + i)
        yield* Effect.forEach(written, square, { concurrency: 4 }).pipe(
          Effect.provide(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        )
        assert.strictEqual(bodies, 20)
        bodies = 0
        const b = yield* countingStore(client())
        const checkpointBefore = (yield* Metric.value(
          Metrics.appCalls.pipe(Metric.tagged("outcome", "checkpoint"), Metric.tagged("app", "sql_square"))
        )).count
        const [stats, keysAfterMisses] = yield* Effect.gen(function*() {
          // 40 new keys, one at a time: the first are looked up, then they are claimed at once.
          for (let n = 0; n < 40; n++) yield* square(n)
          const keysAfterMisses = b.seen.keys
          // Then the keys the earlier run wrote: claimed at once too, and the claims answer them.
          const values = yield* Effect.forEach(written, square, { concurrency: 4 })
          assert.deepStrictEqual(values, written.map((n) => n * n))
          return [yield* Dfk.detailedStats, keysAfterMisses] as const
        }).pipe(Effect.provide(kernel(b.layer, { checkpointMode: "task_exit" }, runDir)))
        assert.strictEqual(bodies, 40)
        assert.isBelow(keysAfterMisses, 20, "after a run of misses, keys are claimed without a lookup")
        assert.isAtLeast(b.seen.claims, 40 + 20 - keysAfterMisses)
        assert.strictEqual(stats.fromCheckpoint, 20)
        const checkpointAfter = (yield* Metric.value(
          Metrics.appCalls.pipe(Metric.tagged("outcome", "checkpoint"), Metric.tagged("app", "sql_square"))
        )).count
        assert.strictEqual(checkpointAfter - checkpointBefore, 20)
        // The claims that found an entry were given back, in the statement that claimed them:
        // no claim row is left under the runDir once the kernel has closed.
        const left = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<
            { readonly n: number | string }
          >`SELECT COUNT(*) AS n FROM dfk_claims WHERE run_dir = ${runDir}`
        }).pipe(Effect.provide(client()), Effect.orDie)
        assert.strictEqual(Number(left[0]!.n), 0)
        // Nothing is left claimed, and every key has one entry.
        const c = yield* countingStore(client())
        const again = yield* Effect.zip(
          Effect.forEach([...written, ...Array.from({ length: 40 }, (_, n) => n)], square, { concurrency: 8 }),
          Dfk.detailedStats
        ).pipe(Effect.provide(kernel(c.layer, { checkpointMode: "task_exit" }, runDir)))
        assert.strictEqual(bodies, 40)
        assert.strictEqual(again[1].fromCheckpoint, 60)
      }))

    it.scopedLive("two runs that claim the same keys at once, in opposite orders, each win some and the other sees them held", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `opposite-${Math.random()}`
        const a = yield* countingStore(client())
        const b = yield* countingStore(client())
        // Rows inserted in the order asked, two batches in opposite orders each wait for a row
        // the other holds: PostgreSQL ends one as a deadlock, and its claims fail (its bodies
        // would run unclaimed). In one order (sorted) neither waits for the other but once.
        for (let round = 0; round < 20; round++) {
          const hashes = Array.from({ length: 64 }, (_, i) => `${String(round).padStart(4, "0")}-${i}`.padEnd(64, "0"))
          const claimAll = (store: CheckpointStoreService, keys: ReadonlyArray<string>, run: string) =>
            Effect.forEach(keys, (hash) => store.claims!.claim(runDir, hash, run), { concurrency: "unbounded" })
          const [won, other] = yield* Effect.all([
            claimAll(a.store, hashes, `${runDir}/000`),
            claimAll(b.store, [...hashes].reverse(), `${runDir}/001`)
          ], { concurrency: "unbounded" })
          const byA = new Set(hashes.filter((_, i) => won[i] === "won"))
          const byB = new Set([...hashes].reverse().filter((_, i) => other[i] === "won"))
          // Every key is won by exactly one of them; the other sees it held.
          for (const hash of hashes) assert.isTrue(byA.has(hash) !== byB.has(hash), `${hash}: won by exactly one`)
          assert.isTrue(won.every((c) => c === "won" || c === "held"))
          assert.isTrue(other.every((c) => c === "won" || c === "held"))
          yield* a.store.claims!.release(runDir, [...byA], `${runDir}/000`)
          yield* b.store.claims!.release(runDir, [...byB], `${runDir}/001`)
        }
      }))

    it.scopedLive("a claim given back without an entry (the body failed) is taken by the waiter, which runs the body", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `released-${Math.random()}`
        const a = yield* countingStore(client())
        const b = yield* countingStore(client())
        bodies = 0
        const gate = yield* Deferred.make<void>()
        gates.set(1012, gate)
        failing.add(1012)
        const aRun = yield* Layer.build(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        const bRun = yield* Layer.build(kernel(b.layer, { checkpointMode: "task_exit" }, runDir))
        const first = yield* Effect.fork(Effect.either(square(1012)).pipe(Effect.provide(aRun)))
        while (bodies === 0) yield* Effect.sleep(5)
        const second = yield* Effect.fork(square(1012).pipe(Effect.provide(bRun)))
        while (b.seen.claims === 0) yield* Effect.sleep(5)
        gates.delete(1012)
        yield* Deferred.succeed(gate, undefined)
        const failed = yield* Fiber.join(first)
        assert.strictEqual(failed._tag, "Left")
        assert.strictEqual(yield* Fiber.join(second), 1012 * 1012)
        assert.strictEqual(bodies, 2)
      }))

    it.scopedLive(
      isPg
        ? "a claim whose holder is gone (its liveness lock is free) is taken over at once, whatever its lease"
        : "a claim whose holder stopped renewing it is taken over once its lease ends",
      () =>
        Effect.gen(function*() {
          const client = yield* database
          const runDir = `takeover-${Math.random()}`
          const b = yield* countingStore(client(), { lease: isPg ? "30 seconds" : "300 millis" })
          // A run that claimed key 13 and died: a claim row nobody renews. With PostgreSQL its
          // liveness key is one no session holds; with SQLite only its lease can end it.
          const hash = yield* Memo.key({ name: "sql_square", input: 1013 })
          yield* Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* sql`INSERT INTO dfk_claims (run_dir, hash, owner, owner_key, expires) VALUES (${runDir}, ${hash}, ${
              runDir + "/000"
            }, ${"4242424242"}, ${Date.now() + (isPg ? 30_000 : 300)})`
          }).pipe(Effect.provide(client()), Effect.orDie)
          bodies = 0
          const started = Date.now()
          const value = yield* square(1013).pipe(
            Effect.provide(kernel(b.layer, { checkpointMode: "task_exit" }, runDir))
          )
          assert.strictEqual(value, 1013 * 1013)
          assert.strictEqual(bodies, 1)
          if (isPg) assert.isBelow(Date.now() - started, 10_000, "taken over without waiting for the 30 s lease")
        })
    )

    it.scopedLive("an expired or refreshed entry is not served by a lookup or a claim: the body runs once, its entry wins", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `fresh-${Math.random()}`
        let runs = 0
        const stamp = App.make(
          { name: "sql_stamp", input: Schema.Number, output: Schema.Number, cache: true, expiresAfter: "1 second" },
          (n) => Effect.sync(() => n * 1000 + ++runs)
        )
        const run = (config: DfkConfig) =>
          Effect.flatMap(countingStore(client()), (s) =>
            Effect.zip(stamp(7), Dfk.stats).pipe(
              Effect.provide(kernel(s.layer, { checkpointMode: "task_exit", ...config }, runDir))
            ))
        const value = (r: readonly [number, { readonly misses: number }]) => [r[0], r[1].misses]
        assert.deepStrictEqual(value(yield* run({})), [7001, 1])
        assert.deepStrictEqual(value(yield* run({})), [7001, 0])
        yield* Effect.sleep("1100 millis")
        // Expired: looked up, then found again by the claim, and still not served.
        assert.deepStrictEqual(value(yield* run({})), [7002, 1])
        assert.deepStrictEqual(value(yield* run({})), [7002, 0])
        assert.deepStrictEqual(value(yield* run({ refresh: ["sql_stamp"] })), [7003, 1])
        assert.deepStrictEqual(value(yield* run({})), [7003, 0])
        assert.strictEqual(runs, 3)
      }))

    it.scopedLive("with explicit CheckpointFiles nothing is claimed: the listed checkpoints are looked in, and the body runs", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `explicit-${Math.random()}`
        const a = yield* countingStore(client())
        bodies = 0
        const dir = yield* Effect.zipRight(square(1002), Dfk.checkpoint).pipe(
          Effect.provide(kernel(a.layer, { checkpointMode: "manual" }, runDir))
        )
        const b = yield* countingStore(client())
        const values = yield* Effect.forEach([1002, 1003], square).pipe(
          Effect.provide(kernel(b.layer, { checkpointMode: "task_exit" }, runDir)),
          Effect.provide(CheckpointFiles.layer([dir]))
        )
        assert.deepStrictEqual(values, [1002 * 1002, 1003 * 1003])
        assert.strictEqual(bodies, 2)
        assert.strictEqual(b.seen.claims, 0)
        assert.strictEqual(b.seen.loads, 0)
      }))

    it.scopedLive("tables of schema version 1 (no tombstones) are brought to version 2 in place; their entries still served", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `schema1-${Math.random()}`
        const a = yield* countingStore(client())
        bodies = 0
        yield* Effect.forEach([1, 2], square).pipe(
          Effect.provide(kernel(a.layer, { checkpointMode: "task_exit" }, runDir))
        )
        // Back to what version 1 made: no "deleted" column, schema "1".
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`ALTER TABLE dfk_entries DROP COLUMN deleted`
          yield* sql`UPDATE dfk_meta SET value = '1' WHERE key = 'schema'`
        }).pipe(Effect.provide(client()))
        const b = yield* countingStore(client())
        const kernelB = kernel(b.layer, { checkpointMode: "task_exit" }, runDir)
        yield* Effect.forEach([1, 2], square).pipe(Effect.provide(kernelB))
        assert.strictEqual(bodies, 2)
        yield* Dfk.invalidate(square, 1).pipe(Effect.provide(kernelB))
        yield* Effect.forEach([1, 2], square).pipe(Effect.provide(kernelB))
        assert.strictEqual(bodies, 3)
        const rows = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly value: string }>`SELECT value FROM dfk_meta WHERE key = 'schema'`
        }).pipe(Effect.provide(client()))
        assert.deepStrictEqual(rows.map((r) => r.value), ["2"])
      }))

    it.scopedLive("Dfk.explain under default resume looks in every run of the runDir: a hit names its checkpoint, a tombstone says so", () =>
      Effect.gen(function*() {
        const client = yield* database
        const runDir = `explain-${Math.random()}`
        const a = yield* countingStore(client())
        const k = kernel(a.layer, { checkpointMode: "task_exit" }, runDir)
        yield* Effect.forEach([1, 2], square).pipe(Effect.provide(k))
        yield* Dfk.invalidate(square, 2).pipe(Effect.provide(k))
        const [hit, tombstoned, changed] = yield* Effect.all([
          Dfk.explain(square, 1),
          Dfk.explain(square, 2),
          Dfk.explain(square, 3)
        ]).pipe(Effect.provide(k))
        assert.strictEqual(hit._tag === "Hit" && hit.checkpoint, `${runDir}/000/checkpoint`)
        assert.deepStrictEqual(
          tombstoned._tag === "Miss" && tombstoned.closest[0]!.differences,
          [{
            _tag: "Tombstoned",
            checkpoint: `${runDir}/001/checkpoint`,
            time: (tombstoned as any).closest[0].differences[0].time
          }]
        )
        assert.deepStrictEqual(changed._tag === "Miss" && changed.closest[0]!.differences.map((d) => d._tag), [
          "Changed"
        ])
      }))

    it.scopedLive("a failed statement's error names the driver's reason, not only the client's \"Failed to execute statement\"", () =>
      Effect.gen(function*() {
        const client = yield* database
        const a = yield* countingStore(client())
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DROP TABLE dfk_runs`
        }).pipe(Effect.provide(client()))
        const error = yield* Effect.flip(a.store.runs!.allocate(`gone-${Math.random()}`))
        assert.strictEqual(error._tag, "CheckpointError")
        assert.match(error.reason, /^The SQL store failed: Failed to execute statement \(.*dfk_runs/)
      }))

    it.scopedLive("a store that opens on tables made already takes no lock on them (runs that claim and write meanwhile are not held up)", () =>
      Effect.gen(function*() {
        const client = yield* database
        yield* countingStore(client())
        // Another process in the middle of a write: its transaction holds what a write holds.
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.withTransaction(Effect.gen(function*() {
            if (isPg) yield* sql`LOCK TABLE dfk_entries, dfk_claims IN ROW EXCLUSIVE MODE`
            else yield* sql`INSERT INTO dfk_meta (key, value) VALUES (${`lock-${Math.random()}`}, 'held')`
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
          }))
        }).pipe(Effect.provide(client()), Effect.orDie, Effect.fork)
        yield* Deferred.await(locked)
        // (Before: PostgreSQL's DDL waited for the holder's locks, SQLite's for its write lock.)
        const opened = yield* Layer.build(client()).pipe(
          Effect.flatMap((context) => SqlStore.make().pipe(Effect.provide(context))),
          Effect.as("opened" as const),
          Effect.timeoutTo({ duration: Duration.seconds(3), onSuccess: (x) => x, onTimeout: () => "waited" as const })
        )
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        assert.strictEqual(opened, "opened")
      }))

    // (PostgreSQL only: SQLite has one writer at a time, and no deadlock to end.)
    if (isPg) {
      it.scopedLive("a claim that PostgreSQL ends as a deadlock is claimed again, not run unclaimed", () =>
        Effect.gen(function*() {
          const client = yield* database
          const a = yield* countingStore(client())
          const runDir = `deadlock-${Math.random()}`
          const run = `${runDir}/000`
          const sqlOf = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
            Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(client()), Effect.orDie)
          // Another transaction holds a claim row on "k2" and will insert one on "k1": the store's
          // batch (k1, k2, inserted in that order) holds k1 and waits for k2, and the other waits
          // for k1. PostgreSQL ends the one that waited first (1 s later): the store's.
          const inserted = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const other = yield* sqlOf((sql) =>
            sql.withTransaction(Effect.gen(function*() {
              const row = (hash: string) =>
                sql`INSERT INTO dfk_claims (run_dir, hash, owner, owner_key, expires) VALUES (${runDir}, ${hash}, 'other', NULL, ${Number.MAX_SAFE_INTEGER})`
              yield* row("k2")
              yield* Deferred.succeed(inserted, undefined)
              yield* Effect.sleep(Duration.millis(300))
              yield* row("k1")
              yield* Deferred.await(release)
              // Rolled back: nothing of it stays.
              return yield* Effect.fail("rolled back")
            }))
          ).pipe(Effect.exit, Effect.fork)
          yield* Deferred.await(inserted)
          const claims = yield* Effect.all(
            [a.store.claims!.claim(runDir, "k1", run), a.store.claims!.claim(runDir, "k2", run)],
            { concurrency: "unbounded" }
          ).pipe(Effect.either, Effect.fork)
          // The other's insert of k1 ends once the store's claim is ended, then it rolls back.
          yield* Effect.sleep(Duration.millis(2500))
          yield* Deferred.succeed(release, undefined)
          yield* Fiber.join(other)
          const result = yield* Fiber.join(claims)
          assert.deepStrictEqual(result._tag === "Right" ? result.right : result.left.message, ["won", "won"])
        }))
    }

    it.scopedLive("its tables are created once, however many stores start at once", () =>
      Effect.gen(function*() {
        const client = yield* database
        const stores = yield* Effect.all(
          Array.from(
            { length: 20 },
            () => Effect.flatMap(Layer.build(client()), (context) => SqlStore.make().pipe(Effect.provide(context)))
          ),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(stores.length, 20)
        const rows = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly value: string }>`SELECT value FROM dfk_meta WHERE key = 'schema'`
        }).pipe(Effect.provide(client()))
        assert.deepStrictEqual(rows.map((r) => r.value), ["2"])
      }))
  })

describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore on SQLite: runs, lookups, claims"), () => {
  sqlCases("SQLite", sqliteDb, false)
})

describe("SqlStore on PostgreSQL: runs, lookups, claims", () => {
  sqlCases("PostgreSQL", pgDb, true)

  it.scopedLive("a write reads only the claims it ends, however many the run holds (a fresh table, no statistics yet)", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(pgDatabase)
      const context = yield* Layer.build(Layer.orDie(PgClient.layer({ url: Redacted.make(url) })))
      const sql = Context.get(context, SqlClient.SqlClient)
      const store = yield* SqlStore.make().pipe(Effect.provide(context), Effect.orDie)
      const runDir = `held-${Math.random()}`
      const run = yield* store.runs!.allocate(runDir)
      const hash = (i: number) => String(i).padStart(64, "0")
      const held = 20_000
      const written = 5 * 70
      // The run holds 20,000 claims, the 350 written below among them.
      for (let i = 0; i < held; i += 1000) {
        yield* sql`INSERT INTO ${sql("dfk_claims")} ${
          sql.insert(Array.from({ length: 1000 }, (_, k) => ({
            run_dir: runDir,
            hash: hash(i + k),
            owner: run,
            owner_key: null,
            expires: Number.MAX_SAFE_INTEGER
          })))
        }`.pipe(Effect.orDie)
      }
      // The server's counters of the table (each backend sends its own within a second or so).
      const counters = sql<{ readonly read: string; readonly deleted: string; readonly inserted: string }>`
        SELECT (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::text AS read, n_tup_del::text AS deleted,
          n_tup_ins::text AS inserted FROM pg_stat_user_tables WHERE relname = 'dfk_claims'`.pipe(
        Effect.map((rows) => ({
          read: Number(rows[0]!.read),
          deleted: Number(rows[0]!.deleted),
          inserted: Number(rows[0]!.inserted)
        })),
        Effect.orDie
      )
      const settled = (done: (c: { read: number; deleted: number; inserted: number }) => boolean) =>
        Effect.gen(function*() {
          for (let i = 0; i < 300; i++) {
            const c = yield* counters
            if (done(c)) return c
            yield* Effect.sleep(Duration.millis(100))
          }
          return yield* Effect.dieMessage("the server's statistics did not arrive in 30 s")
        })
      const before = yield* settled((c) => c.inserted >= held)
      for (let w = 0; w < 5; w++) {
        yield* store.appendEncoded!(
          `${run}/checkpoint`,
          Array.from({ length: 70 }, (_, k) => ({
            hash: hash(w * 70 + k),
            app: "square",
            version: null,
            input: String(w * 70 + k),
            result: "0",
            time: new Date(0).toISOString()
          }))
        ).pipe(Effect.orDie)
      }
      const after = yield* settled((c) => c.deleted >= before.deleted + written)
      assert.strictEqual(after.deleted - before.deleted, written)
      // Found by the primary key: about one row read per claim ended (through the owner's
      // index, each write read all 20,000 the run held: 100,000).
      assert.isAtMost(after.read - before.read, 4 * written)
    }))

  it.scopedLive("the connection URL (and its password) is never logged", () =>
    Effect.gen(function*() {
      const url = yield* Effect.orDie(pgDatabase)
      const password = new URL(url).password
      assert.isAbove(password.length, 0)
      const logs = captureLogs()
      const client = Layer.orDie(PgClient.layer({ url: Redacted.make(url) }))
      yield* Effect.forEach([1, 2], square).pipe(
        Effect.provide(Dfk.layer({ runDir: "nightly", checkpointMode: "task_exit" })),
        Effect.provide(SqlStore.layer().pipe(Layer.provide(client), Layer.orDie)),
        Effect.provide(platform),
        Effect.provide(logs.layer),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      assert.isAbove(logs.lines.length, 0)
      for (const line of logs.lines) assert.notInclude(line.message, password)
    }))
})
