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
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
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
import { OneShot } from "./oneShot.ts"
import { normalRunDir, runOfCheckpointDir, runPath } from "./runNames.ts"
import { utf8ByteLength } from "./utf8.ts"

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
  readonly deleted?: number | boolean | null | undefined
}

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/
// Rows per INSERT: 9 parameters each, well under SQLite's and PostgreSQL's limits.
const CHUNK = 400
// PostgreSQL: a pass of up to this many entries is one statement (9 parameters each).
const PG_ONE_STATEMENT = 2000
// Hashes per notification: 100 of 64 characters, well under PostgreSQL's 8,000-byte payload.
const NOTIFY_CHUNK = 100
// The size of a notification (PostgreSQL takes payloads shorter than 8,000 bytes).
const PAYLOAD_BYTES = 7900
// Claims read for more hashes than this: every claim of the runDir is read instead of a long IN list.
const SCAN_FROM = 64
// What notifications said lately, for this many keys at most (the oldest are dropped; an
// entry kept is one short enough to be sent, under 8 kB).
const NOTES_MAX = 4096

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Whether a row is a tombstone (DESIGN §4), which invalidates its key. */
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

/** A claim as read: its owner (the run), and whether its holder is gone (out of lease, or dead). */
interface Claim {
  readonly owner: string
  readonly gone: boolean
}
type ClaimRow = { readonly hash: string; readonly owner: string; readonly gone: number | string }
/** A row of `<prefix>claim_v3` (PostgreSQL): state 0 a claim lost, 1 an entry answers the key, 2 won. */
type ClaimFnRow = {
  readonly r_hash: string
  readonly r_state: number | string
  readonly r_owner: string | null
  readonly r_gone: number | string | null
  readonly r_run: number | string | null
  readonly r_seq: number | string | null
  readonly r_app: string | null
  readonly r_version: string | null
  readonly r_input: string | null
  readonly r_result: string | null
  readonly r_time: string | null
}
const claimOfRow = (r: ClaimRow): Claim => ({ owner: r.owner, gone: Number(r.gone) === 1 })

/** What a notification said of a key: claimed (`c`), given up (`r`) or written (`w`, with its entry). */
interface Note {
  readonly kind: "c" | "r" | "w"
  readonly at: number
  readonly entry: CheckpointEntry | undefined
}

/** Whether a value parsed from a notification is an entry. */
const isEntry = (x: unknown): x is CheckpointEntry => {
  if (typeof x !== "object" || x === null) return false
  const e = x as Record<string, unknown>
  return typeof e.hash === "string" && typeof e.app === "string" &&
    (e.version === null || typeof e.version === "string") &&
    "input" in e && "result" in e && typeof e.time === "string"
}

// The store's own timing (leases and their renewal, polls, retries) follows the real clock,
// whatever clock the caller's fiber has (a TestClock in tests): leases are measured by the
// database's clock, and other processes do not wait for a test to advance time.
const liveClock = Clock.make()
const realTime = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withClock(effect, liveClock)

/** One waiter for a key under claim: resumed with the entry, or `undefined` when the claim ended without one. */
type Waiter = OneShot<CheckpointEntry | undefined, CheckpointError>

/** The SQL store over `sql`. */
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

    // Every key waited for is checked at least this often (PostgreSQL, where notifications
    // end most waits): a holder gone or out of lease is seen within it.
    const FULL_MS = Math.max(10, Math.min(1000, Math.floor(leaseMs / 3)))

    yield* realTime(createTables(sql, prefix, isPg))

    const fail = (path: string) => (cause: unknown) =>
      new CheckpointError({ path, reason: `The SQL store failed: ${reasonOf(cause)}`, cause })

    // ---- this process, and what other processes said lately -----------------------------

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
    const holding = (run: string, runDir: string) => {
      let byDir = held.get(run)
      if (byDir === undefined) held.set(run, byDir = new Map())
      let set = byDir.get(runDir)
      if (set === undefined) byDir.set(runDir, set = new Set())
      return set
    }

    // PostgreSQL: every process that claims, writes an entry under a claim, or gives a claim
    // up tells the others on the channel `<prefix>events` (NOTIFY, delivered when its
    // transaction commits). A notification is `<owner key>\n<runDir as JSON>\n<kind>\n<body>`:
    // `c` claimed (hashes, comma separated), `r` given up without an entry (hashes), `w`
    // written (a JSON array of the entries, or of the hash alone for an entry too long to
    // send). What they said is kept for a while (`notes`, by runDir NUL hash), so that a key
    // known to be claimed elsewhere needs no statement to be found held, and one written
    // elsewhere is served from its notification.
    const channel = prefix + "events"
    const notes = new Map<string, Note>()
    const noteKey = (ns: string, hash: string) => ns + "\u0000" + hash
    const setNote = (key: string, note: Note) => {
      notes.delete(key)
      notes.set(key, note)
      if (notes.size > NOTES_MAX) notes.delete(notes.keys().next().value!)
    }
    const head = (ns: string, kind: "c" | "r" | "w") => `${ownerKey}\n${JSON.stringify(ns)}\n${kind}\n`

    /** The notifications that `hashes` under `ns` were given up (`r`) or claimed (`c`). */
    const hashPayloads = (ns: string, kind: "c" | "r", hashes: ReadonlyArray<string>): Array<string> =>
      chunks(hashes, NOTIFY_CHUNK).map((chunk) => head(ns, kind) + chunk.join(","))

    /** The notifications that `entries` were written under `ns`: as many entries to one as fit. */
    const writtenPayloads = (ns: string, entries: ReadonlyArray<EncodedEntry>): Array<string> => {
      const h = head(ns, "w")
      const budget = PAYLOAD_BYTES - utf8ByteLength(h) - 2
      const out: Array<string> = []
      let parts: Array<string> = []
      let size = 0
      for (const e of entries) {
        let part = `{"hash":${JSON.stringify(e.hash)},"app":${JSON.stringify(e.app)},"version":${
          JSON.stringify(e.version)
        },"input":${e.input},"result":${e.result},"time":${JSON.stringify(e.time)}}`
        let n = part.length > budget ? budget + 1 : utf8ByteLength(part)
        if (n > budget) {
          part = JSON.stringify(e.hash)
          n = part.length
        }
        if (parts.length > 0 && size + n + 1 > budget) {
          out.push(h + "[" + parts.join(",") + "]")
          parts = []
          size = 0
        }
        parts.push(part)
        size += n + 1
      }
      if (parts.length > 0) out.push(h + "[" + parts.join(",") + "]")
      return out
    }

    /** Sends notifications (PostgreSQL; in a transaction, delivered at its commit). */
    const notify = (payloads: ReadonlyArray<string>): Effect.Effect<void, SqlError> =>
      !isPg || payloads.length === 0
        ? Effect.void
        : Effect.forEach(payloads, (p) => sql`SELECT pg_notify(${channel}, ${p})`, { discard: true })

    // ---- checkpoints and entries ------------------------------------------------------

    // Dirs whose checkpoint row is written (a write to them needs no insert of it).
    const knownDirs = new Set<string>()
    // SQLite: the connection's `synchronous` as this store last set it (see `durability`).
    let synchronous: "NORMAL" | "FULL" | undefined

    const entryRows = (dir: string, run: ReturnType<typeof runOfCheckpointDir>, entries: ReadonlyArray<EncodedEntry>) =>
      entries.map((e) => ({
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
      }))

    /**
     * Writes `entries` to `dir` as one transaction: the checkpoint's row (the first time), the
     * entries, and the end of the run's claims on those keys; with PostgreSQL the entries
     * written under this process's claims are notified. PostgreSQL, up to `PG_ONE_STATEMENT`
     * entries: all of it in one statement (one round trip: a pass is one group commit).
     */
    const writeEntries = (dir: string, entries: ReadonlyArray<EncodedEntry>): Effect.Effect<void, SqlError> =>
      Effect.suspend(() => {
        const run = runOfCheckpointDir(dir)
        const mine = run === undefined ? undefined : held.get(run.run)?.get(run.runDir)
        const claimed = mine === undefined || mine.size === 0 ?
          [] :
          entries.filter((e) => e.deleted !== true && mine.has(e.hash))
        const payloads = isPg && run !== undefined && claimed.length > 0 ? writtenPayloads(run.runDir, claimed) : []
        // Tombstones: the others forget what they heard of those keys (an entry heard of is
        // served from its notification), as for a claim given up.
        const tombstones = entries.filter((e) => e.deleted === true).map((e) => e.hash)
        if (isPg && run !== undefined && tombstones.length > 0) {
          for (const p of hashPayloads(run.runDir, "r", tombstones)) payloads.push(p)
        }
        const checkpointRow = sql`INSERT INTO ${t.checkpoints} (dir, run_dir, run) VALUES (${dir}, ${
          run?.runDir ?? null
        }, ${run?.n ?? null}) ON CONFLICT (dir) DO NOTHING`
        const known = knownDirs.has(dir)
        let write: Effect.Effect<unknown, SqlError>
        if (isPg && entries.length > 0 && entries.length <= PG_ONE_STATEMENT) {
          // WITH … INSERT, DELETE: data-modifying parts run once, to completion, whether or
          // not the query reads them; the notifications in its select list go at its commit.
          const parts = [
            ...(known ? [] : [sql`cp AS (${checkpointRow})`]),
            sql`e AS (INSERT INTO ${t.entries} ${sql.insert(entryRows(dir, run, entries))} RETURNING hash)`,
            ...(run === undefined
              ? []
              : [
                sql`d AS (DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND owner = ${run.run} AND hash IN (SELECT hash FROM e))`
              ])
          ]
          const select = payloads.length === 0
            ? sql`SELECT 1`
            : sql`SELECT ${sql.csv(payloads.map((p) => sql`pg_notify(${channel}, ${p})`))}`
          write = sql`WITH ${sql.csv(parts)} ${select}`
        } else {
          write = sql.withTransaction(Effect.gen(function*() {
            if (!known) yield* checkpointRow
            for (const chunk of chunks(entries, CHUNK)) {
              yield* sql`INSERT INTO ${t.entries} ${sql.insert(entryRows(dir, run, chunk))}`
            }
            // Entries written end their run's claims on those keys (in the same transaction).
            if (run !== undefined && entries.length > 0) {
              for (const chunk of chunks([...new Set(entries.map((e) => e.hash))], CHUNK)) {
                yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND owner = ${run.run} AND ${
                  sql.in("hash", chunk)
                }`
              }
            }
            yield* notify(payloads)
          }))
        }
        return Effect.tap(write, () =>
          Effect.sync(() => {
            knownDirs.add(dir)
            if (mine !== undefined) { for (const e of entries) mine.delete(e.hash) }
          }))
      })

    const appendEncoded = (
      dir: string,
      entries: ReadonlyArray<EncodedEntry>,
      options?: AppendOptions
    ): Effect.Effect<void, CheckpointError> =>
      Effect.suspend(() => {
        // SQLite: durability "none" (the default) is `synchronous = NORMAL` (in WAL mode a
        // commit survives a crash of the process, not a power cut), "fsync" is FULL. A
        // setting of the connection, set when it changes (outside any transaction).
        const wanted = options?.durability === "fsync" ? "FULL" : "NORMAL"
        const setSync = isPg || synchronous === wanted ?
          Effect.void :
          sql.unsafe(`PRAGMA synchronous = ${wanted}`).pipe(
            Effect.tap(() => Effect.sync(() => (synchronous = wanted))),
            Effect.catchAll(() => Effect.void)
          )
        // The write yields first: SQLite's client runs statements synchronously, so a pass
        // that wrote at once would end before any other call had its entry queued, and each
        // entry would be a pass (and a commit) of its own; after a yield, the calls that run
        // now queue theirs, and the next pass takes them all (group commit).
        return Effect.zipRight(setSync, Effect.zipRight(Effect.yieldNow(), writeEntries(dir, entries))).pipe(
          Effect.mapError(fail(dir))
        )
      })

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

    // ---- runs -------------------------------------------------------------------------

    const runs: StoreRuns = {
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
            realTime,
            Effect.map((rows) => runPath(key, Number(rows[0]!.n))),
            Effect.mapError(fail(runDir))
          )
        })
    }

    // ---- lookups ----------------------------------------------------------------------

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

    // ---- claims -----------------------------------------------------------------------

    // Whether a claim's holder is gone, per row of the claims table, in the statement that
    // reads it: its lease ran out, or (PostgreSQL) its liveness lock is free. The lock is tried
    // with `pg_try_advisory_xact_lock`, which lets it go when the statement ends.
    const gone = isPg
      ? sql`CASE WHEN expires < ${now} THEN 1 WHEN owner_key IS NULL OR owner_key = ${ownerKey} THEN 0 WHEN pg_try_advisory_xact_lock(CAST(owner_key AS bigint)) THEN 1 ELSE 0 END`
      : sql`CASE WHEN expires < ${now} THEN 1 ELSE 0 END`

    /**
     * The claims under `ns` that exist now on those of `hashes` (by hash: owner, and whether the
     * holder is gone). Many hashes: every claim of `ns` is read (in `task_exit` mode a few per
     * process) rather than a long `IN` list.
     */
    const claimsOf = (ns: string, hashes: ReadonlyArray<string>): Effect.Effect<Map<string, Claim>, SqlError> =>
      Effect.gen(function*() {
        const out = new Map<string, Claim>()
        const add = (rows: ReadonlyArray<ClaimRow>, wanted?: ReadonlySet<string>) => {
          for (const r of rows) if (wanted === undefined || wanted.has(r.hash)) out.set(r.hash, claimOfRow(r))
        }
        if (hashes.length > SCAN_FROM) {
          add(
            yield* sql<ClaimRow>`SELECT hash, owner, ${gone} AS gone FROM ${t.claims} WHERE run_dir = ${ns}`,
            new Set(hashes)
          )
        } else {
          for (const chunk of chunks(hashes, CHUNK)) {
            add(
              yield* sql<ClaimRow>`SELECT hash, owner, ${gone} AS gone FROM ${t.claims} WHERE run_dir = ${ns} AND ${
                sql.in("hash", chunk)
              }`
            )
          }
        }
        return out
      })

    /** What one claim statement said. */
    interface Inserted {
      /** The claims won, their keys without an entry. */
      readonly won: Set<string>
      /** The keys an entry answers (PostgreSQL: found before the claim, or after it won: given back). */
      readonly answered: Map<string, CheckpointEntry>
      /** The claims of the keys lost (a key in neither was given up meanwhile). */
      readonly current: Map<string, Claim>
    }

    /**
     * Inserts claims of `run` on `hashes` (`ON CONFLICT DO NOTHING`: the rows inserted are the
     * claims won). PostgreSQL: one call of the store's function (`<prefix>claim_v3`, see
     * `claimFunction`) per chunk, which looks the keys up first and claims only those without
     * an entry, reads the others' claims and, for the keys won, their entries (statements of
     * their own, after the insert), gives back those answered and notifies the others won.
     * SQLite: the insert, then a read of the claims lost; the caller looks the keys won up.
     */
    const insertClaims = (ns: string, run: string, hashes: ReadonlyArray<string>): Effect.Effect<Inserted, SqlError> =>
      Effect.gen(function*() {
        const out: Inserted = { won: new Set(), answered: new Map(), current: new Map() }
        for (const chunk of chunks(hashes, CHUNK)) {
          if (isPg) {
            // (Notified when the chunk's hashes fit one notification; claims known elsewhere
            // only save the others a statement.)
            const note = chunk.length <= NOTIFY_CHUNK ? head(ns, "c") : null
            const rows = yield* sql<ClaimFnRow>`SELECT * FROM ${sql(prefix + "claim_v3")}(${ns}, ${[
              ...chunk
            ]}::text[], ${run}, ${ownerKey}, ${leaseMs}::bigint, ${channel}, ${note})`
            for (const r of rows) {
              const state = Number(r.r_state)
              if (state === 0) out.current.set(r.r_hash, { owner: r.r_owner!, gone: Number(r.r_gone) === 1 })
              else if (state === 2) out.won.add(r.r_hash)
              else {
                out.answered.set(
                  r.r_hash,
                  entryOfRow({
                    dir: "",
                    run: r.r_run,
                    seq: r.r_seq ?? 0,
                    hash: r.r_hash,
                    app: r.r_app!,
                    version: r.r_version,
                    input: r.r_input!,
                    result: r.r_result!,
                    time: r.r_time!
                  })
                )
              }
            }
            continue
          }
          const values = sql.csv(chunk.map((h) => sql`(${ns}, ${h}, ${run}, ${ownerKey}, ${now} + ${leaseMs})`))
          const rows = yield* sql<
            { readonly hash: string }
          >`INSERT INTO ${t.claims} (run_dir, hash, owner, owner_key, expires) VALUES ${values} ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash`
          for (const r of rows) out.won.add(r.hash)
        }
        if (!isPg) {
          const lost = hashes.filter((h) => !out.won.has(h))
          if (lost.length > 0) { for (const [h, c] of yield* claimsOf(ns, lost)) out.current.set(h, c) }
        }
        return out
      })

    /**
     * Claims `hashes` under `ns` for `run`, in as few statements as the batch allows. A key
     * another process was lately heard to have written is answered by that entry, one heard to
     * be claimed is held; the others are claimed at once (`insertClaims`; PostgreSQL looks
     * them up first and claims only those without an entry). A key won is looked up once more
     * after the claim is in (an entry written before the claim was won answers it, and the
     * claim is given back): a statement of its own, since the insert may have waited for that
     * writer's commit, which its own snapshot does not see. A claim lost whose holder is gone
     * is taken over.
     */
    const claimMany = (
      ns: string,
      run: string,
      hashes: ReadonlyArray<string>
    ): Effect.Effect<Map<string, "won" | "held" | CheckpointEntry>, SqlError> =>
      Effect.gen(function*() {
        const out = new Map<string, "won" | "held" | CheckpointEntry>()
        let todo: Array<string> = []
        const at = Date.now()
        for (const hash of new Set(hashes)) {
          const key = noteKey(ns, hash)
          const note = notes.get(key)
          if (note?.entry !== undefined) out.set(hash, note.entry)
          else if (note?.kind === "c" && at - note.at < FULL_MS) {
            // Heard once: the next claim of this key asks the database.
            notes.delete(key)
            out.set(hash, "held")
          } else {
            // What was heard of it is older than what the database is about to say.
            notes.delete(key)
            todo.push(hash)
          }
        }
        yield* startListening
        if (todo.length > 0 && liveness !== undefined) yield* liveness
        const mine = holding(run, ns)
        for (let attempt = 0; todo.length > 0 && attempt < 4; attempt++) {
          const { answered, current, won } = yield* insertClaims(ns, run, todo)
          // Won by this statement and looked up already (PostgreSQL), or to look up now.
          const unchecked = new Set(isPg ? [] : won)
          const again: Array<string> = []
          for (const hash of todo) {
            const entry = answered.get(hash)
            if (entry !== undefined) {
              out.set(hash, entry)
              continue
            }
            if (won.has(hash)) continue
            const claim = current.get(hash)
            // Given up between the insert and the read: claimed again.
            if (claim === undefined) again.push(hash)
            else if (!claim.gone) out.set(hash, "held")
            else {
              // Its holder is gone: taken over, unless another process took it first.
              const taken = yield* sql<
                { readonly hash: string }
              >`UPDATE ${t.claims} SET owner = ${run}, owner_key = ${ownerKey}, expires = ${now} + ${leaseMs} WHERE run_dir = ${ns} AND hash = ${hash} AND owner = ${claim.owner} RETURNING hash`
              if (taken.length > 0) {
                won.add(hash)
                unchecked.add(hash)
              } else out.set(hash, "held")
            }
          }
          const found = unchecked.size === 0
            ? new Map<string, CheckpointEntry>()
            : yield* lookupNow({ _tag: "RunDir", runDir: ns }, [...unchecked])
          if (found.size > 0) yield* giveUp(ns, run, [...found.keys()])
          for (const hash of won) {
            const entry = found.get(hash)
            if (entry !== undefined) out.set(hash, entry)
            else {
              mine.add(hash)
              out.set(hash, "won")
            }
          }
          todo = again
        }
        // Given up and claimed again by others, over and over: the wait sorts it out.
        for (const hash of todo) out.set(hash, "held")
        return out
      })

    /** Deletes claims of `run`, with no entry written, and notifies those it had. */
    const giveUp = (ns: string, run: string, hashes: ReadonlyArray<string>): Effect.Effect<void, SqlError> =>
      Effect.gen(function*() {
        const set = held.get(run)?.get(ns)
        for (const h of hashes) set?.delete(h)
        const released: Array<string> = []
        for (const chunk of chunks(hashes, CHUNK)) {
          const rows = yield* sql<
            { readonly hash: string }
          >`DELETE FROM ${t.claims} WHERE run_dir = ${ns} AND owner = ${run} AND ${
            sql.in("hash", chunk)
          } RETURNING hash`
          for (const r of rows) released.push(r.hash)
        }
        yield* notify(hashPayloads(ns, "r", released))
      })

    /** A claim asked for and not answered yet. */
    interface ClaimAsk {
      readonly ns: string
      readonly hash: string
      readonly run: string
      readonly answer: OneShot<"won" | "held" | CheckpointEntry, CheckpointError>
    }
    // The claims asked for at one moment go in one batch (as lookups do): gathered until the
    // fibers that run now have had their turn, then claimed together.
    let claimBatch: Array<ClaimAsk> | undefined

    const flushClaims = Effect.suspend(() => {
      const batch = claimBatch ?? []
      claimBatch = undefined
      const groups = new Map<string, Array<ClaimAsk>>()
      for (const ask of batch) {
        const key = JSON.stringify([ask.ns, ask.run])
        const group = groups.get(key)
        if (group === undefined) groups.set(key, [ask])
        else group.push(ask)
      }
      return Effect.forEach(groups.values(), (group) =>
        Effect.exit(claimMany(group[0]!.ns, group[0]!.run, group.map((a) => a.hash))).pipe(
          Effect.map((exit) => {
            for (const ask of group) {
              ask.answer.done(
                Exit.isSuccess(exit)
                  ? Exit.succeed(exit.value.get(ask.hash) ?? "held")
                  : Exit.failCause(Cause.map(exit.cause, fail(ask.ns)))
              )
            }
          })
        ), { concurrency: "unbounded", discard: true })
    })

    const claims: StoreClaims = {
      claim: (runDir, hash, run) =>
        Effect.suspend(() => {
          const ask: ClaimAsk = { ns: normalRunDir(runDir), hash, run, answer: new OneShot() }
          let start: Effect.Effect<unknown> = Effect.void
          if (claimBatch === undefined) {
            claimBatch = []
            start = Effect.forkDaemon(Effect.zipRight(Effect.yieldNow(), flushClaims))
          }
          claimBatch.push(ask)
          return Effect.zipRight(start, ask.answer.await)
        }),
      await: (runDir, hash) =>
        waitFor(normalRunDir(runDir), hash),
      release: (runDir, hashes, run) => giveUp(normalRunDir(runDir), run, hashes).pipe(Effect.mapError(fail(runDir)))
    }

    // Leases are renewed a third of a lease apart, for every run with claims held here.
    yield* Effect.gen(function*() {
      for (const [run, byDir] of held) {
        for (const [ns, set] of byDir) if (set.size === 0) byDir.delete(ns)
        if (byDir.size === 0) {
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
      realTime,
      Effect.interruptible,
      Effect.forkScoped
    )

    // ---- waiting for claims held elsewhere -------------------------------------------
    //
    // PostgreSQL: a notification that a key was written (with its entry) or given up ends the
    // waits for it at once; one that carries only the hash (an entry too long to send) has
    // the poller look the key up. Every key waited for is checked a second apart (or a third
    // of a lease, when shorter): a holder gone or out of lease ends the wait. SQLite, or
    // without notifications: every key waited for is checked at each poll, 5 ms apart at
    // first, backing off to 100 ms while nothing comes.

    const waiters = new Map<string, Map<string, Array<Waiter>>>() // runDir → hash → waiters
    const dirty = new Map<string, Set<string>>() // runDir → hashes to look up at the next turn
    let polling = false
    let wake = Deferred.unsafeMake<void>(FiberId.none)
    // (Set below, with LISTEN.)
    let isListening = (): boolean => false
    let heardHello = (): void => {}

    /**
     * Ends the waits for `hash` with `value`: how many ended. A wait that ends without an entry
     * drops what was heard of the key, so that the claim that follows asks the database (a
     * claim heard of lately may be the one found gone).
     */
    const resolve = (ns: string, hash: string, value: CheckpointEntry | undefined): number => {
      const byHash = waiters.get(ns)
      const list = byHash?.get(hash)
      if (byHash === undefined || list === undefined) return 0
      if (value === undefined) notes.delete(noteKey(ns, hash))
      byHash.delete(hash)
      if (byHash.size === 0) waiters.delete(ns)
      for (const w of list) w.done(Exit.succeed(value))
      return list.length
    }

    // The waits for `hashes` under `ns` whose claim is gone (given up, or ended with its entry)
    // or whose holder is gone end: with the entry when there is one, else `undefined` (the
    // caller claims again). Claims are read before entries (an entry and the end of its claim
    // are one transaction, so a claim seen gone has its entry seen).
    const checkClaims = (ns: string, hashes: ReadonlyArray<string>): Effect.Effect<number, SqlError> =>
      Effect.gen(function*() {
        if (hashes.length === 0) return 0
        const current = yield* claimsOf(ns, hashes)
        const ended = hashes.filter((h) => {
          const claim = current.get(h)
          return claim === undefined || claim.gone
        })
        if (ended.length === 0) return 0
        const found = yield* lookupNow({ _tag: "RunDir", runDir: ns }, ended)
        let n = 0
        for (const hash of ended) n += resolve(ns, hash, found.get(hash))
        return n
      })

    // Hashes notified as written without their entry: looked up (and served); any not found
    // is checked as above.
    const checkWritten = (ns: string, hashes: ReadonlyArray<string>): Effect.Effect<number, SqlError> =>
      Effect.gen(function*() {
        if (hashes.length === 0) return 0
        const found = yield* lookupNow({ _tag: "RunDir", runDir: ns }, hashes)
        let n = 0
        for (const [hash, entry] of found) n += resolve(ns, hash, entry)
        return n + (yield* checkClaims(ns, hashes.filter((h) => !found.has(h))))
      })

    const pollLoop = Effect.gen(function*() {
      let delay = 5
      let lastFull = Date.now()
      for (;;) {
        if (waiters.size === 0) {
          polling = false
          dirty.clear()
          return
        }
        const listening = isListening()
        const full = !listening || Date.now() - lastFull >= FULL_MS
        if (full) lastFull = Date.now()
        const written = [...dirty]
        dirty.clear()
        // Notifications from here on wake the next wait.
        wake = Deferred.unsafeMake<void>(FiberId.none)
        const turn = Effect.gen(function*() {
          let n = 0
          for (const [ns, hashes] of written) {
            const byHash = waiters.get(ns)
            n += yield* checkWritten(ns, [...hashes].filter((h) => byHash?.has(h) === true))
          }
          if (full) { for (const [ns, byHash] of [...waiters]) n += yield* checkClaims(ns, [...byHash.keys()]) }
          return n
        })
        const resolved = yield* turn.pipe(
          Effect.catchAllCause((cause) =>
            Effect.as(Effect.logWarning("SqlStore: checking claims failed; trying again", cause), 0)
          )
        )
        if (listening) {
          if (dirty.size > 0) continue
          const left = Math.max(0, FULL_MS - (Date.now() - lastFull))
          yield* Effect.raceFirst(Deferred.await(wake), Effect.sleep(Duration.millis(left)))
        } else {
          delay = resolved > 0 ? 5 : Math.min(100, delay * 2)
          yield* Effect.sleep(Duration.millis(delay))
        }
      }
    })

    /** What a notification says (see `channel` above): notes kept, waits ended or looked into. */
    const onNotification = (payload: string) => {
      const a = payload.indexOf("\n")
      const b = payload.indexOf("\n", a + 1)
      const c = payload.indexOf("\n", b + 1)
      if (a < 0 || b < 0 || c < 0) return
      const kind = payload.slice(b + 1, c)
      if (kind === "h") {
        if (payload.slice(0, a) === ownerKey) heardHello()
        return
      }
      let ns: unknown
      try {
        ns = JSON.parse(payload.slice(a + 1, b))
      } catch {
        return
      }
      if (typeof ns !== "string") return
      // Its own notifications tell this process only about waits of its own kernels.
      if (payload.slice(0, a) === ownerKey && !waiters.has(ns)) return
      const body = payload.slice(c + 1)
      const at = Date.now()
      if (kind === "c" || kind === "r") {
        for (const hash of body.split(",")) {
          setNote(noteKey(ns, hash), { kind, at, entry: undefined })
          if (kind === "r") resolve(ns, hash, undefined)
        }
        return
      }
      if (kind !== "w") return
      let items: unknown
      try {
        items = JSON.parse(body)
      } catch {
        return
      }
      if (!Array.isArray(items)) return
      let look = false
      for (const item of items) {
        if (typeof item === "string") {
          notes.delete(noteKey(ns, item))
          if (waiters.get(ns)?.has(item) === true) {
            let set = dirty.get(ns)
            if (set === undefined) dirty.set(ns, set = new Set())
            set.add(item)
            look = true
          }
        } else if (isEntry(item)) {
          setNote(noteKey(ns, item.hash), { kind: "w", at, entry: item })
          resolve(ns, item.hash, item)
        }
      }
      if (look) Deferred.unsafeDone(wake, Exit.void)
    }

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
    isListening = () => listenState === "on" && Date.now() - lastHello < 3 * FULL_MS
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
    heardHello = () => {
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

    const waitFor = (ns: string, hash: string): Effect.Effect<CheckpointEntry | undefined, CheckpointError> =>
      Effect.suspend(() => {
        // Written, or given up, since the claim found it held (what was heard before that
        // was dropped then): no need to wait.
        const note = notes.get(noteKey(ns, hash))
        if (note?.entry !== undefined) return Effect.succeed(note.entry)
        if (note?.kind === "r") {
          notes.delete(noteKey(ns, hash))
          return Effect.succeed(undefined)
        }
        const waiter: Waiter = new OneShot()
        let byHash = waiters.get(ns)
        if (byHash === undefined) waiters.set(ns, byHash = new Map())
        const list = byHash.get(hash)
        if (list === undefined) byHash.set(hash, [waiter])
        else list.push(waiter)
        let start: Effect.Effect<unknown> = Effect.void
        if (!polling) {
          polling = true
          start = Effect.forkIn(realTime(pollLoop), scope)
        }
        return Effect.zipRight(
          start,
          waiter.await.pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                const byHash = waiters.get(ns)
                const l = byHash?.get(hash)
                if (byHash === undefined || l === undefined) return
                const i = l.indexOf(waiter)
                if (i >= 0) l.splice(i, 1)
                if (l.length === 0) byHash.delete(hash)
                if (byHash.size === 0) waiters.delete(ns)
              })
            )
          )
        )
      })

    // PostgreSQL: the connections of the liveness lock and of LISTEN are opened now, in the
    // background (a connection costs a password exchange and round trips), so that the first
    // claims do not wait for them. A close lets the lock's finish first, as LISTEN's: a
    // connection interrupted while it is being made is left open.
    if (liveness !== undefined) {
      const warm = yield* Effect.forkIn(Effect.ignore(liveness), scope)
      yield* Effect.addFinalizer(() =>
        realTime(Effect.ignore(Effect.timeout(Effect.interruptible(Fiber.await(warm)), Duration.seconds(5))))
      )
      yield* startListening
    }

    const store: CheckpointStoreService = {
      append,
      appendEncoded,
      load,
      exists,
      runs,
      lookup,
      claims
    }
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
    // Schema version 2: tombstones (the column added to the tables of version 1 in place).
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
    if (isPg) {
      const fn = yield* sql`SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = ${
        prefix + "claim_v3"
      } AND n.nspname = current_schema()`
      if (fn.length === 0) yield* sql.unsafe(claimFunction(prefix))
    }
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

/**
 * PostgreSQL: the function that claims a batch in one round trip (`claimMany`). It looks the
 * keys up first (those an entry answers are not claimed), claims the others, and looks up the
 * keys won again. Its statements each see the database as it is when they run (a volatile
 * function under READ COMMITTED), so that second lookup, which follows the insert, sees an
 * entry whose writer's commit the insert waited for (the writer ends its claim in the
 * transaction that writes the entry). It returns, per key: state 0 and the claim of a key
 * lost (`r_gone`: out of lease, or its holder's liveness lock free); state 1 and the newest
 * entry of a key that has one (a claim won on it is given back); state 2 for the other keys
 * won, which it notifies (`p_note` followed by the hashes, when `p_note` is not null). A key
 * in none was given up meanwhile. A tombstone answers nothing (its key is claimed as if it had no entry). Versioned by its
 * name: a change makes `claim_v4`.
 */
const claimFunction = (prefix: string): string => {
  const q = (name: string) => `"${prefix}${name}"`
  // The newest entry of each key of `hashes` that has one (a key whose newest row is a
  // tombstone has none), returned as state 1: the head of a FOR loop and its RETURN NEXT.
  const answered = (hashes: string) =>
    `    SELECT * FROM (
      SELECT DISTINCT ON (e.hash) e.hash, e.run, e.seq, e.app, e.version, e.input, e.result, e.time, e.deleted
      FROM ${q("entries")} e WHERE e.run_dir = p_ns AND e.hash = ANY(${hashes})
      ORDER BY e.hash, e.run DESC NULLS LAST, e.seq DESC
    ) newest WHERE coalesce(newest.deleted, 0) = 0
  LOOP
    r_hash := v_rec.hash; r_state := 1; r_owner := NULL; r_gone := 0;
    r_run := v_rec.run; r_seq := v_rec.seq; r_app := v_rec.app; r_version := v_rec.version;
    r_input := v_rec.input; r_result := v_rec.result; r_time := v_rec.time;
    RETURN NEXT;
`
  return `CREATE FUNCTION ${
    q("claim_v3")
  }(p_ns text, p_hashes text[], p_run text, p_key text, p_lease bigint, p_channel text, p_note text)
RETURNS TABLE (r_hash text, r_state int, r_owner text, r_gone int, r_run int, r_seq bigint, r_app text, r_version text, r_input text, r_result text, r_time text)
LANGUAGE plpgsql VOLATILE AS $dfk$
DECLARE
  v_now bigint := (extract(epoch from clock_timestamp()) * 1000)::bigint;
  v_won text[];
  v_found text[] := '{}';
  v_back text[] := '{}';
  v_rest text[];
  v_rec record;
BEGIN
  -- The keys an entry answers already: no claim.
  FOR v_rec IN
${answered("p_hashes")}    v_found := v_found || v_rec.hash;
  END LOOP;
  WITH ins AS (
    INSERT INTO ${q("claims")} (run_dir, hash, owner, owner_key, expires)
    SELECT p_ns, h, p_run, p_key, v_now + p_lease FROM unnest(p_hashes) AS h WHERE NOT (h = ANY(v_found))
    ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash
  ) SELECT coalesce(array_agg(ins.hash), '{}') INTO v_won FROM ins;
  FOR v_rec IN
    SELECT c.hash, c.owner,
      CASE WHEN c.expires < v_now THEN 1 WHEN c.owner_key IS NULL OR c.owner_key = p_key THEN 0
        WHEN pg_try_advisory_xact_lock(c.owner_key::bigint) THEN 1 ELSE 0 END AS gone
    FROM ${q("claims")} c WHERE c.run_dir = p_ns AND c.hash = ANY(p_hashes) AND NOT (c.hash = ANY(v_won))
      AND NOT (c.hash = ANY(v_found))
  LOOP
    r_hash := v_rec.hash; r_state := 0; r_owner := v_rec.owner; r_gone := v_rec.gone;
    r_run := NULL; r_seq := NULL; r_app := NULL; r_version := NULL; r_input := NULL; r_result := NULL; r_time := NULL;
    RETURN NEXT;
  END LOOP;
  IF cardinality(v_won) = 0 THEN RETURN; END IF;
  FOR v_rec IN
${answered("v_won")}    v_back := v_back || v_rec.hash;
  END LOOP;
  IF cardinality(v_back) > 0 THEN
    DELETE FROM ${q("claims")} c WHERE c.run_dir = p_ns AND c.owner = p_run AND c.hash = ANY(v_back);
  END IF;
  v_rest := ARRAY(SELECT w FROM unnest(v_won) AS w WHERE NOT (w = ANY(v_back)));
  IF cardinality(v_rest) > 0 AND p_note IS NOT NULL THEN
    PERFORM pg_notify(p_channel, p_note || array_to_string(v_rest, ','));
  END IF;
  r_state := 2; r_owner := NULL; r_gone := 0;
  r_run := NULL; r_seq := NULL; r_app := NULL; r_version := NULL; r_input := NULL; r_result := NULL; r_time := NULL;
  FOREACH r_hash IN ARRAY v_rest LOOP
    RETURN NEXT;
  END LOOP;
  RETURN;
END
$dfk$`
}
