/**
 * The SQL store's waits for claims held elsewhere: the waiters, ended by what notifications
 * say or by the poller, which checks the claims and looks the keys up.
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { CheckpointEntry } from "../../CheckpointStore.ts"
import type { CheckpointError } from "../../errors.ts"
import { OneShot } from "../oneShot.ts"
import { realTime, type SqlStoreContext, type Waiter } from "./context.ts"
import type { Listen } from "./listen.ts"
import type { Lookups } from "./lookups.ts"
import { isEntry, noteKey, setNote } from "./notes.ts"

/** What the waits of a SQL store need of its other parts. */
export interface WaitersDeps {
  readonly lookups: Lookups
  readonly listen: Listen
}

/** The waits of a SQL store. */
export interface Waiters {
  /** Waits for the claim of `hash` under `ns` held elsewhere to end (`undefined`: it ended without an entry). */
  readonly waitFor: (ns: string, hash: string) => Effect.Effect<CheckpointEntry | undefined, CheckpointError>
  /** What a notification says: notes kept, waits ended or looked into. */
  readonly onNotification: (payload: string) => void
}

/** The waits of the store of `ctx`. */
export const makeWaiters = (ctx: SqlStoreContext, deps: WaitersDeps): Waiters => {
  const { notes, ownerKey, scope, waiters } = ctx
  const FULL_MS = ctx.fullMs
  const { claimsOf, lookupNow } = deps.lookups
  const { heardHello, isListening } = deps.listen

  // PostgreSQL: a notification that a key was written (with its entry) or given up ends the
  // waits for it at once; one that carries only the hash (an entry too long to send) has
  // the poller look the key up. Every key waited for is checked a second apart (or a third
  // of a lease, when shorter): a holder gone or out of lease ends the wait. SQLite, or
  // without notifications: every key waited for is checked at each poll, 5 ms apart at
  // first, backing off to 100 ms while nothing comes.

  const dirty = new Map<string, Set<string>>() // runDir → hashes to look up at the next turn
  let polling = false
  let wake = Deferred.unsafeMake<void>(FiberId.none)

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

  /** What a notification says (see `notes.ts`): notes kept, waits ended or looked into. */
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
    if (kind === "r") {
      for (const hash of body.split(",")) {
        setNote(notes, noteKey(ns, hash), { kind, at, entry: undefined })
        resolve(ns, hash, undefined)
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
        setNote(notes, noteKey(ns, item.hash), { kind: "w", at, entry: item })
        resolve(ns, item.hash, item)
      }
    }
    if (look) Deferred.unsafeDone(wake, Exit.void)
  }

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

  return { waitFor, onNotification }
}
