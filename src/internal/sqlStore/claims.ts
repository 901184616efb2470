/**
 * The SQL store's claims: batches of claims, one at a time (one statement per chunk;
 * PostgreSQL, one call of the claim function), take-overs of claims whose holder is gone,
 * claims given up, and the renewal of the leases of the claims this process holds.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { CheckpointEntry, StoreClaims } from "../../CheckpointStore.ts"
import type { CheckpointError } from "../../errors.ts"
import { OneShot } from "../oneShot.ts"
import { normalRunDir } from "../runNames.ts"
import { realTime, retryTransient, type SqlStoreContext } from "./context.ts"
import type { Lookups } from "./lookups.ts"
import { noteKey, type Payloads } from "./notes.ts"
import { CHUNK, chunks, type Claim, type ClaimFnRow, entryOfRow } from "./rows.ts"
import { CLAIM_FUNCTION } from "./schema.ts"

/** What the claims of a SQL store need of its other parts. */
export interface ClaimsDeps {
  readonly payloads: Payloads
  readonly lookups: Lookups
  /** Starts LISTEN (once). */
  readonly startListening: Effect.Effect<void>
  /** Waits for a claim held elsewhere to end (`undefined`: it ended without an entry). */
  readonly waitFor: (ns: string, hash: string) => Effect.Effect<CheckpointEntry | undefined, CheckpointError>
}

/** The claims of the store of `ctx`. */
export const makeClaims = (ctx: SqlStoreContext, deps: ClaimsDeps): StoreClaims => {
  const { channel, fail, held, isPg, leaseMs, liveness, notes, now, ownerKey, ownerOf, prefix, sql, t } = ctx
  const { givenUpPayloads, notify } = deps.payloads
  const { claimsOf, lookupNow } = deps.lookups
  const { startListening, waitFor } = deps

  /** The claims `run` holds under `runDir` (a set made when there is none). */
  const holding = (run: string, runDir: string) => {
    let byDir = held.get(run)
    if (byDir === undefined) held.set(run, byDir = new Map())
    let set = byDir.get(runDir)
    if (set === undefined) byDir.set(runDir, set = new Set())
    return set
  }

  /**
   * SQLite: how many of the keys claimed lately had an entry (a moving average over claim
   * batches): from a quarter, claims look their keys up first.
   */
  let metEntries = 0

  /** What one claim statement said. */
  interface Inserted {
    /** The claims won, their keys without an entry. */
    readonly won: Set<string>
    /** The keys an entry answers (PostgreSQL: found after the insert; a claim won on one is given back). */
    readonly answered: Map<string, CheckpointEntry>
    /** The claims of the keys lost (a key in neither was given up meanwhile). */
    readonly current: Map<string, Claim>
  }

  /**
   * Inserts claims of `run` on `hashes` (`ON CONFLICT DO NOTHING`: the rows inserted are the
   * claims won). PostgreSQL: one call of the store's function (`<prefix>claim_v4`, see
   * `claimFunction` in `schema.ts`) per chunk, which inserts the claims, then looks the keys
   * up (a statement of its own, after the insert), gives back the claims of those an entry
   * answers, and reads the claims of the keys lost.
   * SQLite: the insert, then a read of the claims lost. `guarded` (SQLite): only keys with no
   * entry row are claimed, in the statement that checks it (the claims won need no lookup);
   * else the caller looks the keys won up.
   */
  const insertClaims = (
    ns: string,
    run: string,
    hashes: ReadonlyArray<string>,
    guarded: boolean
  ): Effect.Effect<Inserted, SqlError> =>
    Effect.gen(function*() {
      const out: Inserted = { won: new Set(), answered: new Map(), current: new Map() }
      for (const chunk of chunks(hashes, CHUNK)) {
        if (isPg) {
          // Claims are not announced (the function's `p_note` is null): a notification of
          // every claim to every process cost them more (B9: a wake-up of each listener, and
          // of its backend, per claim) than the claim statements it saved them, once slots
          // go to waiting calls in no fixed order (a claim then seldom meets another's).
          // (One statement, all of it rolled back when it fails: one that PostgreSQL ended as
          // a deadlock, with another's batch that shares keys, is run again.)
          const rows = yield* retryTransient(
            sql<ClaimFnRow>`SELECT * FROM ${sql(prefix + CLAIM_FUNCTION)}(${ns}, ${[
              ...chunk
            ]}::text[], ${run}, ${ownerKey}, ${leaseMs}::bigint, ${channel}, ${null})`
          )
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
        const rows = guarded
          // Only keys with no entry at all (one statement does what a lookup and a claim
          // did). A write statement takes SQLite's write lock before it reads, so no entry
          // can be committed between its check and its insert: a claim it wins needs no
          // lookup after it. (A key whose rows are tombstones only is claimed unguarded.)
          ? yield* sql<
            { readonly hash: string }
          >`INSERT INTO ${t.claims} (run_dir, hash, owner, owner_key, expires) SELECT ${ns}, v.column1, ${run}, ${ownerKey}, ${now} + ${leaseMs} FROM (VALUES ${
            sql.csv(chunk.map((h) => sql`(${h})`))
          }) AS v WHERE NOT EXISTS (SELECT 1 FROM ${t.entries} e WHERE e.run_dir = ${ns} AND e.hash = v.column1) ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash`
          : yield* sql<
            { readonly hash: string }
          >`INSERT INTO ${t.claims} (run_dir, hash, owner, owner_key, expires) VALUES ${
            sql.csv(chunk.map((h) => sql`(${ns}, ${h}, ${run}, ${ownerKey}, ${now} + ${leaseMs})`))
          } ON CONFLICT (run_dir, hash) DO NOTHING RETURNING hash`
        for (const r of rows) out.won.add(r.hash)
      }
      if (!isPg && !guarded) {
        const lost = hashes.filter((h) => !out.won.has(h))
        if (lost.length > 0) { for (const [h, c] of yield* claimsOf(ns, lost)) out.current.set(h, c) }
      }
      return out
    })

  /**
   * Claims `hashes` under `ns` for `run`, in as few statements as the batch allows. A key
   * another process was lately heard to have written is answered by that entry; the others
   * are looked up and those without an entry claimed (PostgreSQL: both in one call of its
   * claim function; SQLite: in one insert that claims only keys with no entry row, see
   * `insertClaims`). PostgreSQL, and a claim SQLite takes without that check: a key won is
   * looked up once more after the claim is in (an entry written before the claim was won
   * answers it, and the claim is given back), a statement of its own, since the insert may
   * have waited for that writer's commit, which its own snapshot does not see. A claim lost
   * whose holder is gone is taken over.
   */
  const claimMany = (
    ns: string,
    run: string,
    hashes: ReadonlyArray<string>
  ): Effect.Effect<Map<string, "won" | "held" | CheckpointEntry>, SqlError> =>
    Effect.gen(function*() {
      const out = new Map<string, "won" | "held" | CheckpointEntry>()
      let todo: Array<string> = []
      for (const hash of new Set(hashes)) {
        const key = noteKey(ns, hash)
        const note = notes.get(key)
        if (note?.entry !== undefined) out.set(hash, note.entry)
        else {
          // What was heard of it is older than what the database is about to say.
          notes.delete(key)
          todo.push(hash)
        }
      }
      yield* startListening
      if (todo.length > 0 && liveness !== undefined) yield* liveness
      // SQLite, when claims lately met entries (other processes wrote those keys): the keys
      // are looked up first (a read, where a claim is a write that every other process waits
      // for), and only those without an entry are claimed.
      const asked = todo.length
      let met = 0
      if (!isPg && todo.length > 0 && metEntries >= 0.25) {
        const found = yield* lookupNow({ _tag: "RunDir", runDir: ns }, todo)
        if (found.size > 0) {
          for (const [hash, entry] of found) out.set(hash, entry)
          todo = todo.filter((h) => !found.has(h))
          met += found.size
        }
      }
      const mine = holding(run, ns)
      for (let attempt = 0; todo.length > 0 && attempt < 4; attempt++) {
        // SQLite, first: claims only of keys without an entry row, in the statement that
        // checks it (a lookup and a claim in one); the keys it does not win are looked up
        // (an entry answers them, else their claims are read). (PostgreSQL's claim
        // function looks the keys up itself, after its insert.)
        const guarded = !isPg && attempt === 0
        const { answered, current, won } = yield* insertClaims(ns, run, todo, guarded)
        if (guarded) {
          const lost = todo.filter((h) => !won.has(h))
          const found = lost.length === 0
            ? new Map<string, CheckpointEntry>()
            : yield* lookupNow({ _tag: "RunDir", runDir: ns }, lost)
          for (const [hash, entry] of found) answered.set(hash, entry)
          met += found.size
          const unanswered = lost.filter((h) => !found.has(h))
          if (unanswered.length > 0) { for (const [h, c] of yield* claimsOf(ns, unanswered)) current.set(h, c) }
        }
        // Won by this statement and looked up already (PostgreSQL, or guarded), or to look up now.
        const unchecked = new Set(isPg || guarded ? [] : won)
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
      if (!isPg && asked > 0) metEntries += (met / asked - metEntries) / 4
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
        >`DELETE FROM ${t.claims} WHERE run_dir = ${ns} AND ${ownerOf} = ${run} AND ${
          sql.in("hash", chunk)
        } RETURNING hash`
        for (const r of rows) released.push(r.hash)
      }
      yield* notify(givenUpPayloads(ns, released))
    })

  /** A claim asked for and not answered yet. */
  interface ClaimAsk {
    readonly ns: string
    readonly hash: string
    readonly run: string
    readonly answer: OneShot<"won" | "held" | CheckpointEntry, CheckpointError>
  }
  // The claims asked for at one moment go in one batch (as lookups do): gathered until the
  // fibers that run now have had their turn, then claimed together. One batch at a time:
  // the claims asked for while a batch is being claimed go in the next, which starts when it
  // ends (group commit, as for the passes that write entries). Batches claimed as they came,
  // each on a connection of its own, were many and small once the calls that start when
  // others end fell out of step (B10: 60 keys a batch at concurrency 256).
  let claimBatch: Array<ClaimAsk> = []
  // Whether a fiber claims the batches (it ends once no claim waits for one).
  let claiming = false

  const flushClaims = Effect.suspend(() => {
    const batch = claimBatch
    claimBatch = []
    const groups = new Map<string, Array<ClaimAsk>>()
    for (const ask of batch) {
      const key = JSON.stringify([ask.ns, ask.run])
      const group = groups.get(key)
      if (group === undefined) groups.set(key, [ask])
      else group.push(ask)
    }
    const claimGroup = (group: ReadonlyArray<ClaimAsk>) =>
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
      )
    // One run's claims (the common case) in this fiber; several runs' side by side.
    return groups.size === 1
      ? claimGroup(groups.values().next().value!)
      : Effect.forEach(groups.values(), claimGroup, { concurrency: "unbounded", discard: true })
  })

  const claimBatches: Effect.Effect<void> = Effect.suspend(() => {
    if (claimBatch.length === 0) {
      claiming = false
      return Effect.void
    }
    return Effect.zipRight(flushClaims, claimBatches)
  })

  const claims: StoreClaims = {
    claim: (runDir, hash, run) =>
      Effect.suspend(() => {
        const ns = normalRunDir(runDir)
        // A key another process was heard to have written is answered by that entry at once
        // (as `claimMany` would answer it), without joining a batch.
        const heard = notes.get(noteKey(ns, hash))?.entry
        if (heard !== undefined) return Effect.succeed(heard)
        const ask: ClaimAsk = { ns, hash, run, answer: new OneShot() }
        let start: Effect.Effect<unknown> = Effect.void
        if (!claiming) {
          claiming = true
          start = Effect.forkDaemon(
            Effect.zipRight(Effect.yieldNow(), claimBatches).pipe(
              Effect.onInterrupt(() => Effect.sync(() => (claiming = false)))
            )
          )
        }
        claimBatch.push(ask)
        return Effect.zipRight(start, ask.answer.await)
      }),
    await: (runDir, hash) => waitFor(normalRunDir(runDir), hash),
    release: (runDir, hashes, run) => giveUp(normalRunDir(runDir), run, hashes).pipe(Effect.mapError(fail(runDir)))
  }
  return claims
}

/** Renews the leases of the claims the store of `ctx` holds, in the background while its scope lives. */
export const renewLeases = (ctx: SqlStoreContext): Effect.Effect<void, never, Scope.Scope> => {
  const { held, isPg, leaseMs, now, sql, t } = ctx
  return Effect.asVoid(
    // Leases are renewed a third of a lease apart, for every run with claims held here.
    Effect.gen(function*() {
      for (const [run, byDir] of held) {
        for (const [ns, set] of byDir) if (set.size === 0) byDir.delete(ns)
        if (byDir.size === 0) {
          held.delete(run)
          continue
        }
        // PostgreSQL: rows another transaction has locked are skipped, not waited for: they
        // are being ended (this run's entry write deletes them) or taken over, and a wait
        // would keep every other lease of the run from its renewal (long enough, and they
        // run out), or deadlock with a write that locks the same rows in another order.
        yield* isPg
          ? sql`UPDATE ${t.claims} SET expires = ${now} + ${leaseMs} WHERE (run_dir, hash) IN (SELECT run_dir, hash FROM ${t.claims} WHERE owner = ${run} FOR UPDATE SKIP LOCKED)`
          : sql`UPDATE ${t.claims} SET expires = ${now} + ${leaseMs} WHERE owner = ${run}`
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
  )
}
