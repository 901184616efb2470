/**
 * The SQL store's checkpoints and entries: writes (one transaction per pass; PostgreSQL, one
 * statement), and reads of a whole checkpoint.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { AppendOptions, CheckpointEntry, CheckpointStoreService, EncodedEntry } from "../../CheckpointStore.ts"
import { BadCheckpoint, CheckpointError } from "../../errors.ts"
import { reasonOf } from "../messages.ts"
import { runOfCheckpointDir } from "../runNames.ts"
import { retryTransient, type SqlStoreContext } from "./context.ts"
import type { Payloads } from "./notes.ts"
import { CHUNK, chunks, entryOfRow, type EntryRow } from "./rows.ts"

// PostgreSQL: a pass of up to this many entries is one statement (9 parameters each).
const PG_ONE_STATEMENT = 2000

/** The entries' part of a SQL store. */
export type Entries = Required<Pick<CheckpointStoreService, "append" | "appendEncoded" | "load" | "exists">>

/** The checkpoints and entries of the store of `ctx`, which notifies with `payloads`. */
export const makeEntries = (ctx: SqlStoreContext, payloads: Payloads): Entries => {
  const { channel, fail, held, isPg, ownerOf, sql, t } = ctx
  const { givenUpPayloads, notify, writtenPayloads } = payloads

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
        for (const p of givenUpPayloads(run.runDir, tombstones)) payloads.push(p)
      }
      // The keys written: the run's claims on them end with the write.
      const keys = [...new Set(entries.map((e) => e.hash))]
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
          sql`e AS (INSERT INTO ${t.entries} ${sql.insert(entryRows(dir, run, entries))})`,
          ...(run === undefined
            ? []
            : [
              // The keys as an array, not `IN (SELECT hash FROM e)`: on a claims table its
              // statistics do not describe yet (a first big run, whose claims pile up in the
              // modes that end them at the next pass), the planner joined each claim the run
              // held with each entry written (20,000 held, 70 written: 170 ms a write, bench B10 (c)).
              sql`d AS (DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND ${ownerOf} = ${run.run} AND hash = ANY(${keys}::text[]))`
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
            for (const chunk of chunks(keys, CHUNK)) {
              yield* sql`DELETE FROM ${t.claims} WHERE run_dir = ${run.runDir} AND ${ownerOf} = ${run.run} AND ${
                sql.in("hash", chunk)
              }`
            }
          }
          yield* notify(payloads)
        }))
      }
      // (A statement or a transaction: rolled back whole when it fails, so run again when
      // PostgreSQL ended it as a deadlock.)
      return Effect.tap(retryTransient(write), () =>
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
      // (Group commit needs no yield here: the kernel's pass yields before it takes its
      // entries, so that the calls that run now queue theirs first.)
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
