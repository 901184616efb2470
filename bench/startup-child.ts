/**
 * B10 (b), one measurement in a fresh process: `node bench/startup-child.js <runDir> <probe>`,
 * with the store in the environment (`B10_STORE`: `postgres://…` or `sqlite:<file>`; a URL is
 * never put on a command line). `bench/run.ts` runs a plain-JS copy of it and of the library
 * (see `compile.ts`) with plain `node`.
 *
 * It opens `SqlStore.layer()` over the store, builds `Dfk.layer({ runDir, checkpointMode:
 * "task_exit" })` (default resume: lookups on demand, nothing loaded) and makes one call of the
 * app `b10_probe` with the input `{ i: probe }`, which the store must answer (a hit from the
 * checkpoint; the body is never run). Prints one JSON line: `{ sinceStartMs, buildMs, callMs,
 * rssMB, maxRssMB }`: the time from the process's start (`performance.now()`, whose origin is
 * the process's start) to the call's result, the kernel's build and the call alone, the RSS
 * right after the call and the peak RSS.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { sqlClientLayer } from "../cli/sqlClient.ts"
import { App, Dfk } from "../mod.ts"
import { SqlStore } from "../sql.ts"
import { mb, peakRss } from "./child-util.ts"

const [runDir, probeArg] = process.argv.slice(2)
const store = process.env.B10_STORE
const probe = Number(probeArg)
if (runDir === undefined || store === undefined || !Number.isInteger(probe)) {
  console.error("Usage: B10_STORE=<postgres://…|sqlite:FILE> startup-child.js <runDir> <probe>")
  process.exit(2)
}

const app = App.make(
  { name: "b10_probe", input: Schema.Struct({ i: Schema.Number }), output: Schema.Number, cache: true },
  () => Effect.succeed(-1)
)

const client = sqlClientLayer(store, { what: "B10_STORE" })

const program = Effect.scoped(Effect.gen(function*() {
  const t0 = performance.now()
  const context = yield* Layer.build(
    Dfk.layer({ runDir, checkpointMode: "task_exit" }).pipe(
      Layer.provide(SqlStore.layer().pipe(Layer.provide(client))),
      Layer.provide(Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning)))
    )
  )
  const t1 = performance.now()
  const value = yield* app({ i: probe }).pipe(Effect.provide(context))
  const t2 = performance.now()
  const rssMB = mb(process.memoryUsage().rss)
  const stats = yield* Dfk.detailedStats.pipe(Effect.provide(context))
  if (value !== probe * 2 || stats.fromCheckpoint !== 1 || stats.misses !== 0) {
    return yield* Effect.dieMessage(
      `The store did not serve the probe call (got ${value}; ${stats.fromCheckpoint} from the store, ${stats.misses} misses)`
    )
  }
  console.log(JSON.stringify({ sinceStartMs: t2, buildMs: t1 - t0, callMs: t2 - t1, rssMB, maxRssMB: mb(peakRss()) }))
})).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

await Effect.runPromise(program)
