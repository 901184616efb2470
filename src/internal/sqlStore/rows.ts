/** The rows the SQL store reads (entries, claims), the entries they hold, and statements in chunks. */
import type { CheckpointEntry } from "../../CheckpointStore.ts"

/** An entry row. */
export interface EntryRow {
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

// Rows per INSERT: 9 parameters each, well under SQLite's and PostgreSQL's limits.
export const CHUNK = 400
/** `items` in chunks of `size`. */
export const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Whether a row is a tombstone (DESIGN §4), which invalidates its key. */
export const isTombstone = (row: EntryRow): boolean => Number(row.deleted ?? 0) === 1

/** The entry of a row: the JSON texts parsed (a tombstone has no result). */
export const entryOfRow = (row: EntryRow): CheckpointEntry =>
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

/** A claim as read: its owner (the run), and whether its holder is gone (out of lease, or dead). */
export interface Claim {
  readonly owner: string
  readonly gone: boolean
}
/** A row of the claims table as read (`gone`: see `claimsOf`). */
export type ClaimRow = { readonly hash: string; readonly owner: string; readonly gone: number | string }
/** A row of `<prefix>claim_v4` (PostgreSQL): state 0 a claim lost, 1 an entry answers the key, 2 won. */
export type ClaimFnRow = {
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
/** The claim of a row. */
export const claimOfRow = (r: ClaimRow): Claim => ({ owner: r.owner, gone: Number(r.gone) === 1 })
