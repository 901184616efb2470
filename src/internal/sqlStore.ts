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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type { CheckpointStoreService } from "../CheckpointStore.ts"
import { makeClaims, renewLeases } from "./sqlStore/claims.ts"
import { makeContext, realTime, type SqlStoreOptions } from "./sqlStore/context.ts"
import { makeEntries } from "./sqlStore/entries.ts"
import { makeListen } from "./sqlStore/listen.ts"
import { makeLookups } from "./sqlStore/lookups.ts"
import { makePayloads } from "./sqlStore/notes.ts"
import { makeRuns } from "./sqlStore/runs.ts"
import { createTables } from "./sqlStore/schema.ts"
import { makeWaiters } from "./sqlStore/waiters.ts"

export type { SqlStoreOptions } from "./sqlStore/context.ts"

/** The SQL store over `sql`. */
export const make = (
  sql: SqlClient.SqlClient,
  options: SqlStoreOptions = {}
): Effect.Effect<CheckpointStoreService, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext(sql, options)
    yield* realTime(createTables(ctx))
    const payloads = makePayloads(ctx)
    const entries = makeEntries(ctx, payloads)
    const runs = makeRuns(ctx)
    const lookups = makeLookups(ctx)
    yield* renewLeases(ctx)
    // LISTEN hands each notification to the waiters, made next (they read whether LISTEN is
    // on; a notification comes only once LISTEN has started, at the end of `make` at the earliest).
    const listen = yield* makeListen(ctx, (payload) => waiters.onNotification(payload))
    const waiters = makeWaiters(ctx, { lookups, listen })
    const claims = makeClaims(ctx, {
      payloads,
      lookups,
      startListening: listen.startListening,
      waitFor: waiters.waitFor
    })

    // PostgreSQL: the connections of the liveness lock and of LISTEN are opened now, in the
    // background (a connection costs a password exchange and round trips), so that the first
    // claims do not wait for them. A close lets the lock's finish first, as LISTEN's: a
    // connection interrupted while it is being made is left open.
    const { liveness, scope } = ctx
    if (liveness !== undefined) {
      const warm = yield* Effect.forkIn(Effect.ignore(liveness), scope)
      yield* Effect.addFinalizer(() =>
        realTime(Effect.ignore(Effect.timeout(Effect.interruptible(Fiber.await(warm)), Duration.seconds(5))))
      )
      yield* listen.startListening
    }

    const store: CheckpointStoreService = {
      ...entries,
      runs,
      lookup: lookups.lookup,
      claims
    }
    return store
  })
