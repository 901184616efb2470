/**
 * SQL clients for the tests: PostgreSQL (a database of its own per suite, on the server that
 * `sqlGlobalSetup.ts` starts once per run) and SQLite (a temporary file).
 *
 * ```ts
 * import { layer } from "@effect/vitest"
 * import { pgLayer, sqliteAvailable, sqliteLayer, sqliteSuite } from "./e2e/sqlHarness.ts"
 *
 * layer(pgLayer())("SqlStore on PostgreSQL", (it) => { it.effect(…) })
 * describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore on SQLite"), () => {
 *   layer(sqliteLayer())("…", (it) => { it.effect(…) })
 * })
 * ```
 *
 * The PostgreSQL server is started only for test files whose name contains `Sql`.
 *
 * @module
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { inject } from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    /** The URL of the run's PostgreSQL server (a superuser on its `postgres` database). */
    dfkPgUrl?: string
  }
}

/**
 * The URL of the run's PostgreSQL server (`DFK_TEST_PG_URL`, or the one `sqlGlobalSetup.ts`
 * started). Tests should not use its `postgres` database: take one of their own (`pgDatabase`).
 */
export const pgUrl = (): string => {
  const url = inject("dfkPgUrl")
  if (url === undefined || url === "") {
    throw new Error(
      "No PostgreSQL server for this test file: test/e2e/sqlGlobalSetup.ts starts one only when the run " +
        "includes a test file whose name contains \"Sql\" (or with DFK_TEST_PG=1), or set DFK_TEST_PG_URL"
    )
  }
  return url
}

/** The URL of `url` with its database replaced by `database`. */
export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

const admin = (): Layer.Layer<PgClient.PgClient, SqlError> =>
  Layer.unwrapEffect(
    Effect.sync(() =>
      PgClient.layer({ url: Redacted.make(pgUrl()), maxConnections: 1, applicationName: "dfk-test-admin" })
    )
  )

/**
 * A fresh database `dfk_test_<random>` on the run's server: its URL. Dropped (`WITH (FORCE)`,
 * closing any session left) when the scope closes. Tables, LISTEN channels and advisory locks
 * are all per database, so suites running at once in other workers do not see each other's.
 */
export const pgDatabase: Effect.Effect<string, SqlError, Scope.Scope> = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `dfk_test_${randomBytes(6).toString("hex")}`
    const sql = yield* PgClient.PgClient
    yield* sql.unsafe(`CREATE DATABASE ${name}`)
    return name
  }).pipe(Effect.provide(admin())),
  (name) =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    }).pipe(Effect.provide(admin()), Effect.orDie)
).pipe(Effect.map((name) => withDatabase(pgUrl(), name)))

/** Options of `pgLayer`: those of `PgClient.layer` but the connection's. */
export type PgLayerOptions = Omit<
  PgClient.PgClientConfig,
  "url" | "host" | "port" | "path" | "database" | "username" | "password" | "ssl" | "stream"
>

/**
 * A `PgClient` (and `SqlClient`) on a fresh database of its own (`pgDatabase`), dropped when the
 * layer is released: one per suite with `layer(pgLayer())(…)` of `@effect/vitest`.
 */
export const pgLayer = (options: PgLayerOptions = {}): Layer.Layer<PgClient.PgClient | SqlClient, SqlError> =>
  Layer.unwrapScoped(Effect.map(pgDatabase, (url) => PgClient.layer({ ...options, url: Redacted.make(url) })))

/** A fresh temporary directory's `dfk.db`: removed (with its `-wal` and `-shm`) when the scope closes. */
export const sqliteFile: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "dfk-test-sqlite-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => path.join(dir, "dfk.db")))

/** Options of `sqliteLayer`: those of `SqliteClient.layer` but `filename`. */
export type SqliteLayerOptions = Omit<SqliteClient.SqliteClientConfig, "filename">

/**
 * A `SqliteClient` (and `SqlClient`) on `filename`, or, without one, on a temporary file of its
 * own (`sqliteFile`) removed when the layer is released.
 */
export const sqliteLayer = (
  filename?: string,
  options: SqliteLayerOptions = {}
): Layer.Layer<SqliteClient.SqliteClient | SqlClient, ConfigError> =>
  filename !== undefined
    ? SqliteClient.layer({ ...options, filename })
    : Layer.unwrapScoped(Effect.map(sqliteFile, (file) => SqliteClient.layer({ ...options, filename: file })))

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object"

const denoVersion = (): string => (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno

/**
 * Why `@effect/sql-sqlite-node` cannot run on this runtime (the driver's load error), or
 * `undefined` when it can. Only Deno is probed: better-sqlite3 is a nan addon and Deno loads
 * only Node-API addons. Under Node the answer is always `undefined`, so a broken install fails
 * the SQLite tests instead of skipping them.
 */
export const sqliteUnavailable: string | undefined = (() => {
  if (!isDeno) return undefined
  try {
    const Database = createRequire(import.meta.url)("better-sqlite3") as new(file: string) => { close(): void }
    new Database(":memory:").close()
    return undefined
  } catch (e) {
    return String((e as Error)?.message ?? e)
  }
})()

/** Whether the SQLite tests can run here: skip them (`describe.skipIf(!sqliteAvailable)`) otherwise. */
export const sqliteAvailable: boolean = sqliteUnavailable === undefined

/**
 * The name of a SQLite suite, with why it is skipped on this runtime appended when it is:
 * `describe.skipIf(!sqliteAvailable)(sqliteSuite("…"), …)`. Skipping is for this runtime
 * limitation only: under Node the suites always run.
 */
export const sqliteSuite = (name: string): string =>
  sqliteUnavailable === undefined
    ? name
    : `${name} [skipped: better-sqlite3 does not load under Deno ${denoVersion()}, which loads only Node-API addons]`
