/**
 * The state the parts of the SQL store share: the client, the tables, the database's clock,
 * this process's liveness key and lease, the claims it holds, what other processes said
 * lately and the waits for keys held elsewhere. `make` creates it; each part's maker reads it.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { CheckpointEntry } from "../../CheckpointStore.ts"
import { CheckpointError } from "../../errors.ts"
import { sqlReasonOf } from "../messages.ts"
import type { OneShot } from "../oneShot.ts"
import type { Note } from "./notes.ts"

/** Options of the SQL store (see `SqlStore.layer`). */
export interface SqlStoreOptions {
  readonly tablePrefix?: string | undefined
  readonly lease?: Duration.DurationInput | undefined
}

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/

/** A random 62-bit liveness key, as a decimal string (PostgreSQL's bigint). */
const randomKey = (): string => {
  const hi = Math.floor(Math.random() * 0x40000000)
  const lo = Math.floor(Math.random() * 0x100000000)
  return (BigInt(hi) * 0x100000000n + BigInt(lo) + 1n).toString()
}

// The store's own timing (leases and their renewal, polls, retries) follows the real clock,
// whatever clock the caller's fiber has (a TestClock in tests): leases are measured by the
// database's clock, and other processes do not wait for a test to advance time.
const liveClock = Clock.make()
/** `effect` on the real clock (see above). */
export const realTime = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withClock(effect, liveClock)

/**
 * Whether a failed statement may simply be run again: PostgreSQL ended its transaction as a
 * deadlock (40P01) or a serialization failure (40001), and rolled all of it back.
 */
export const isTransient = (error: SqlError): boolean => {
  const code = (error.cause as { readonly code?: unknown } | null | undefined)?.code
  return code === "40P01" || code === "40001"
}

/**
 * Runs a statement (one transaction) again when it fails transiently (`isTransient`): up to
 * 3 more times, 10 ms apart and doubling. Only for statements that leave nothing behind when
 * they fail.
 */
export const retryTransient = <A, R>(statement: Effect.Effect<A, SqlError, R>): Effect.Effect<A, SqlError, R> =>
  realTime(Effect.retry(statement, {
    times: 3,
    schedule: Schedule.exponential(Duration.millis(10)),
    while: isTransient
  }))

/** One waiter for a key under claim: resumed with the entry, or `undefined` when the claim ended without one. */
export type Waiter = OneShot<CheckpointEntry | undefined, CheckpointError>

/** The store's tables. */
export interface Tables {
  readonly meta: Statement.Identifier
  readonly runs: Statement.Identifier
  readonly checkpoints: Statement.Identifier
  readonly entries: Statement.Identifier
  readonly claims: Statement.Identifier
}

/** What the parts of one SQL store share. */
export interface SqlStoreContext {
  readonly sql: SqlClient.SqlClient
  /** The tables' prefix (default `dfk_`). */
  readonly prefix: string
  readonly t: Tables
  readonly isPg: boolean
  /** The database's clock, in milliseconds since the epoch (a literal of the statements). */
  readonly now: Statement.Fragment
  /**
   * The claims' `owner` column for statements that also name the keys: an expression no
   * index answers (`owner || ''`, SQLite `+owner`), so that the primary key finds the keys.
   * Planned without statistics of the table (a fresh one, filled by a first big run), the
   * owner's index was chosen, and a write ending 70 claims read every claim its run held
   * (20,000 held: 6 ms a write on SQLite, 1 ms with none; bench B10 (c)).
   */
  readonly ownerOf: Statement.Fragment
  /** How long a claim lasts unless renewed. */
  readonly leaseMs: number
  /** How often every key waited for is checked at least (PostgreSQL, where notifications end most waits). */
  readonly fullMs: number
  /** This process's liveness key. */
  readonly ownerKey: string
  /** The store's scope. */
  readonly scope: Scope.Scope
  /** PostgreSQL: takes this process's liveness lock (once; later runs wait for it). */
  readonly liveness: Effect.Effect<void, SqlError> | undefined
  /** Claims this process holds (run → runDir → hashes), renewed while held. */
  readonly held: Map<string, Map<string, Set<string>>>
  /** The NOTIFY channel (`<prefix>events`, see `notes.ts`). */
  readonly channel: string
  /** What notifications said lately, by runDir NUL hash (see `notes.ts`). */
  readonly notes: Map<string, Note>
  /** The waits for keys under claim elsewhere: runDir → hash → waiters. */
  readonly waiters: Map<string, Map<string, Array<Waiter>>>
  /** The error of a failed statement on `path`. */
  readonly fail: (path: string) => (cause: unknown) => CheckpointError
}

/** The shared state of a SQL store over `sql`. */
export const makeContext = (
  sql: SqlClient.SqlClient,
  options: SqlStoreOptions
): Effect.Effect<SqlStoreContext, never, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.tablePrefix ?? "dfk_"
    if (!PREFIX.test(prefix)) {
      return yield* Effect.dieMessage(
        `SqlStore: tablePrefix must be letters, digits and underscores (got ${JSON.stringify(prefix)})`
      )
    }
    const leaseMs = Duration.toMillis(Duration.decode(options.lease ?? Duration.seconds(30)))
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const t = {
      meta: sql(prefix + "meta"),
      runs: sql(prefix + "runs"),
      checkpoints: sql(prefix + "checkpoints"),
      entries: sql(prefix + "entries"),
      claims: sql(prefix + "claims")
    }
    // The database's clock, in milliseconds since the epoch: every process of a shared store
    // reads the same one (with PostgreSQL, the server's).
    const now = isPg
      ? sql.literal("(extract(epoch from clock_timestamp()) * 1000)::bigint")
      : sql.literal("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")

    // Every key waited for is checked at least this often (PostgreSQL, where notifications
    // end most waits): a holder gone or out of lease is seen within it.
    const FULL_MS = Math.max(10, Math.min(1000, Math.floor(leaseMs / 3)))

    const fail = (path: string) => (cause: unknown) =>
      new CheckpointError({ path, reason: `The SQL store failed: ${sqlReasonOf(cause)}`, cause })

    // This process's liveness key: with PostgreSQL, a session advisory lock on it is held on a
    // connection of its own while the store lives, so that another process can tell at once
    // when this one is gone (the server drops a dead connection's locks).
    const ownerKey = randomKey()
    const scope = yield* Effect.scope
    let liveness: Effect.Effect<void, SqlError> | undefined
    if (isPg) {
      // Taken when the store opens (in the background), on a connection kept until it closes.
      liveness = yield* Effect.cached(
        Effect.gen(function*() {
          const conn = yield* sql.reserve
          yield* conn.execute("SELECT pg_advisory_lock($1::bigint)", [ownerKey], undefined)
          // Let go before the connection goes back to its pool (where the lock would stay
          // with the session until the pool closes it).
          yield* Effect.addFinalizer(() =>
            Effect.ignore(conn.execute("SELECT pg_advisory_unlock($1::bigint)", [ownerKey], undefined))
          )
        }).pipe(Scope.extend(scope))
      )
    }

    /** Claims this process holds (run → runDir → hashes), renewed while held. */
    const held = new Map<string, Map<string, Set<string>>>()
    const channel = prefix + "events"
    const notes = new Map<string, Note>()
    const waiters = new Map<string, Map<string, Array<Waiter>>>() // runDir → hash → waiters
    const context: SqlStoreContext = {
      sql,
      prefix,
      t,
      isPg,
      now,
      ownerOf: sql.literal(isPg ? "owner || ''" : "+owner"),
      leaseMs,
      fullMs: FULL_MS,
      ownerKey,
      scope,
      liveness,
      held,
      channel,
      notes,
      waiters,
      fail
    }
    return context
  })
