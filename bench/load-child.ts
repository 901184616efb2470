/**
 * B6, one measurement in a fresh process:
 * `node --expose-gc --import tsx bench/load-child.ts <dfk|raw> <checkpointDir> <n> <appName>`.
 * `bench/run.ts` runs a plain-JS copy of it and of the library (see `compile.ts`) with
 * plain `node`, so that peak RSS does not include tsx's loader thread (about 70 MB).
 *
 * - `dfk`: builds `Dfk.layer` resuming from the checkpoint of `n` entries (the load and the
 *   run dir allocation), then checks that one app call is served from it.
 * - `raw`: the baseline: streams the same file in 256 KiB chunks, splits lines, and puts
 *   `JSON.parse` of each line into a `Map` by hash.
 *
 * Prints one JSON line: `{ mode, n, ms, cpuMs, entries, maxRssMB, startRssMB, heapAfterGcMB }`.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { createReadStream, mkdtempSync, rmSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { App, CheckpointFiles, Dfk } from "../mod.ts"
import { mb, peakRss } from "./child-util.ts"

const [mode, checkpointDir, nArg, appName] = process.argv.slice(2)
const n = Number(nArg)
if (
  (mode !== "dfk" && mode !== "raw") || checkpointDir === undefined || !Number.isInteger(n) || appName === undefined
) {
  console.error("Usage: load-child.ts <dfk|raw> <checkpointDir> <n> <appName>")
  process.exit(2)
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since)
  return (u.user + u.system) / 1000
}
const gc = (globalThis as { gc?: () => void }).gc
const startRssMB = mb(process.memoryUsage().rss)

/** Prints the figures; call it while what was loaded is still reachable. */
const report = (ms: number, cpuMs: number, entries: number) => {
  gc?.()
  console.log(JSON.stringify({
    mode,
    n,
    ms,
    cpuMs,
    entries,
    maxRssMB: mb(peakRss()),
    startRssMB,
    heapAfterGcMB: mb(process.memoryUsage().heapUsed)
  }))
}

const raw = async () => {
  const file = path.join(checkpointDir, "tasks.jsonl")
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const map = new Map<string, unknown>()
  let carry = ""
  const stream = createReadStream(file, { highWaterMark: 256 * 1024, encoding: "utf8" })
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = carry + chunk
    let start = 0
    let nl = text.indexOf("\n")
    while (nl !== -1) {
      const o = JSON.parse(text.slice(start, nl)) as { hash: string }
      map.set(o.hash, o)
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    carry = text.slice(start)
  }
  if (carry !== "") {
    const o = JSON.parse(carry) as { hash: string }
    map.set(o.hash, o)
  }
  const ms = performance.now() - t0
  report(ms, cpuMs(c0), map.size)
  return map
}

const dfk = async () => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), "effect-dfk-bench-load-"))
  const app = App.make(
    { name: appName, input: Schema.Struct({ i: Schema.Number }), output: Schema.Number, cache: true },
    () => Effect.succeed(-1)
  )
  const layer = Dfk.layer({ runDir, checkpointMode: "manual" }).pipe(
    Layer.provide(CheckpointFiles.layer([checkpointDir]))
  )
  const program = Effect.scoped(Effect.gen(function*() {
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    const context = yield* Layer.build(layer)
    const ms = performance.now() - t0
    report(ms, cpuMs(c0), n)
    const probe = n - 1
    const value = yield* app({ i: probe }).pipe(Effect.provide(context))
    const stats = yield* Dfk.detailedStats.pipe(Effect.provide(context))
    if (value !== probe * 2 || stats.fromCheckpoint !== 1) {
      return yield* Effect.dieMessage(`The loaded checkpoint did not serve the probe call (got ${value})`)
    }
  })).pipe(
    Effect.provide(Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning)))
  )
  try {
    await Effect.runPromise(program)
  } finally {
    rmSync(runDir, { recursive: true, force: true })
  }
}

await (mode === "raw" ? raw() : dfk())
