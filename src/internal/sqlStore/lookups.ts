/**
 * What the SQL store's tables hold now: the newest entries of keys (`lookupNow`, and the
 * store's `lookup`), and the claims on keys (`claimsOf`, with whether their holders are gone).
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { CheckpointEntry, CheckpointStoreService, LookupScope } from "../../CheckpointStore.ts"
import { BadCheckpoint } from "../../errors.ts"
import { sqlReasonOf } from "../messages.ts"
import { normalRunDir } from "../runNames.ts"
import type { SqlStoreContext } from "./context.ts"
import { CHUNK, chunks, type Claim, claimOfRow, type ClaimRow, entryOfRow, type EntryRow, isTombstone } from "./rows.ts"

// Claims read for more hashes than this: every claim of the runDir is read instead of a long IN list.
const SCAN_FROM = 64

/** The reads of a SQL store. */
export interface Lookups {
  /** The newest entry of each hash in `scope` (listed dirs: the last dir wins; a runDir: the newest run). */
  readonly lookupNow: (
    scope: LookupScope,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<Map<string, CheckpointEntry>, SqlError>
  /** The store's `lookup`: `lookupNow`, one answer per hash. */
  readonly lookup: NonNullable<CheckpointStoreService["lookup"]>
  /** The claims under `ns` that exist now on those of `hashes` (by hash: owner, and whether the holder is gone). */
  readonly claimsOf: (ns: string, hashes: ReadonlyArray<string>) => Effect.Effect<Map<string, Claim>, SqlError>
}

/** The reads of the store of `ctx`. */
export const makeLookups = (ctx: SqlStoreContext): Lookups => {
  const { isPg, now, ownerKey, sql, t } = ctx

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
              reason: `Cannot read from the SQL store: ${sqlReasonOf(e)}`
            })
          )
        )
      )
    })

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

  return { lookupNow, lookup, claimsOf }
}
