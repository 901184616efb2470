/**
 * A checkpoint store in a SQL database, shared by every process that uses it (DESIGN §7):
 * the same workflow started on many processes or machines against one database splits its
 * work, each task body running once in all. Any `@effect/sql` client works; tested are
 * SQLite (`@effect/sql-sqlite-node`: many processes on one machine) and PostgreSQL
 * (`@effect/sql-pg`: many machines). Imported from `effect-dfk/sql`; the core package does
 * not depend on any SQL package.
 *
 * @module
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { CheckpointStore } from "./CheckpointStore.ts"
import type { CheckpointStoreService } from "./CheckpointStore.ts"
import * as internal from "./internal/sqlStore.ts"

/**
 * Options of `SqlStore.layer` and `SqlStore.make`.
 *
 * @since 0.2.0
 * @category models
 */
export interface SqlStoreOptions {
  /** The prefix of the store's table names (letters, digits, `_`). Default `"dfk_"`. */
  readonly tablePrefix?: string | undefined
  /**
   * How long a claim lasts unless its holder renews it (a third of it apart): a holder that
   * stops renewing (a crash, a lost connection, a stalled process) loses its claims after
   * this. With PostgreSQL a holder that is gone is seen at once (its connection's locks
   * drop). Default 30 seconds.
   */
  readonly lease?: Duration.DurationInput | undefined
}

/**
 * Makes a SQL store over the `SqlClient` in the context, for the current scope: creates its
 * tables when they are missing (versioned, idempotent, safe when many processes start at
 * once), renews the claims it holds and watches those it waits for until the scope closes.
 *
 * How claims go (DESIGN §7). The claims asked for at one moment are made in one statement
 * (`INSERT … ON CONFLICT DO NOTHING`: the rows inserted are the claims won); a key won is
 * looked up once more (an entry written meanwhile answers it, and the claim is given back).
 * The entries of a checkpoint pass are written, and the run's claims on those keys ended, in
 * one transaction (PostgreSQL: one statement). A claim lasts a lease, renewed a third of a
 * lease apart while held; a claim out of lease is taken over by one waiter. With PostgreSQL
 * each process also holds a session advisory lock while the store is open, so that a process
 * that is gone (crashed, killed, its connection lost) is taken over without waiting for the
 * lease; and processes tell each other on the channel `<tablePrefix>events` (LISTEN/NOTIFY)
 * which keys they claimed, wrote (with the entries, when short) or gave up, so that a wait
 * ends as soon as its entry is written and a key known to be held needs no statement. Waits
 * are also checked a second apart (or a third of a lease, when shorter). SQLite polls, 5 ms
 * apart backing off to 100 ms.
 *
 * The store's own timing (leases, renewals, polls) follows the real clock, also when the
 * calling fiber has a `TestClock`. With SQLite, a write with durability `"none"` (the
 * kernel's default) sets the connection's `synchronous` to `NORMAL` (in WAL mode a commit then
 * survives a crash of the process, not a power cut), `"fsync"` to `FULL`. With PostgreSQL every
 * commit is durable as the server is configured.
 *
 * @example A store in an SQLite file
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect } from "effect"
 * import { SqlStore } from "effect-dfk/sql"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-sql-make-" })
 *   const runs = yield* Effect.scoped(Effect.gen(function* () {
 *     const store = yield* SqlStore.make()
 *     return [yield* store.runs!.allocate("nightly"), yield* store.runs!.allocate("nightly")]
 *   })).pipe(Effect.provide(SqliteClient.layer({ filename: path.join(dir, "dfk.db") })))
 *   console.assert(runs.join() === "nightly/000,nightly/001")
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options?: SqlStoreOptions
): Effect.Effect<CheckpointStoreService, SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => internal.make(sql, options))

/**
 * The `CheckpointStore` of a SQL database: runs, checkpoints and claims in tables of the
 * `SqlClient` provided to it. Runs are named `<runDir>/<NNN>` as with files (no local folder
 * is made); lookups ask for the keys calls need; under default resume, claims split the
 * work between processes (DESIGN §7).
 *
 * @example Two runs of a workflow on one SQLite store: the second computes nothing
 * ```ts
 * import * as FileSystem from "@effect/platform/FileSystem"
 * import * as path from "node:path"
 * import { NodeContext } from "@effect/platform-node"
 * import { SqliteClient } from "@effect/sql-sqlite-node"
 * import { Effect, Layer, Schema } from "effect"
 * import { App, Dfk } from "effect-dfk"
 * import { SqlStore } from "effect-dfk/sql"
 *
 * let bodies = 0
 * const square = App.make(
 *   { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
 *   (x) => Effect.sync(() => (bodies++, x * x))
 * )
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const fs = yield* FileSystem.FileSystem
 *   const dir = yield* fs.makeTempDirectoryScoped({ prefix: "effect-dfk-doc-sql-layer-" })
 *   const store = SqlStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: path.join(dir, "dfk.db") })))
 *   const run = Effect.forEach([1, 2, 3], square).pipe(
 *     Effect.zip(Dfk.runDir),
 *     Effect.provide(Dfk.layer({ runDir: "nightly", checkpointMode: "task_exit" })),
 *     Effect.provide(store)
 *   )
 *   const [first, firstRun] = yield* run
 *   const [second, secondRun] = yield* run
 *   console.assert(first.join() === "1,4,9" && second.join() === "1,4,9" && bodies === 3)
 *   console.assert(firstRun === "nightly/000" && secondRun === "nightly/001")
 * }))
 * await Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options?: SqlStoreOptions): Layer.Layer<CheckpointStore, SqlError, SqlClient.SqlClient> =>
  Layer.scoped(CheckpointStore, make(options))
