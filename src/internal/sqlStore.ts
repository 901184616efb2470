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
import { utf8ByteLength } from "./utf8.ts"
import { normalRunDir, runOfCheckpointDir, runPath } from "./runNames.ts"

/** The schema version these statements speak. */
const SCHEMA_VERSION = 1

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

/** The entry of a row: the JSON texts parsed. */
const entryOfRow = (row: EntryRow): CheckpointEntry => ({
  hash: row.hash,
  app: row.app,
  version: row.version,
  input: JSON.parse(row.input),
  result: JSON.parse(row.result),
  time: row.time
})

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
  return typeof e.hash === "string" && typeof e.app === "string" && (e.version === null || typeof e.version === "string") &&
    "input" in e && "result" in e && typeof e.time === "string"
}

// The store's own timing (leases and their renewal, polls, retries) follows the real clock,
// whatever clock the caller's fiber has (a TestClock in tests): leases are measured by the
// database's clock, and other processes do not wait for a test to advance time.
const liveClock = Clock.make()
const realTime = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.withClock(effect, liveClock)

/** One waiter for a key under claim: resumed with the entry, or `undefined` when the claim ended without one. */
type Waiter = Deferred.Deferred<CheckpointEntry | undefined, CheckpointError>

/** The SQL store over `sql`. */
export const make = (
  sql: SqlClient.SqlClient,
  options: SqlStoreOptions = {}
): Effect.Effect<CheckpointStoreService, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.tablePrefix ?? "dfk_"
    if (!PREFIX.test(prefix)) {
      return yield* Effect.dieMessage(`SqlStore: tablePrefix must be letters, digits and underscores (got ${JSON.stringify(prefix)})`)
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
      // Taken at the first claim, on a connection kept until the store closes.
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
        result: e.result,
        time: e.time
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
        const claimed = mine === undefined || mine.size === 0 ? [] : entries.filter((e) => mine.has(e.hash))
        const payloads = isPg && run !== undefined && claimed.length > 0 ? writtenPayloads(run.runDir, claimed) : []
        const checkpointRow = sql`INSERT INTO ${t.checkpoints} (dir, run_dir, run) VALUES (${dir}, ${run?.runDir ?? null}, ${
          run?.n ?? null
        }) ON CONFLICT (dir) DO NOTHING`
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
              : [sql`d AS (DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND owner = ${run.run} AND hash IN (SELECT hash FROM e))`])
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
                yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND owner = ${run.run} AND ${sql.in("hash", chunk)}`
              }
            }
            yield* notify(payloads)
          }))
        }
        return Effect.tap(write, () =>
          Effect.sync(() => {
            knownDirs.add(dir)
            if (mine !== undefined) for (const e of entries) mine.delete(e.hash)
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
        const setSync = isPg || synchronous === wanted ? Effect.void : sql.unsafe(`PRAGMA synchronous = ${wanted}`).pipe(
          Effect.tap(() => Effect.sync(() => (synchronous = wanted))),
          Effect.catchAll(() => Effect.void)
        )
        return Effect.zipRight(setSync, writeEntries(dir, entries)).pipe(Effect.mapError(fail(dir)))
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
            result: JSON.stringify(e.result),
            time: e.time
          }))
        } catch (cause) {
          return Effect.fail(new CheckpointError({ path: dir, reason: `An entry has no JSON form: ${reasonOf(cause)}`, cause }))
        }
        return appendEncoded(dir, encoded, options)
      })

    const load = (dir: string, onEntry: (entry: CheckpointEntry) => void): Effect.Effect<void, BadCheckpoint> =>
      Effect.gen(function*() {
        const known = yield* sql<{ readonly dir: string }>`SELECT dir FROM ${t.checkpoints} WHERE dir = ${dir}`
        if (known.length === 0) {
          return yield* new BadCheckpoint({ path: dir, line: 0, reason: "the store holds no checkpoint here" })
        }
        const rows = yield* sql<EntryRow>`SELECT dir, run, seq, hash, app, version, input, result, time FROM ${t.entries} WHERE dir = ${dir} ORDER BY seq`
        let n = 0
        for (const row of rows) {
          n++
          let entry: CheckpointEntry
          try {
            entry = entryOfRow(row)
          } catch (e) {
            return yield* new BadCheckpoint({ path: dir, line: n, reason: `Entry ${n} is not valid JSON: ${reasonOf(e)}` })
          }
          onEntry(entry)
        }
      }).pipe(
        Effect.catchTag("SqlError", (e) =>
          Effect.fail(new BadCheckpoint({ path: dir, line: 0, reason: `Cannot read from the SQL store: ${reasonOf(e)}` })))
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
          const take = sql<{ readonly n: number | string }>`INSERT INTO ${t.runs} (run_dir, n, started) SELECT ${key}, COALESCE(MAX(n), -1) + 1, ${now} FROM ${t.runs} WHERE run_dir = ${key} RETURNING n`
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
            ? yield* sql<EntryRow>`SELECT dir, run, seq, hash, app, version, input, result, time FROM ${t.entries} WHERE ${
              sql.in("dir", scope.dirs)
            } AND ${sql.in("hash", chunk)}`
            : yield* sql<EntryRow>`SELECT dir, run, seq, hash, app, version, input, result, time FROM ${t.entries} WHERE run_dir = ${
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
        for (const [hash, { row }] of found) out.set(hash, entryOfRow(row))
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
          add(yield* sql<ClaimRow>`SELECT hash, owner, ${gone} AS gone FROM ${t.claims} WHERE run_dir = ${ns}`, new Set(hashes))
        } else {
          for (const chunk of chunks(hashes, CHUNK)) {
            add(yield* sql<ClaimRow>`SELECT hash, owner, ${gone} AS gone FROM ${t.claims} WHERE run_dir = ${ns} AND ${sql.in("hash", chunk)}`)
          }
        }
        return out
      })

    /**
     * Inserts claims of `run` on `hashes` (`ON CONFLICT DO NOTHING`): the hashes won, and the
     * claims of the others as they were (a claim missing from those was given up meanwhile).
     * PostgreSQL: one statement per chunk, which also reads the others' claims (from its
     * snapshot, before the insert) and notifies the claims won.
     */
    const insertClaims = (
      ns: string,
      run: string,
      hashes: ReadonlyArray<string>
    ): Effect.Effect<{ readonly won: Set<string>; readonly current: Map<string, Claim> }, SqlError> =>
      Effect.gen(function*() {
        const won = new Set<string>()
        const current = new Map<string, Claim>()
        for (const chunk of chunks(hashes, CHUNK)) {
          const values = sql.csv(chunk.map((h) => sql`(${ns}, ${h}, ${run}, ${ownerKey}, ${now} + ${leaseMs})`))
          const insert = sql`INSERT INTO ${t.claims} (run_dir, hash, owner, owner_key, expires) VALUES ${values} ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash`
          if (!isPg) {
            for (const r of yield* insert) won.add((r as { readonly hash: string }).hash)
            continue
          }
          // (Notified when the chunk's hashes fit one notification; claims known elsewhere
          // only save the others a statement.)
          const told = chunk.length <= NOTIFY_CHUNK
            ? sql` UNION ALL SELECT '', 2, '', 0 FROM (SELECT pg_notify(${channel}, ${head(ns, "c")} || string_agg(hash, ',')) AS n FROM ins HAVING count(*) > 0) told`
            : sql``
          const rows = yield* sql<ClaimRow & { readonly won: number | string }>`WITH ins AS (${insert}) SELECT hash, 1 AS won, '' AS owner, 0 AS gone FROM ins UNION ALL SELECT c.hash, 0, c.owner, ${gone} FROM ${t.claims} c WHERE c.run_dir = ${ns} AND ${
            sql.in("c.hash", chunk)
          } AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.hash = c.hash)${told}`
          for (const r of rows) {
            const w = Number(r.won)
            if (w === 1) won.add(r.hash)
            else if (w === 0) current.set(r.hash, claimOfRow(r))
          }
        }
        if (!isPg) {
          const lost = hashes.filter((h) => !won.has(h))
          if (lost.length > 0) for (const [h, c] of yield* claimsOf(ns, lost)) current.set(h, c)
        }
        return { won, current }
      })

    /**
     * Claims `hashes` under `ns` for `run`, in as few statements as the batch allows. A key
     * another process was lately heard to have written is answered by that entry, one heard to
     * be claimed is held; the others are claimed at once (`insertClaims`); for those won, one
     * lookup follows (an entry written before the claim was won answers the key: the claim
     * is given back). A lost claim whose holder is gone is taken over.
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
        for (let attempt = 0; todo.length > 0 && attempt < 4; attempt++) {
          const { current, won } = yield* insertClaims(ns, run, todo)
          const again: Array<string> = []
          for (const hash of todo) {
            if (won.has(hash)) continue
            const claim = current.get(hash)
            // Given up between the insert and the read: claimed again.
            if (claim === undefined) again.push(hash)
            else if (!claim.gone) out.set(hash, "held")
            else {
              // Its holder is gone: taken over, unless another process took it first.
              const taken = yield* sql<{ readonly hash: string }>`UPDATE ${t.claims} SET owner = ${run}, owner_key = ${ownerKey}, expires = ${now} + ${leaseMs} WHERE run_dir = ${ns} AND hash = ${hash} AND owner = ${claim.owner} RETURNING hash`
              if (taken.length > 0) won.add(hash)
              else out.set(hash, "held")
            }
          }
          if (won.size > 0) {
            // An entry written before the claim was won (its writer's claim ended with it)
            // answers the key: the claim is given back and the entry served. (A statement of
            // its own: the insert may have waited for that writer's commit, which its
            // snapshot does not see.)
            const found = yield* lookupNow({ _tag: "RunDir", runDir: ns }, [...won])
            if (found.size > 0) yield* giveUp(ns, run, [...found.keys()])
            const mine = holding(run, ns)
            for (const hash of won) {
              const entry = found.get(hash)
              if (entry !== undefined) out.set(hash, entry)
              else {
                mine.add(hash)
                out.set(hash, "won")
              }
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
          const rows = yield* sql<{ readonly hash: string }>`DELETE FROM ${t.claims} WHERE run_dir = ${ns} AND owner = ${run} AND ${
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
      readonly answer: Deferred.Deferred<"won" | "held" | CheckpointEntry, CheckpointError>
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
              Deferred.unsafeDone(
                ask.answer,
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
          const ask: ClaimAsk = { ns: normalRunDir(runDir), hash, run, answer: Deferred.unsafeMake(FiberId.none) }
          let start: Effect.Effect<unknown> = Effect.void
          if (claimBatch === undefined) {
            claimBatch = []
            start = Effect.forkDaemon(Effect.zipRight(Effect.yieldNow(), flushClaims))
          }
          claimBatch.push(ask)
          return Effect.zipRight(start, Deferred.await(ask.answer))
        }),
      await: (runDir, hash) => waitFor(normalRunDir(runDir), hash),
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
      Effect.catchAllCause((cause) => Effect.logWarning("SqlStore: renewing claims failed; they may be taken over", cause)),
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

    /** Ends the waits for `hash` with `value`: how many ended. */
    const resolve = (ns: string, hash: string, value: CheckpointEntry | undefined): number => {
      const byHash = waiters.get(ns)
      const list = byHash?.get(hash)
      if (byHash === undefined || list === undefined) return 0
      byHash.delete(hash)
      if (byHash.size === 0) waiters.delete(ns)
      for (const w of list) Deferred.unsafeDone(w, Exit.succeed(value))
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
          if (full) for (const [ns, byHash] of [...waiters]) n += yield* checkClaims(ns, [...byHash.keys()])
          return n
        })
        const resolved = yield* turn.pipe(
          Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("SqlStore: checking claims failed; trying again", cause), 0))
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

    // LISTEN starts with the first claim (a process that claims nothing never listens). The
    // store says hello (`h`) on the channel now and then, and waits rely on notifications only
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
        ? realTime(Effect.ignore(Effect.timeout(Effect.interruptible(Deferred.await(listenReady)), Duration.seconds(2))))
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
      return Effect.zipRight(Effect.forkIn(run, listenScope), Effect.asVoid(Effect.forkIn(realTime(hello), listenScope)))
    })

    const waitFor = (ns: string, hash: string): Effect.Effect<CheckpointEntry | undefined, CheckpointError> =>
      Effect.suspend(() => {
        // Written, or given up, since the claim found it held (what was heard before that
        // was dropped then): no need to wait.
        const note = notes.get(noteKey(ns, hash))
        if (note?.entry !== undefined) return Effect.succeed(note.entry)
        if (note?.kind === "r") return Effect.succeed(undefined)
        const waiter: Waiter = Deferred.unsafeMake<CheckpointEntry | undefined, CheckpointError>(FiberId.none)
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
          Deferred.await(waiter).pipe(
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
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_dir")} ON ${id("entries")} (dir, seq)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_key")} ON ${id("entries")} (run_dir, hash)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("entries_hash")} ON ${id("entries")} (hash, dir)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${id("claims")} (run_dir TEXT NOT NULL, hash TEXT NOT NULL, owner TEXT NOT NULL, owner_key TEXT, expires ${
      sql.literal(big)
    } NOT NULL, PRIMARY KEY (run_dir, hash))`
    yield* sql`CREATE INDEX IF NOT EXISTS ${id("claims_owner")} ON ${id("claims")} (owner)`
    yield* sql`INSERT INTO ${id("meta")} (key, value) VALUES ('schema', ${String(SCHEMA_VERSION)}) ON CONFLICT (key) DO NOTHING`
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

