/**
 * Concurrency in one process: many calls and many concurrent checkpoint passes on one kernel.
 * Every distinct result is written exactly once, lines never interleave or tear, and the
 * counters add up. (Several processes on one `runDir`: test/e2e/processes.test.ts.)
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll } from "vitest"
import { App, CheckpointStore, Dfk, Memo } from "../../mod.ts"
import type { DfkStats } from "../../mod.ts"
import { makeTempDir, readJsonLines } from "../fixtures/child.ts"

const temps: Array<string> = []
afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})
const tempDir = (prefix: string) => {
  const dir = makeTempDir(prefix)
  temps.push(dir)
  return dir
}

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

describe("concurrency", () => {
  it.live("10,000 calls over 2,000 inputs at concurrency 256 with 50 concurrent checkpoints in a periodic run", () => {
    const runDir = path.join(tempDir("effect-dfk-conc-"), "runinfo")
    const CALLS = 10_000
    const DISTINCT = 2_000
    const next = random(4)
    const order = Array.from({ length: CALLS }, () => Math.floor(next() * DISTINCT))
    // Every input at least once.
    for (let x = 0; x < DISTINCT; x++) order[(x * 5) % CALLS] = x
    const delays = Array.from({ length: CALLS }, () => Math.floor(next() * 3))

    let bodies = 0
    const square = App.make(
      {
        name: "conc_square",
        input: Schema.Struct({ x: Schema.Number, delay: Schema.Number }),
        output: Schema.Struct({ x: Schema.Number, y: Schema.Number }),
        cache: true,
        ignoreForCache: ["delay"]
      },
      ({ delay, x }) =>
        Effect.suspend(() => {
          bodies++
          const result = { x, y: x * x }
          return delay === 0 ? Effect.as(Effect.yieldNow(), result) : Effect.as(Effect.sleep(delay), result)
        })
    )

    return Effect.gen(function*() {
      const samples: Array<DfkStats> = []
      const { checkpointDir, dirs, results, stats } = yield* Effect.gen(function*() {
        // Watch the counters while the run goes on.
        const sampler = yield* Effect.fork(
          Effect.forever(
            Effect.zipRight(
              Effect.flatMap(Dfk.detailedStats, (s) => Effect.sync(() => samples.push(s))),
              Effect.sleep(2)
            )
          )
        )
        const [results, dirs] = yield* Effect.all([
          Effect.forEach(order, (x, i) => square({ x, delay: delays[i]! }), { concurrency: 256 }),
          Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            (i) => Effect.zipRight(Effect.sleep(i % 20), Dfk.checkpoint),
            { concurrency: "unbounded" }
          )
        ], { concurrency: "unbounded" })
        yield* Fiber.interrupt(sampler)
        const checkpointDir = yield* Dfk.checkpoint
        const stats = yield* Dfk.detailedStats
        return { checkpointDir, dirs, results, stats }
      }).pipe(Effect.provide(Dfk.layer({ runDir, checkpointMode: "periodic", checkpointPeriod: "5 millis" })))

      // Every call got its own input's result.
      results.forEach((r, i) => assert.deepStrictEqual(r, { x: order[i], y: order[i]! * order[i]! }))
      assert.strictEqual(bodies, DISTINCT, "each distinct input ran once")
      assert.isTrue(dirs.every((d) => d === checkpointDir))

      // Stats add up.
      assert.strictEqual(stats.tasks, CALLS)
      assert.strictEqual(stats.misses, DISTINCT)
      assert.strictEqual(stats.hits, CALLS - DISTINCT)
      assert.strictEqual(stats.hits + stats.misses, stats.tasks)
      assert.strictEqual(stats.fromCheckpoint, 0)
      assert.strictEqual(stats.running, 0)
      assert.strictEqual(stats.checkpointed, DISTINCT)
      assert.strictEqual(stats.pending, 0)
      let last: DfkStats | undefined
      for (const s of samples) {
        // Calls still waiting (for an input encoding, or on an in-flight call) are neither hit nor miss yet.
        assert.isAtMost(s.hits + s.misses, s.tasks, JSON.stringify(s))
        assert.isAtMost(s.checkpointed + s.pending, s.misses, JSON.stringify(s))
        if (last !== undefined) {
          assert.isAtLeast(s.checkpointed, last.checkpointed)
          assert.isAtLeast(s.tasks, last.tasks)
        }
        last = s
      }

      // The file: one entry per distinct input, no duplicates, no torn or interleaved lines.
      const file = path.join(checkpointDir, "tasks.jsonl")
      const text = fs.readFileSync(file, "utf8")
      assert.isTrue(text.endsWith("\n"))
      const { entries, tail } = readJsonLines(file)
      assert.strictEqual(tail, "")
      assert.strictEqual(entries.length, DISTINCT)
      const hashes = new Set(entries.map((e) => e.hash))
      assert.strictEqual(hashes.size, DISTINCT, "a key is written twice")
      const xs = new Set(entries.map((e) => e.input.x))
      assert.strictEqual(xs.size, DISTINCT)
      for (const e of entries) {
        assert.deepStrictEqual(Object.keys(e), ["v", "hash", "app", "version", "input", "result", "time"])
        assert.strictEqual(e.app, "conc_square")
        assert.deepStrictEqual(e.input, { x: e.input.x })
        assert.deepStrictEqual(e.result, { x: e.input.x, y: e.input.x * e.input.x })
        assert.strictEqual(e.hash, yield* Memo.key({ name: "conc_square", input: { x: e.input.x } }))
      }

      // And it loads back whole.
      const loaded = yield* Effect.gen(function*() {
        const store = yield* CheckpointStore
        let n = 0
        yield* store.load(checkpointDir, () => {
          n++
        })
        return n
      }).pipe(Effect.provide(CheckpointStore.layerFileSystem))
      assert.strictEqual(loaded, DISTINCT)
    }).pipe(
      Effect.provide(NodeContext.layer),
      Effect.provide(Logger.minimumLogLevel(LogLevel.None))
    )
  }, 120_000)
})
