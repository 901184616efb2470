/**
 * The SQL store (`SqlStore.layer`): checkpoints, runs and claims in tables of any
 * `@effect/sql` client (SQLite and PostgreSQL tested). Entries keep their input and result as
 * the JSON text the kernel made (jsonb would reorder keys and drop duplicates, so a hash
 * would no longer match its input). Parameterized statements only.
 *
 * Tables (`<prefix>` default `dfk_`): `meta` (schema version), `runs` (allocated runs),
 * `checkpoints` (dirs that hold a checkpoint), `entries` (in write order, `seq`), `claims`
 * (one row per claimed key: its owner, the owner's liveness key, when its lease ends).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type {
  AppendOptions,
  CheckpointEntry,
  CheckpointStoreService,
  EncodedEntry,
  LookupScope,
  StoreClaims,
  StoreRuns
} from "../CheckpointStore.ts"
import { BadCheckpoint, CheckpointError } from "../errors.ts"
import { reasonOf } from "./messages.ts"
import { normalRunDir, runOfCheckpointDir, runPath } from "./runNames.ts"

/** The schema version these statements speak (2: entries have a `deleted` column, for tombstones). */
const SCHEMA_VERSION = 2

/** Options of the SQL store (see `SqlStore.layer`). */
export interface SqlStoreOptions {
  readonly tablePrefix?: string | undefined
  readonly lease?: Duration.DurationInput | undefined
}

/** An entry row. */
interface EntryRow {
  readonly dir: string
  readonly run: number | string | null
  readonly seq: number | string
  readonly hash: string
  readonly app: string
  readonly version: string | null
  readonly input: string
  readonly result: string
  readonly time: string
  /** 1 for a tombstone; 0 or `null` (rows written before schema version 2) for an entry. */
  readonly deleted: number | boolean | null
}

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/
// Rows per INSERT: 9 parameters each, well under SQLite's and PostgreSQL's limits.
const CHUNK = 400

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Whether a row is a tombstone. */
const isTombstone = (row: EntryRow): boolean => Number(row.deleted ?? 0) === 1

/** The entry of a row: the JSON texts parsed (a tombstone has no result). */
const entryOfRow = (row: EntryRow): CheckpointEntry =>
  isTombstone(row)
    ? {
      hash: row.hash,
      app: row.app,
      version: row.version,
      input: JSON.parse(row.input),
      result: undefined,
      time: row.time,
      deleted: true
    }
    : {
      hash: row.hash,
      app: row.app,
      version: row.version,
      input: JSON.parse(row.input),
      result: JSON.parse(row.result),
      time: row.time
    }

/** A random 62-bit liveness key, as a decimal string (PostgreSQL's bigint). */
const randomKey = (): string => {
  const hi = Math.floor(Math.random() * 0x40000000)
  const lo = Math.floor(Math.random() * 0x100000000)
  return (BigInt(hi) * 0x100000000n + BigInt(lo) + 1n).toString()
}

/** One waiter for a key under claim: resumed with the entry, or `undefined` when the claim ended without one. */
type Waiter = Deferred.Deferred<CheckpointEntry | undefined, CheckpointError>

/** The SQL store over `sql`. */
/** What every part of the SQL store shares. */
interface Ctx {
  readonly sql: SqlClient.SqlClient
  readonly prefix: string
  readonly isPg: boolean
  readonly leaseMs: number
  /** The store's tables. */
  readonly t: Record<"meta" | "runs" | "checkpoints" | "entries" | "claims", Statement.Identifier>
  /** The database's clock, in milliseconds since the epoch. */
  readonly now: Statement.Fragment
  /** This process's liveness key (see `claimsPart`). */
  readonly ownerKey: string
  readonly fail: (path: string) => (cause: unknown) => CheckpointError
}

/** Checkpoints and their entries: append (entries written end their run's claims), load, exists. */
const entriesPart = (c: Ctx) => {
  const { fail, isPg, prefix, sql, t } = c

  const insertEntries = (dir: string, entries: ReadonlyArray<EncodedEntry>) => {
    const run = runOfCheckpointDir(dir)
    return Effect.gen(function*() {
      yield* sql`INSERT INTO ${t.checkpoints} (dir, run_dir, run) VALUES (${dir}, ${run?.runDir ?? null}, ${
        run?.n ?? null
      }) ON CONFLICT (dir) DO NOTHING`
      for (const chunk of chunks(entries, CHUNK)) {
        yield* sql`INSERT INTO ${t.entries} ${
          sql.insert(chunk.map((e) => ({
            dir,
            run_dir: run?.runDir ?? null,
            run: run?.n ?? null,
            hash: e.hash,
            app: e.app,
            version: e.version,
            input: e.input,
            // (A tombstone keeps "null" in the column, which is NOT NULL.)
            result: e.deleted === true ? "null" : e.result,
            time: e.time,
            deleted: e.deleted === true ? 1 : 0
          })))
        }`
      }
      // Entries written end their run's claims on those keys (in the same transaction).
      if (run !== undefined && entries.length > 0) {
        for (const chunk of chunks(entries.map((e) => e.hash), CHUNK)) {
          yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND owner = ${run.run} AND ${
            sql.in("hash", chunk)
          }`
        }
        if (isPg) yield* sql`SELECT pg_notify(${prefix + "events"}, ${run.runDir})`
      }
    })
  }

  const appendEncoded = (
    dir: string,
    entries: ReadonlyArray<EncodedEntry>,
    _options?: AppendOptions
  ): Effect.Effect<void, CheckpointError> =>
    sql.withTransaction(insertEntries(dir, entries)).pipe(Effect.mapError(fail(dir)))

  const append = (
    dir: string,
    entries: ReadonlyArray<CheckpointEntry>,
    options?: AppendOptions
  ): Effect.Effect<void, CheckpointError> =>
    Effect.suspend(() => {
      let encoded: Array<EncodedEntry>
      try {
        encoded = entries.map((e) => ({
          hash: e.hash,
          app: e.app,
          version: e.version,
          input: JSON.stringify(e.input),
          result: e.deleted === true ? "null" : JSON.stringify(e.result),
          time: e.time,
          ...(e.deleted === true ? { deleted: true as const } : {})
        }))
      } catch (cause) {
        return Effect.fail(
          new CheckpointError({ path: dir, reason: `An entry has no JSON form: ${reasonOf(cause)}`, cause })
        )
      }
      return appendEncoded(dir, encoded, options)
    })

  const load = (dir: string, onEntry: (entry: CheckpointEntry) => void): Effect.Effect<void, BadCheckpoint> =>
    Effect.gen(function*() {
      const known = yield* sql<{ readonly dir: string }>`SELECT dir FROM ${t.checkpoints} WHERE dir = ${dir}`
      if (known.length === 0) {
        return yield* new BadCheckpoint({ path: dir, line: 0, reason: "the store holds no checkpoint here" })
      }
      const rows = yield* sql<
        EntryRow
      >`SELECT dir, run, seq, hash, app, version, input, result, time, deleted FROM ${t.entries} WHERE dir = ${dir} ORDER BY seq`
      let n = 0
      for (const row of rows) {
        n++
        let entry: CheckpointEntry
        try {
          entry = entryOfRow(row)
        } catch (e) {
          return yield* new BadCheckpoint({
            path: dir,
            line: n,
            reason: `Entry ${n} is not valid JSON: ${reasonOf(e)}`
          })
        }
        onEntry(entry)
      }
    }).pipe(
      Effect.catchTag("SqlError", (e) =>
        Effect.fail(
          new BadCheckpoint({ path: dir, line: 0, reason: `Cannot read from the SQL store: ${reasonOf(e)}` })
        ))
    )

  const exists = (dir: string): Effect.Effect<boolean> =>
    sql<{ readonly dir: string }>`SELECT dir FROM ${t.checkpoints} WHERE dir = ${dir}`.pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.orDie
    )
  return { append, appendEncoded, load, exists }
}

/** Runs, numbered by the database. */
const runsPart = (c: Ctx): StoreRuns => {
  const { fail, now, sql, t } = c

  return {
    list: (runDir) =>
      Effect.suspend(() => {
        const key = normalRunDir(runDir)
        return sql<{ readonly n: number | string }>`SELECT n FROM ${t.runs} WHERE run_dir = ${key} ORDER BY n`.pipe(
          Effect.map((rows) => rows.map((r) => runPath(key, Number(r.n)))),
          Effect.orDie
        )
      }),
    // The next number, taken in one statement; two processes that take the same one at
    // once collide on the primary key, and the loser takes the next.
    allocate: (runDir) =>
      Effect.suspend(() => {
        const key = normalRunDir(runDir)
        const take = sql<
          { readonly n: number | string }
        >`INSERT INTO ${t.runs} (run_dir, n, started) SELECT ${key}, COALESCE(MAX(n), -1) + 1, ${now} FROM ${t.runs} WHERE run_dir = ${key} RETURNING n`
        return take.pipe(
          Effect.retry({ times: 50, schedule: Schedule.spaced(Duration.millis(5)) }),
          Effect.map((rows) => runPath(key, Number(rows[0]!.n))),
          Effect.mapError(fail(runDir))
        )
      })
  }
}

/** Lookups: the newest entry of each hash in a scope. */
const lookupsPart = (c: Ctx) => {
  const { sql, t } = c

  /** The newest entry of each hash in `scope` (listed dirs: the last dir wins; a runDir: the newest run). */
  const lookupNow = (
    scope: LookupScope,
    hashes: ReadonlyArray<string>
  ): Effect.Effect<Map<string, CheckpointEntry>, SqlError> =>
    Effect.gen(function*() {
      const found = new Map<string, { readonly rank: number; readonly seq: number; readonly row: EntryRow }>()
      const rankOf = scope._tag === "Dirs"
        ? new Map(scope.dirs.map((d, i) => [d, i] as const))
        : undefined
      const unique = [...new Set(hashes)]
      for (const chunk of chunks(unique, CHUNK)) {
        const rows = scope._tag === "Dirs"
          ? yield* sql<
            EntryRow
          >`SELECT dir, run, seq, hash, app, version, input, result, time, deleted FROM ${t.entries} WHERE ${
            sql.in("dir", scope.dirs)
          } AND ${sql.in("hash", chunk)}`
          : yield* sql<
            EntryRow
          >`SELECT dir, run, seq, hash, app, version, input, result, time, deleted FROM ${t.entries} WHERE run_dir = ${
            normalRunDir(scope.runDir)
          } AND ${sql.in("hash", chunk)}`
        for (const row of rows) {
          const rank = rankOf !== undefined ? rankOf.get(row.dir) ?? -1 : Number(row.run ?? -1)
          const seq = Number(row.seq)
          const best = found.get(row.hash)
          if (best === undefined || rank > best.rank || (rank === best.rank && seq > best.seq)) {
            found.set(row.hash, { rank, seq, row })
          }
        }
      }
      const out = new Map<string, CheckpointEntry>()
      // A hash whose newest row is a tombstone has no entry.
      for (const [hash, { row }] of found) if (!isTombstone(row)) out.set(hash, entryOfRow(row))
      return out
    })

  const lookup = (scope: LookupScope, hashes: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      if (scope._tag === "Dirs" && scope.dirs.length === 0) return Effect.succeed(hashes.map(() => undefined))
      return lookupNow(scope, hashes).pipe(
        Effect.map((found) => hashes.map((h) => found.get(h))),
        Effect.catchAll((e) =>
          Effect.fail(
            new BadCheckpoint({
              path: scope._tag === "Dirs" ? scope.dirs.join(", ") : scope.runDir,
              line: 0,
              reason: `Cannot read from the SQL store: ${reasonOf(e)}`
            })
          )
        )
      )
    })
  return { lookupNow, lookup }
}

/** Whether the owner of a claim is gone (PostgreSQL: its liveness lock is free). */
const ownerGoneOf = (c: Ctx) => {
  const { isPg, ownerKey, sql } = c
  return (key: string | null): Effect.Effect<boolean, SqlError> =>
    !isPg || key === null || key === ownerKey
      ? Effect.succeed(false)
      : sql<{ readonly free: boolean }>`SELECT pg_try_advisory_xact_lock(${key}::bigint) AS free`.pipe(
        sql.withTransaction,
        Effect.map((rows) => rows[0]?.free === true)
      )
}

type LookupNow = ReturnType<typeof lookupsPart>["lookupNow"]
type OwnerGone = ReturnType<typeof ownerGoneOf>

/** Claims: claim, release, the liveness lock, the renewal of held claims. */
const claimsPart = (
  c: Ctx,
  lookupNow: LookupNow,
  ownerGone: OwnerGone,
  waitFor: (ns: string, hash: string) => Effect.Effect<CheckpointEntry | undefined, CheckpointError>
): Effect.Effect<StoreClaims, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { fail, isPg, leaseMs, now, ownerKey, prefix, sql, t } = c

    // This process's liveness key: with PostgreSQL, a session advisory lock on it is held on a
    // connection of its own while the store lives, so that another process can tell at once
    // when this one is gone (the server drops a dead connection's locks).
    let liveness: Effect.Effect<void, SqlError> | undefined
    const scope = yield* Effect.scope
    if (isPg) {
      // Taken at the first claim, on a connection kept until the store closes.
      liveness = yield* Effect.cached(
        Effect.gen(function*() {
          const conn = yield* sql.reserve
          yield* conn.execute("SELECT pg_advisory_lock($1::bigint)", [ownerKey], undefined)
        }).pipe(Scope.extend(scope))
      )
    }

    /** Claims this process holds (run → hashes), renewed while held. */
    const held = new Map<string, Map<string, Set<string>>>() // run → runDir → hashes
    const holding = (run: string, runDir: string) => {
      let byDir = held.get(run)
      if (byDir === undefined) held.set(run, byDir = new Map())
      let set = byDir.get(runDir)
      if (set === undefined) byDir.set(runDir, set = new Set())
      return set
    }

    const claimOnce = (runDir: string, hash: string, run: string): Effect.Effect<"won" | "held", SqlError> =>
      Effect.gen(function*() {
        const inserted = yield* sql<
          { readonly hash: string }
        >`INSERT INTO ${t.claims} (run_dir, hash, owner, owner_key, expires) VALUES (${runDir}, ${hash}, ${run}, ${ownerKey}, ${now} + ${leaseMs}) ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash`
        if (inserted.length > 0) return "won" as const
        const rows = yield* sql<
          { readonly owner: string; readonly owner_key: string | null; readonly expired: boolean | number }
        >`SELECT owner, owner_key, CASE WHEN expires < ${now} THEN 1 ELSE 0 END AS expired FROM ${t.claims} WHERE run_dir = ${runDir} AND hash = ${hash}`
        const current = rows[0]
        if (current === undefined) return "held" as const // released meanwhile: the caller tries again
        const takeOver = Number(current.expired) === 1 || (yield* ownerGone(current.owner_key))
        if (!takeOver) return "held" as const
        const taken = yield* sql<
          { readonly hash: string }
        >`UPDATE ${t.claims} SET owner = ${run}, owner_key = ${ownerKey}, expires = ${now} + ${leaseMs} WHERE run_dir = ${runDir} AND hash = ${hash} AND owner = ${current.owner} RETURNING hash`
        return taken.length > 0 ? "won" as const : "held" as const
      })

    const claims: StoreClaims = {
      claim: (runDir, hash, run) =>
        Effect.gen(function*() {
          const ns = normalRunDir(runDir)
          if (liveness !== undefined) yield* liveness
          for (let attempt = 0;; attempt++) {
            const outcome = yield* claimOnce(ns, hash, run)
            if (outcome === "won") {
              // An entry written before the claim was won (its writer's claim ended with it)
              // answers the key: the claim is given back and the entry served.
              const found = (yield* lookupNow({ _tag: "RunDir", runDir: ns }, [hash])).get(hash)
              if (found !== undefined) {
                yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${ns} AND hash = ${hash} AND owner = ${run}`
                return found
              }
              holding(run, ns).add(hash)
              return "won" as const
            }
            const found = (yield* lookupNow({ _tag: "RunDir", runDir: ns }, [hash])).get(hash)
            if (found !== undefined) return found
            // Held, unless it was released between the two statements: then claim again.
            const still = yield* sql`SELECT hash FROM ${t.claims} WHERE run_dir = ${ns} AND hash = ${hash}`
            if (still.length > 0 || attempt >= 3) return "held" as const
          }
        }).pipe(Effect.mapError(fail(runDir))),
      await: (runDir, hash) => waitFor(normalRunDir(runDir), hash),
      release: (runDir, hashes, run) =>
        Effect.suspend(() => {
          const ns = normalRunDir(runDir)
          const set = held.get(run)?.get(ns)
          for (const h of hashes) set?.delete(h)
          return Effect.gen(function*() {
            for (const chunk of chunks(hashes, CHUNK)) {
              yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${ns} AND owner = ${run} AND ${sql.in("hash", chunk)}`
            }
            if (isPg) yield* sql`SELECT pg_notify(${prefix + "events"}, ${ns})`
          }).pipe(Effect.mapError(fail(runDir)))
        })
    }

    // Leases are renewed a third of a lease apart, for every claim this process holds.
    yield* Effect.gen(function*() {
      for (const [run, byDir] of held) {
        let any = false
        for (const set of byDir.values()) if (set.size > 0) any = true
        if (!any) {
          held.delete(run)
          continue
        }
        yield* sql`UPDATE ${t.claims} SET expires = ${now} + ${leaseMs} WHERE owner = ${run}`
      }
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logWarning("SqlStore: renewing claims failed; they may be taken over", cause)
      ),
      Effect.schedule(Schedule.spaced(Duration.millis(Math.max(10, Math.floor(leaseMs / 3))))),
      Effect.interruptible,
      Effect.forkScoped
    )
    return claims
  })

/**
 * One pass over every key waited for: an entry answers its waiters; a claim that is gone,
 * expired or whose owner is gone ends their wait (they claim again).
 */
const checkWaitersOf = (
  c: Ctx,
  waiters: Map<string, Map<string, Array<Waiter>>>,
  lookupNow: LookupNow,
  ownerGone: OwnerGone
): Effect.Effect<void, SqlError> =>
  Effect.gen(function*() {
    const { isPg, now, sql, t } = c
    for (const [ns, byHash] of waiters) {
      const hashes = [...byHash.keys()]
      if (hashes.length === 0) {
        waiters.delete(ns)
        continue
      }
      const found = yield* lookupNow({ _tag: "RunDir", runDir: ns }, hashes)
      const open = new Map<string, { readonly owner_key: string | null; readonly expired: boolean }>()
      for (const chunk of chunks(hashes, CHUNK)) {
        const rows = yield* sql<
          { readonly hash: string; readonly owner_key: string | null; readonly expired: number | boolean }
        >`SELECT hash, owner_key, CASE WHEN expires < ${now} THEN 1 ELSE 0 END AS expired FROM ${t.claims} WHERE run_dir = ${ns} AND ${
          sql.in("hash", chunk)
        }`
        for (const r of rows) open.set(r.hash, { owner_key: r.owner_key, expired: Number(r.expired) === 1 })
      }
      const gone = new Map<string, boolean>()
      for (const hash of hashes) {
        const entry = found.get(hash)
        const claim = open.get(hash)
        let done: CheckpointEntry | undefined | null = null // null: still waiting
        if (entry !== undefined) done = entry
        else if (claim === undefined || claim.expired) done = undefined
        else if (claim.owner_key !== null && isPg) {
          let isGone = gone.get(claim.owner_key)
          if (isGone === undefined) gone.set(claim.owner_key, isGone = yield* ownerGone(claim.owner_key))
          if (isGone) done = undefined
        }
        if (done === null) continue
        const list = byHash.get(hash) ?? []
        byHash.delete(hash)
        for (const w of list) yield* Deferred.succeed(w, done)
      }
    }
  })

/** Waiting for claims held elsewhere: one poller for every key waited for, woken by notifications. */
const waitersPart = (
  c: Ctx,
  lookupNow: LookupNow,
  ownerGone: OwnerGone
): Effect.Effect<
  (ns: string, hash: string) => Effect.Effect<CheckpointEntry | undefined, CheckpointError>,
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const { isPg, leaseMs, prefix, sql } = c
    const scope = yield* Effect.scope

    const waiters = new Map<string, Map<string, Array<Waiter>>>() // runDir → hash → waiters
    let poller: Fiber.RuntimeFiber<unknown, unknown> | undefined
    const wake = yield* Deferred.make<void>().pipe(Effect.map((d) => ({ current: d })))

    const checkWaiters = checkWaitersOf(c, waiters, lookupNow, ownerGone)

    const listen: Stream.Stream<string, SqlError> | undefined = isPg &&
        typeof (sql as unknown as { listen?: unknown }).listen === "function"
      ? (sql as unknown as { listen: (channel: string) => Stream.Stream<string, SqlError> }).listen(prefix + "events")
      : undefined
    // LISTEN starts when a claim is first waited for (a store that only writes or reads never
    // listens), and the store's close lets a LISTEN still starting finish first: with
    // @effect/sql-pg 0.53, a listen interrupted while its connection is being opened leaves
    // that connection open (and the process running).
    let listening: Effect.Effect<void> | undefined
    const heard = yield* Deferred.make<void>()
    const startListening = Effect.suspend(() => {
      if (listen === undefined || listening !== undefined) return Effect.void
      listening = Effect.void
      return listen.pipe(
        Stream.runForEach(() =>
          Effect.zipRight(Deferred.succeed(heard, undefined), Deferred.succeed(wake.current, undefined))
        ),
        Effect.catchAllCause((cause) => Effect.logWarning("SqlStore: LISTEN failed; waiters poll instead", cause)),
        Effect.interruptible,
        // Not in the store's scope, which would interrupt it first: the finalizer below stops it.
        Effect.forkDaemon,
        Effect.map((fiber) => {
          // At the close: a notification of our own shows the LISTEN is up, then it stops.
          listening = Effect.zipRight(
            sql`SELECT pg_notify(${prefix + "events"}, ${"ping"})`.pipe(
              Effect.zipRight(Deferred.await(heard)),
              Effect.timeout(Duration.seconds(2)),
              Effect.ignore
            ),
            Fiber.interrupt(fiber)
          ).pipe(Effect.asVoid)
        }),
        Effect.asVoid
      )
    })
    yield* Effect.addFinalizer(() => Effect.suspend(() => listening ?? Effect.void))

    const pollLoop = Effect.gen(function*() {
      let delay = 5
      for (;;) {
        if (waiters.size === 0) {
          poller = undefined
          return
        }
        yield* checkWaiters.pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("SqlStore: checking claims failed; trying again", cause))
        )
        const signal = wake.current
        // PostgreSQL: woken by notifications (and at least every third of a lease); SQLite:
        // polls with backoff, at most 100 ms apart.
        const wait = listen !== undefined ? Math.max(50, Math.floor(leaseMs / 3)) : delay
        yield* Effect.raceFirst(Deferred.await(signal), Effect.sleep(Duration.millis(wait)))
        if (yield* Deferred.isDone(signal)) wake.current = yield* Deferred.make<void>()
        delay = Math.min(100, delay * 2)
      }
    })

    const waitFor = (ns: string, hash: string): Effect.Effect<CheckpointEntry | undefined, CheckpointError> =>
      Effect.gen(function*() {
        const waiter: Waiter = yield* Deferred.make<CheckpointEntry | undefined, CheckpointError>()
        let byHash = waiters.get(ns)
        if (byHash === undefined) waiters.set(ns, byHash = new Map())
        const list = byHash.get(hash) ?? []
        list.push(waiter)
        byHash.set(hash, list)
        yield* startListening
        if (poller === undefined) poller = yield* Effect.forkIn(pollLoop, scope)
        return yield* Deferred.await(waiter).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              const l = waiters.get(ns)?.get(hash)
              if (l !== undefined) {
                const i = l.indexOf(waiter)
                if (i >= 0) l.splice(i, 1)
              }
            })
          )
        )
      })
    return waitFor
  })

export const make = (
  sql: SqlClient.SqlClient,
  options: SqlStoreOptions = {}
): Effect.Effect<CheckpointStoreService, SqlError, Scope.Scope> =>
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

    yield* createTables(sql, prefix, isPg)

    const fail = (path: string) => (cause: unknown) =>
      new CheckpointError({ path, reason: `The SQL store failed: ${reasonOf(cause)}`, cause })
    const c: Ctx = { sql, prefix, isPg, leaseMs, t, now, ownerKey: randomKey(), fail }
    const { lookup, lookupNow } = lookupsPart(c)
    const ownerGone = ownerGoneOf(c)
    const waitFor = yield* waitersPart(c, lookupNow, ownerGone)
    const claims = yield* claimsPart(c, lookupNow, ownerGone, waitFor)
    const store: CheckpointStoreService = { ...entriesPart(c), runs: runsPart(c), lookup, claims }
    return store
  })

/** Creates the tables when they are missing (idempotent, safe when many processes start at once). */
const createTables = (sql: SqlClient.SqlClient, prefix: string, isPg: boolean): Effect.Effect<void, SqlError> => {
  const id = (name: string) => sql(prefix + name)
  const seq = isPg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
  const big = isPg ? "BIGINT" : "INTEGER"
  const ddl = Effect.gen(function*() {
    // PostgreSQL: one process at a time creates them (CREATE TABLE IF NOT EXISTS races on its catalog).
    if (isPg) yield* sql`SELECT pg_advisory_xact_lock(${7_336_147_090_201})`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("meta")} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("runs")} (run_dir TEXT NOT NULL, n INTEGER NOT NULL, started ${
      sql.literal(big)
    } NOT NULL, PRIMARY KEY (run_dir, n))`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("checkpoints")} (dir TEXT PRIMARY KEY, run_dir TEXT, run INTEGER)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("entries")} (seq ${
      sql.literal(seq)
    }, dir TEXT NOT NULL, run_dir TEXT, run INTEGER, hash TEXT NOT NULL, app TEXT NOT NULL, version TEXT, input TEXT NOT NULL, result TEXT NOT NULL, time TEXT NOT NULL)`
    // Schema version 2: tombstones (added to the tables of version 1 in place).
    if (isPg) yield* sql`ALTER TABLE ${id("entries")} ADD COLUMN IF NOT EXISTS deleted INTEGER`
    else {
      const columns = yield* sql<{ readonly name: string }>`SELECT name FROM pragma_table_info(${prefix + "entries"})`
      if (!columns.some((c) => c.name === "deleted")) {
        yield* sql`ALTER TABLE ${id("entries")} ADD COLUMN deleted INTEGER`
      }
    }
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_dir")} ON ${id("entries")} (dir, seq)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_key")} ON ${id("entries")} (run_dir, hash)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_hash")} ON ${id("entries")} (hash, dir)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${
      id("claims")
    } (run_dir TEXT NOT NULL, hash TEXT NOT NULL, owner TEXT NOT NULL, owner_key TEXT, expires ${
      sql.literal(big)
    } NOT NULL, PRIMARY KEY (run_dir, hash))`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("claims_owner")} ON ${id("claims")} (owner)`
    yield* sql`INSERT INTO ${id("meta")} (key, value) VALUES ('schema', ${
      String(SCHEMA_VERSION)
    }) ON CONFLICT (key) DO NOTHING`
    yield* sql`UPDATE ${id("meta")} SET value = ${String(SCHEMA_VERSION)} WHERE key = 'schema' AND value = '1'`
    const rows = yield* sql<{ readonly value: string }>`SELECT value FROM ${id("meta")} WHERE key = 'schema'`
    const version = Number(rows[0]?.value)
    if (version > SCHEMA_VERSION) {
      return yield* Effect.dieMessage(
        `SqlStore: the tables ${prefix}* have schema version ${version}, newer than this library's (${SCHEMA_VERSION})`
      )
    }
  })
  return sql.withTransaction(ddl).pipe(
    // SQLite: a process that starts while another creates them may find the database locked.
    Effect.retry({ times: 20, schedule: Schedule.spaced(Duration.millis(50)) })
  )
}
