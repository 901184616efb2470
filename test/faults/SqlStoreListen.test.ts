/**
 * A SqlStore on PostgreSQL that is closed soon after it is made must leave no connection open.
 *
 * Found while building `dfk --store postgres://…`, whose commands open a store, read a little
 * and close it within milliseconds: a store that started LISTEN as soon as it was made, and
 * was closed while that connection was still being opened, never closed the connection. The
 * session stayed in `pg_stat_activity`, and a Node process that used the store did not exit
 * (an open socket keeps its event loop alive). The store now listens only once a claim is
 * waited for, and its close lets a LISTEN still starting finish first.
 *
 * The leak itself is in `@effect/sql-pg`'s `listen` (its connection comes from an `RcRef`,
 * whose `get` loses the acquired resource when interrupted right after acquiring it: see
 * Effect-TS/effect#8390). `dfk` also exits once its command is done.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { SqlStore } from "effect-dfk/sql"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { pgDatabase } from "../e2e/sqlHarness.ts"

describe("SqlStore on PostgreSQL, closed at once", () => {
  it.live("leaves no session open", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* pgDatabase
      const applicationName = `dfk-listen-${randomBytes(4).toString("hex")}`
      // Made, asked one thing and closed, as a short command does.
      for (let i = 0; i < 3; i++) {
        yield* Effect.scoped(Effect.flatMap(SqlStore.make(), (store) => store.runs!.list("nightly"))).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(url), applicationName }))
        )
      }
      const admin = PgClient.layer({ url: Redacted.make(url), applicationName: "dfk-listen-admin" })
      const sessions = Effect.flatMap(PgClient.PgClient, (sql) =>
        sql<
          { readonly n: number | string }
        >`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`).pipe(
          Effect.map((rows) => Number(rows[0]!.n)),
          Effect.provide(admin)
        )
      // Give closing connections time to go.
      let open = yield* sessions
      for (let i = 0; i < 20 && open > 0; i++) {
        yield* Effect.sleep("100 millis")
        open = yield* sessions
      }
      assert.strictEqual(open, 0, `${open} session(s) of closed stores still open after 2 s`)
    })))
})
