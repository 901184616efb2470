/** The SQL store's runs: listed, and allocated by the database. */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { StoreRuns } from "../../CheckpointStore.ts"
import { normalRunDir, runPath } from "../runNames.ts"
import { realTime, type SqlStoreContext } from "./context.ts"

/** The runs of the store of `ctx`. */
export const makeRuns = (ctx: SqlStoreContext): StoreRuns => {
  const { fail, now, sql, t } = ctx
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
  return runs
}
