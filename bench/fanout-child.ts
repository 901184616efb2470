/**
 * B8, one measurement in a fresh process (so that its peak RSS is its own):
 * `node --expose-gc bench/fanout-child.js <dfk|floor|fanout> <n> <sleepMs> [memory]`.
 * `bench/run.ts` runs a plain-JS copy of it (see `compile.ts`).
 *
 * - `dfk`: `n` distinct calls of a cached app, all at once (`Effect.forEach` with
 *   `concurrency: "unbounded"`), under `Dfk.layer({ maxConcurrency: 8 })`: nearly every call
 *   waits for a slot. The body is `Effect.succeed` (`sleepMs` 0) or sleeps `sleepMs`.
 * - `floor`: a baseline: the same `forEach` over the bare body, no kernel, at concurrency 8
 *   (what the bodies cost with 8 at a time and nobody waiting).
 * - `fanout`: a baseline: the same `forEach` over the bare body, no kernel, unbounded (what
 *   Effect itself costs to start `n` fibers at once and run them).
 *
 * For time: a warm-up of 5 runs of 2,000 calls comes first (JIT), then the measured runs: 9 for 1,000,
 * 3 for 10,000 (the median is reported), one above; peak RSS is taken after the first.
 * With `memory`: no warm-up and one run, so that its peak RSS over the RSS before it is what
 * the run needed (a warm-up leaves a heap already grown, which hides the growth of small runs).
 * Prints one JSON line: `{ mode, n, sleepMs, ms, reps, cpuMs, maxRssMB, startRssMB }` (`ms` the
 * median wall time of a run, `cpuMs` the mean CPU time of one).
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { mkdtempSync, rmSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { App, Dfk } from "../mod.ts"
import { mb, peakRss } from "./child-util.ts"

const [mode, nArg, sleepArg, memoryArg] = process.argv.slice(2)
/** `memory`: no warm-up, one run: its peak RSS over the process's start is the run's alone. */
const memoryRun = memoryArg === "memory"
const n = Number(nArg)
const sleepMs = Number(sleepArg ?? 0)
if ((mode !== "dfk" && mode !== "floor" && mode !== "fanout") || !Number.isInteger(n) || !Number.isFinite(sleepMs)) {
  console.error("Usage: fanout-child.ts <dfk|floor|fanout> <n> <sleepMs>")
  process.exit(2)
}
const SLOTS = 8

const body = ({ x }: { readonly x: number }): Effect.Effect<number> =>
  sleepMs > 0 ? Effect.as(Effect.sleep(sleepMs), x) : Effect.succeed(x)
const app = App.make(
  { name: "fanout", input: Schema.Struct({ x: Schema.Number }), output: Schema.Number, cache: true },
  body
)
const inputs = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ x: from + i }))

/** Runs `count` calls (from input `from` on) and returns the wall time of the calls alone. */
const timed = <E, R>(calls: Effect.Effect<unknown, E, R>): Effect.Effect<number, E, R> =>
  Effect.suspend(() => {
    const t0 = performance.now()
    return Effect.as(calls, undefined).pipe(Effect.map(() => performance.now() - t0))
  })

// The kernel is built before the clock starts (run dir allocation is not part of a call).
const kernelRun = (count: number, from: number) => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), "effect-dfk-bench-fanout-"))
  return timed(Effect.forEach(inputs(from, count), app, { concurrency: "unbounded", discard: true })).pipe(
    Effect.zip(Dfk.stats),
    Effect.flatMap(([ms, stats]) =>
      stats.misses === count ? Effect.succeed(ms) : Effect.dieMessage(`B8: ${stats.misses} misses for ${count} calls`)
    ),
    Effect.provide(Dfk.layer({ runDir, maxConcurrency: SLOTS })),
    Effect.ensuring(Effect.sync(() => rmSync(runDir, { recursive: true, force: true })))
  )
}
const bareRun = (count: number, from: number) =>
  timed(
    Effect.forEach(inputs(from, count), body, { concurrency: mode === "floor" ? SLOTS : "unbounded", discard: true })
  )

const run = (count: number, from: number): Effect.Effect<number, unknown, never> =>
  (mode === "dfk" ? kernelRun(count, from) : bareRun(count, from)).pipe(
    Effect.provide(Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning)))
  ) as Effect.Effect<number, unknown, never>

const gc = (globalThis as { gc?: () => void }).gc
if (!memoryRun) { for (let r = 0; r < 5; r++) await Effect.runPromise(run(2_000, -1_000_000 * (r + 1))) }
gc?.()
const startRssMB = mb(process.memoryUsage().rss)
// Small runs are repeated (the median is reported): a single one is within timer noise.
const reps = memoryRun ? 1 : n <= 1_000 ? 9 : n <= 10_000 ? 3 : 1
const times: Array<number> = []
const c0 = process.cpuUsage()
let maxRss = 0
for (let r = 0; r < reps; r++) {
  times.push(await Effect.runPromise(run(n, r * n)))
  // Peak RSS is the first run's (later ones add what the earlier left for the GC).
  if (r === 0) maxRss = peakRss()
}
const cpu = process.cpuUsage(c0)
times.sort((a, b) => a - b)
const ms = times[(reps - 1) >> 1]!
console.log(JSON.stringify({
  mode,
  n,
  sleepMs,
  ms,
  reps,
  cpuMs: (cpu.user + cpu.system) / 1000 / reps,
  maxRssMB: mb(maxRss),
  startRssMB
}))
