/**
 * The SQL test harness works: on PostgreSQL (the run's server, a database per suite) and on
 * SQLite (a temporary file), a table is created, rows go in through parameters and come back;
 * on PostgreSQL, LISTEN/NOTIFY and session advisory locks on reserved connections behave as the
 * SQL store will rely on.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import { pgDatabase, pgLayer, pgUrl, sqliteAvailable, sqliteFile, sqliteLayer, sqliteSuite } from "./sqlHarness.ts"

/** A connection of the pool, reserved (`sql.reserve`): one session. */
type Connection = Effect.Effect.Success<SqlClient.SqlClient["reserve"]>

/** The SQLite file of a suite. */
class File extends Context.Tag("SqlHarness.test/File")<File, string>() {}

const KEY = "it's ☃ \u{1F600} \"quoted\" ; DROP TABLE t; --"

/** Create, insert with parameters (one by one and in a batch), select with a parameter. */
const roundTrip = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL, body TEXT)`
  yield* sql`INSERT INTO t (k, v, body) VALUES (${KEY}, ${1}, ${"{\"b\":1,\"a\":2}"})`
  yield* sql`INSERT INTO t ${sql.insert([{ k: "b", v: 2, body: null }, { k: "c", v: 3, body: "x" }])}`
  const rows = yield* sql<{ k: string; v: number; body: string | null }>`
    SELECT k, v, body FROM t WHERE v <= ${2} ORDER BY v`
  assert.deepStrictEqual(rows.map((r) => ({ ...r })), [
    { k: KEY, v: 1, body: "{\"b\":1,\"a\":2}" },
    { k: "b", v: 2, body: null }
  ])
  const [count] = yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM t`
  assert.strictEqual(Number(count.n), 3)
})

describe("SqlHarness: PostgreSQL", () => {
  layer(pgLayer(), { excludeTestServices: true })((it) => {
    it.effect("the suite has a database of its own; parameters round-trip", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        assert.deepStrictEqual(sql`SELECT ${KEY}`.compile(), ["SELECT $1", [KEY]])
        const [db] = yield* sql<{ name: string; encoding: string }>`
          SELECT current_database() AS name, current_setting('server_encoding') AS encoding`
        assert.match(db.name, /^dfk_test_[0-9a-f]{12}$/)
        assert.strictEqual(db.encoding, "UTF8")
        yield* roundTrip
      }))

    it.scoped("another database sees neither the tables nor the advisory locks of this one", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const mine = yield* sql.reserve
        const [locked] = yield* mine.execute("SELECT pg_try_advisory_lock($1::bigint) AS ok", ["77"], undefined)
        assert.strictEqual(locked.ok, true)
        const url = yield* pgDatabase
        assert.notStrictEqual(url, pgUrl())
        yield* Effect.gen(function*() {
          const other = yield* SqlClient.SqlClient
          const [t] = yield* other<{ n: number }>`SELECT COUNT(*)::int AS n FROM pg_tables WHERE tablename = 't'`
          assert.strictEqual(t.n, 0)
          const [lock] = yield* other<{ ok: boolean }>`SELECT pg_try_advisory_lock(77) AS ok`
          assert.strictEqual(lock.ok, true)
        }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
        const [unlocked] = yield* mine.execute("SELECT pg_advisory_unlock($1::bigint) AS ok", ["77"], undefined)
        assert.strictEqual(unlocked.ok, true)
      }))

    it.scoped("LISTEN/NOTIFY through pg_notify: payloads arrive in order", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const channel = "dfk_entries"
        const received = yield* Queue.unbounded<string>()
        yield* sql.listen(channel).pipe(Stream.runForEach((p) => Queue.offer(received, p)), Effect.forkScoped)
        const notify = (payload: string) => sql`SELECT pg_notify(${channel}, ${payload})`
        // the stream's LISTEN runs in the background: ping until a notification comes back
        yield* notify("ping").pipe(
          Effect.zipRight(Effect.sleep("10 millis")),
          Effect.zipRight(Queue.size(received)),
          Effect.repeat({ until: (n) => n > 0 }),
          Effect.timeout("5 seconds")
        )
        yield* notify("first")
        yield* notify(KEY)
        const payloads: Array<string> = []
        while (payloads.at(-1) !== KEY) {
          const p = yield* Queue.take(received).pipe(Effect.timeout("5 seconds"))
          if (p !== "ping") payloads.push(p)
        }
        assert.deepStrictEqual(payloads, ["first", KEY])
      }))

    it.scoped("session advisory locks on reserved connections: one holder; dropped with its connection", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        // the first 64 bits of a sha256, as a signed bigint, passed as text
        const key = "-6510293751052452185"
        const query = (conn: Connection, text: string) =>
          Effect.map(conn.execute(text, [key], undefined), (rows) => rows[0] as Record<string, unknown>)
        const a = yield* sql.reserve
        const b = yield* sql.reserve
        const pidA = (yield* a.execute("SELECT pg_backend_pid() AS pid", [], undefined))[0].pid as number
        const pidB = (yield* b.execute("SELECT pg_backend_pid() AS pid", [], undefined))[0].pid as number
        assert.notStrictEqual(pidA, pidB)
        assert.strictEqual((yield* query(a, "SELECT pg_try_advisory_lock($1::bigint) AS ok")).ok, true)
        assert.strictEqual((yield* query(a, "SELECT pg_try_advisory_lock($1::bigint) AS ok")).ok, true) // re-entrant
        assert.strictEqual((yield* query(b, "SELECT pg_try_advisory_lock($1::bigint) AS ok")).ok, false)
        const holders = yield* sql<{ pid: number }>`
          SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
            AND ((classid::bigint << 32) | objid::bigint) = ${key}::bigint`
        assert.deepStrictEqual(holders.map((h) => h.pid), [pidA])
        // the holder's connection dies: the lock goes with it, the other session takes it
        const [killed] = yield* b.execute("SELECT pg_terminate_backend($1) AS ok", [pidA], undefined)
        assert.strictEqual(killed.ok, true)
        yield* query(b, "SELECT pg_try_advisory_lock($1::bigint) AS ok").pipe(
          Effect.repeat({ until: (r) => r.ok === true, schedule: Schedule.spaced("10 millis") }),
          Effect.timeout("5 seconds")
        )
        const lost = yield* Effect.flip(a.execute("SELECT 1", [], undefined))
        assert.strictEqual(lost._tag, "SqlError")
        assert.strictEqual((yield* query(b, "SELECT pg_advisory_unlock($1::bigint) AS ok")).ok, true)
      }))
  })
})

// Skipped only where better-sqlite3 cannot load (Deno: it is a nan addon, Deno loads only
// Node-API addons); under Node these always run.
describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlHarness: SQLite"), () => {
  layer(
    Layer.unwrapScoped(Effect.map(sqliteFile, (file) => Layer.merge(sqliteLayer(file), Layer.succeed(File, file)))),
    {
      excludeTestServices: true
    }
  )((it) => {
    it.effect("a temporary file; parameters round-trip; a second client on the file sees the rows", () =>
      Effect.gen(function*() {
        const sql = yield* SqliteClient.SqliteClient
        const file = yield* File
        assert.deepStrictEqual(sql`SELECT ${KEY}`.compile(), ["SELECT ?", [KEY]])
        yield* roundTrip
        assert.isTrue(fs.existsSync(file))
        const [mode] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        assert.strictEqual(mode.journal_mode, "wal")
        const other = yield* Effect.gen(function*() {
          const sql2 = yield* SqlClient.SqlClient
          return yield* sql2<{ k: string }>`SELECT k FROM t ORDER BY v`
        }).pipe(Effect.provide(sqliteLayer(file)))
        assert.deepStrictEqual(other.map((r) => r.k), [KEY, "b", "c"])
      }))
  })

  layer(sqliteLayer(), { excludeTestServices: true })((it) => {
    it.effect("sqliteLayer() makes a file of its own", () =>
      Effect.gen(function*() {
        const sql = yield* SqliteClient.SqliteClient
        const [db] = yield* sql<{ file: string }>`SELECT file FROM pragma_database_list WHERE name = 'main'`
        assert.match(db.file, /dfk-test-sqlite-[^/\\]+[/\\]dfk\.db$/)
        const tables = yield* sql`SELECT name FROM sqlite_master WHERE type = 'table'`
        assert.deepStrictEqual(tables, [])
      }))
  })
})
