/**
 * B10, start-up on a SQL store, in a fresh process (so that its peak RSS is its own):
 * `node bench/sql-startup-child.js <postgres://…|sqlite:<file>> <runDir> <probes>`.
 * `bench/run.ts` runs a plain-JS copy of it and of the library (see `compile.ts`).
 *
 * It opens `SqlStore.layer` over the client, builds `Dfk.layer({ runDir, checkpointMode:
 * "task_exit" })` (default resume: the store is asked for the keys calls need, nothing is
 * loaded), then calls the cached app `b10_probe` on `{ i }` for i in 0..probes-1, which the
 * store's entries must answer (from the checkpoint, no body run). The time is from before the
 * layers are built to the last probe served; the store's size must not show in it.
 *
 * Prints one JSON line: `{ ms, cpuMs, maxRssMB, startRssMB, fromCheckpoint }`.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { App, Dfk } from "../mod.ts"
import { SqlStore } from "../sql.ts"
import { mb, peakRss } from "./child-util.ts"

const [store, runDir, probesArg] = process.argv.slice(2)
const probes = Number(probesArg)
if (store === undefined || runDir === undefined || !Number.isInteger(probes)) {
  console.error("Usage: sql-startup-child.ts <postgres://…|sqlite:<file>> <runDir> <probes>")
  process.exit(2)
}

const client: Layer.Layer<SqlClient.SqlClient, unknown> = store.startsWith("sqlite:")
  ? (await import("@effect/sql-sqlite-node/SqliteClient")).layer({ filename: store.slice("sqlite:".length) })
  : (await import("@effect/sql-pg/PgClient")).layer({ url: Redacted.make(store) })

let bodies = 0
const probe = App.make(
  { name: "b10_probe", input: Schema.Struct({ i: Schema.Number }), output: Schema.Number, cache: true },
  ({ i }) => Effect.sync(() => (bodies++, -i))
)

const startRssMB = mb(process.memoryUsage().rss)
const t0 = performance.now()
const c0 = process.cpuUsage()
const program = Effect.gen(function*() {
  const values = yield* Effect.forEach(Array.from({ length: probes }, (_, i) => i), (i) => probe({ i }), {
    concurrency: "unbounded"
  })
  const stats = yield* Dfk.detailedStats
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  if (bodies !== 0 || values.some((v, i) => v !== 2 * i)) {
    return yield* Effect.dieMessage(`The store did not answer the probes (${bodies} bodies ran)`)
  }
  console.log(JSON.stringify({
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssMB: mb(peakRss()),
    startRssMB,
    fromCheckpoint: stats.fromCheckpoint
  }))
}).pipe(
  Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
  Effect.provide(SqlStore.layer().pipe(Layer.provide(client))),
  Effect.provide(Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning)))
)
await Effect.runPromise(program as Effect.Effect<void, unknown, never>)
