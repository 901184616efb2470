/**
 * `Dfk`, the kernel's own API: `Dfk.layer` (the run dirs it allocates, the configurations it
 * refuses), the warnings of a kernel closed under a running call or given a period it ignores,
 * `Dfk.progress`, and how `maxConcurrency` serves a fan-out (first come, first served; nested
 * calls first). The checkpoint modes (DESIGN §3) are checked in test/contract/semantics.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk } from "effect-dfk"
import type { DfkConfig } from "effect-dfk"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, platform, tmpDir, withKernel } from "./util.ts"

const double = App.make(
  { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.succeed(x * 2)
)

const kernelLayer = (config: DfkConfig, files: Layer.Layer<CheckpointFiles> = CheckpointFiles.none) =>
  Dfk.layer(config).pipe(Layer.provide(files), Layer.provide(platform))

describe("Dfk.layer", () => {
  it.scoped("makes run dirs 000, 001, … and ignores non-numeric names", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      fs.mkdirSync(path.join(root, "notes"))
      fs.writeFileSync(path.join(root, "X"), "")
      const first = yield* Effect.provide(Dfk.runDir, kernelLayer({ runDir: root }))
      const second = yield* Effect.provide(Dfk.runDir, kernelLayer({ runDir: root }))
      assert.strictEqual(first, path.join(root, "000"))
      assert.strictEqual(second, path.join(root, "001"))
    }))

  it.scoped("counts past 999 to 1000, numerically", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      fs.mkdirSync(path.join(root, "998"))
      const a = yield* Effect.provide(Dfk.runDir, kernelLayer({ runDir: root }))
      const b = yield* Effect.provide(Dfk.runDir, kernelLayer({ runDir: root }))
      const c = yield* Effect.provide(Dfk.runDir, kernelLayer({ runDir: root }))
      assert.deepStrictEqual([a, b, c].map((d) => path.basename(d)), ["999", "1000", "1001"])
    }))

  it.scoped("8 kernels started at once get 8 distinct run dirs", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const dirs = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () => Effect.provide(Dfk.runDir, kernelLayer({ runDir: root })),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(dirs).size, 8)
      assert.deepStrictEqual(fs.readdirSync(root).sort(), ["000", "001", "002", "003", "004", "005", "006", "007"])
    }))

  it.scoped("rejects a bad configuration with ConfigurationError", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const fail = (config: DfkConfig) =>
        Effect.flip(Effect.provide(Dfk.runDir, kernelLayer({ runDir: root, ...config })))
      const noPeriod = yield* fail({ checkpointMode: "periodic" })
      assert.strictEqual(noPeriod._tag, "ConfigurationError")
      assert.strictEqual((noPeriod as any).field, "checkpointPeriod")
      for (const checkpointPeriod of ["1:2", "00:61:00", "soon", "-1 seconds", 0]) {
        const e = yield* fail({ checkpointMode: "periodic", checkpointPeriod })
        assert.strictEqual(e._tag, "ConfigurationError", `accepted ${checkpointPeriod}`)
      }
      assert.strictEqual((yield* fail({ retries: -1 }))._tag, "ConfigurationError")
      assert.strictEqual((yield* fail({ maxConcurrency: 0 }))._tag, "ConfigurationError")
      assert.strictEqual((yield* fail({ checkpointMode: "sometimes" as any }))._tag, "ConfigurationError")
    }))
})

describe("refresh", () => {
  /** Apps whose results count their body runs, so a new entry is told from an old one. */
  const stamped = () => {
    const runs: Record<string, number> = {}
    const make = (name: string) =>
      App.make(
        { name, input: Schema.Number, output: Schema.String, cache: true },
        (x) => Effect.sync(() => `${name}(${x}) #${runs[name] = (runs[name] ?? 0) + 1}`)
      )
    return { runs, a: make("a"), b: make("b") }
  }
  /** A kernel under default resume (every checkpoint under runDir). */
  const resuming = (config: DfkConfig) => Dfk.layer(config).pipe(Layer.provide(platform))

  it.scoped("refresh: true runs every app again although entries exist; the new entries win from then on", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { a, b, runs } = stamped()
      const run = (refresh?: boolean) =>
        Effect.provide(
          Effect.all([a(1), b(1)]),
          resuming({ runDir: root, checkpointMode: "task_exit", refresh })
        )
      assert.deepStrictEqual(yield* run(), ["a(1) #1", "b(1) #1"])
      assert.deepStrictEqual(yield* run(), ["a(1) #1", "b(1) #1"])
      assert.deepStrictEqual(yield* run(true), ["a(1) #2", "b(1) #2"])
      assert.deepStrictEqual(yield* run(), ["a(1) #2", "b(1) #2"], "the last entry wins")
      assert.deepStrictEqual(runs, { a: 2, b: 2 })
    }))

  it.scoped("refresh: [names] runs only the named apps again", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { a, b, runs } = stamped()
      const run = (refresh?: ReadonlyArray<string>) =>
        Effect.provide(Effect.all([a(1), b(1)]), resuming({ runDir: root, checkpointMode: "task_exit", refresh }))
      yield* run()
      assert.deepStrictEqual(yield* run(["b"]), ["a(1) #1", "b(1) #2"])
      assert.deepStrictEqual(yield* run(), ["a(1) #1", "b(1) #2"])
      assert.deepStrictEqual(runs, { a: 1, b: 2 })
    }))

  it.scoped("under refresh, concurrent calls of a key share one body and a repeat call gets the fresh value", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { a, runs } = stamped()
      yield* Effect.provide(a(1), resuming({ runDir: root, checkpointMode: "task_exit" }))
      const [values, stats] = yield* Effect.provide(
        Effect.zip(
          Effect.zipRight(Effect.all([a(1), a(1), a(1)], { concurrency: "unbounded" }), Effect.all([a(1), a(1)])),
          Dfk.stats
        ),
        resuming({ runDir: root, checkpointMode: "task_exit", refresh: true })
      )
      assert.deepStrictEqual(values, ["a(1) #2", "a(1) #2"])
      assert.deepStrictEqual(runs, { a: 2 })
      assert.deepStrictEqual([stats.tasks, stats.hits, stats.misses], [5, 4, 1])
    }))

  it.scoped("refresh must be true, false or a list of app names: a ConfigurationError otherwise", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      for (const refresh of ["a", [""], [1], {}] as Array<any>) {
        const e = yield* Effect.flip(Effect.provide(Dfk.runDir, kernelLayer({ runDir: root, refresh })))
        assert.strictEqual(e._tag, "ConfigurationError", JSON.stringify(refresh))
        assert.strictEqual((e as any).field, "refresh")
      }
      const config = yield* Effect.provide(Effect.map(Dfk, (dfk) => dfk.config.refresh), kernelLayer({ runDir: root }))
      assert.strictEqual(config, false)
    }))
})

describe("checkpoint modes", () => {
  it.scoped("a call its scope did not wait for: a warning when the kernel closes, another when its result comes", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const root = yield* tmpDir
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const late = App.make(
        { name: "late", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(release)), Effect.as(x * 2))
      )
      const value = yield* Effect.gen(function*() {
        const scope = yield* Scope.make()
        const kernel = yield* Layer.buildWithScope(kernelLayer({ runDir: root, checkpointMode: "dfk_exit" }), scope)
        // A daemon: closing the kernel's scope does not interrupt it (as with ManagedRuntime.dispose).
        const call = yield* Effect.forkDaemon(Effect.provide(late(4), kernel))
        yield* Deferred.await(started)
        yield* Scope.close(scope, Exit.void)
        yield* Deferred.succeed(release, undefined)
        return yield* Fiber.join(call)
      }).pipe(Effect.provide(logs.layer))
      assert.strictEqual(value, 8) // the caller still gets its result
      const warnings = logs.lines.filter((l) => l.level === "WARN").map((l) => l.message)
      assert.include(warnings, "1 app body still running as the kernel closes: their results will not be checkpointed")
      assert.include(warnings, "A result of late came after the kernel closed, so it is not checkpointed")
      assert.deepStrictEqual(checkpointEntries(path.join(root, "000")), [])
    }))

  it.scoped("a checkpointPeriod without the periodic mode is ignored with a warning", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      yield* withKernel({ checkpointMode: "dfk_exit", checkpointPeriod: "00:00:05" }, double(1)).pipe(
        Effect.provide(logs.layer)
      )
      const warnings = logs.lines.filter((l) => l.level === "WARN")
      assert.strictEqual(warnings.length, 1, JSON.stringify(logs.lines))
      assert.include(warnings[0]!.message, "checkpointPeriod is set but checkpointMode is dfk_exit, so it is ignored")
      const quiet = captureLogs()
      yield* withKernel({ checkpointMode: "periodic", checkpointPeriod: "00:00:05" }, double(1)).pipe(
        Effect.provide(quiet.layer)
      )
      assert.isFalse(quiet.lines.some((l) => l.level === "WARN"))
    }))
})

describe("observability", () => {
  it.live("Dfk.progress streams the live counters and ends when the kernel closes", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const gate = yield* Deferred.make<void>()
      const app = App.make(
        { name: "obs_progress", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.as(Deferred.await(gate), x)
      )
      const seen = yield* Effect.gen(function*() {
        const collector = yield* Effect.fork(Stream.runCollect(Dfk.progress({ interval: "1 millis" })))
        const work = yield* Effect.fork(Effect.forEach([1, 2, 3], (x) => app(x), { concurrency: "unbounded" }))
        yield* Effect.sleep("20 millis")
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(work)
        yield* Effect.sleep("20 millis")
        return collector
      }).pipe(
        Effect.provide(Dfk.layer({ runDir: root }).pipe(Layer.provide(CheckpointFiles.none), Layer.provide(platform)))
      )
      const values = Chunk.toReadonlyArray(yield* Fiber.join(seen))
      assert.deepStrictEqual(values[0], {
        tasks: 0,
        hits: 0,
        misses: 0,
        fromCheckpoint: 0,
        running: 0,
        checkpointed: 0,
        pending: 0
      })
      assert.isTrue(values.some((v) => v.running === 3))
      assert.deepStrictEqual(values.at(-1), {
        tasks: 3,
        hits: 0,
        misses: 3,
        fromCheckpoint: 0,
        running: 0,
        checkpointed: 0,
        pending: 3
      })
    }).pipe(Effect.scoped), { timeout: 20_000 })
})

// ---------------------------------------------------------------------------------------------
// `maxConcurrency` under a fan-out much wider than it: 20,000 waiting calls are served first
// come, first served, never more than N bodies at once, and waiters interrupted while they wait
// take no slot and leave nothing behind; nested apps borrow their parent's slot and are served
// before the top-level calls still waiting.
// ---------------------------------------------------------------------------------------------

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Waits until the kernel has seen `n` calls. */
const untilTasks = (n: number) => Effect.repeat(Dfk.stats, { until: (s) => s.tasks >= n }).pipe(Effect.asVoid)

describe("maxConcurrency", () => {
  it.scoped(
    "20,000 waiting calls on 4 slots: FIFO service, at most 4 bodies at once, half the waiters interrupted",
    () =>
      Effect.gen(function*() {
        const CALLS = 20_000
        const SLOTS = 4
        const gate = yield* Deferred.make<void>()
        const started: Array<number> = []
        let running = 0
        let peak = 0
        const square = App.make(
          { name: "fan_square", input: Schema.Number, output: Schema.Number, cache: true },
          (x) =>
            Effect.suspend(() => {
              started.push(x)
              peak = Math.max(peak, ++running)
              // The first bodies hold their slots until every call waits; the others end at once.
              return Effect.as(x < SLOTS ? Deferred.await(gate) : Effect.yieldNow(), x * x)
            }).pipe(Effect.ensuring(Effect.sync(() => running--)))
        )
        const { value } = yield* withKernel(
          { maxConcurrency: SLOTS },
          Effect.gen(function*() {
            // One fiber per call, forked in order: each runs to its wait before the next starts.
            const fibers = yield* Effect.forEach(range(0, CALLS), (x) => Effect.fork(square(x)))
            yield* untilTasks(CALLS)
            const whileWaiting = yield* Dfk.detailedStats
            // Half the waiters (every odd input past the first four) leave before they are served.
            const leaving = fibers.filter((_, x) => x >= SLOTS && x % 2 === 1)
            yield* Fiber.interruptAll(leaving)
            yield* Deferred.succeed(gate, undefined)
            const exits = yield* Effect.forEach(fibers, Fiber.await)
            return { whileWaiting, exits, stats: yield* Dfk.detailedStats }
          })
        )

        assert.strictEqual(value.whileWaiting.running, SLOTS, "only the first calls hold slots while the rest wait")
        assert.strictEqual(value.whileWaiting.tasks, CALLS)
        const served = range(0, CALLS).filter((x) => x < SLOTS || x % 2 === 0)
        assert.deepStrictEqual(started, served, "bodies start in the order of the calls, without the interrupted ones")
        assert.strictEqual(peak, SLOTS)
        for (const x of range(0, CALLS)) {
          const exit = value.exits[x]!
          if (x >= SLOTS && x % 2 === 1) assert.isTrue(Exit.isInterrupted(exit), `call ${x} was interrupted`)
          else assert.deepStrictEqual(exit, Exit.succeed(x * x))
        }
        assert.strictEqual(value.stats.running, 0)
        // Interrupted waiters count as misses (the call was one), but their bodies never ran.
        assert.strictEqual(value.stats.misses, CALLS)
        assert.strictEqual(value.stats.hits, 0)
      }),
    60_000
  )

  it.scoped("interrupted waiters leave no trace: every slot is still there for later calls", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let running = 0
      let peak = 0
      let bodies = 0
      const held = App.make(
        { name: "held", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            bodies++
            peak = Math.max(peak, ++running)
            return Effect.as(Deferred.await(gate), x)
          }).pipe(Effect.ensuring(Effect.sync(() => running--)))
      )
      const { value } = yield* withKernel(
        { maxConcurrency: 2 },
        Effect.gen(function*() {
          // Two calls hold the slots; 1,000 wait and are all interrupted.
          const holders = yield* Effect.forEach([0, 1], (x) => Effect.fork(held(x)))
          const waiters = yield* Effect.forEach(range(2, 1002), (x) => Effect.fork(held(x)))
          yield* untilTasks(1002)
          yield* Fiber.interruptAll(waiters)
          // Then 2 more wait; opening the gate serves them, two at a time.
          const later = yield* Effect.forEach([2000, 2001, 2002], (x) => Effect.fork(held(x)))
          yield* untilTasks(1005)
          yield* Deferred.succeed(gate, undefined)
          return {
            holders: yield* Effect.forEach(holders, Fiber.join),
            later: yield* Effect.forEach(later, Fiber.join),
            stats: yield* Dfk.detailedStats
          }
        })
      )
      assert.deepStrictEqual(value.holders, [0, 1])
      assert.deepStrictEqual(value.later, [2000, 2001, 2002])
      assert.strictEqual(peak, 2)
      assert.strictEqual(bodies, 5, "interrupted waiters never ran")
      assert.strictEqual(value.stats.running, 0)
    }))

  it.scoped("nested apps borrow their parent's slot and are served before top-level calls that wait", () =>
    Effect.gen(function*() {
      const order: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const child = App.make(
        { name: "child", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => (order.push(`child ${x}`), x + 1))
      )
      const parent = App.make(
        { name: "parent", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.gen(function*() {
            order.push(`parent ${x}`)
            if (x === 0) yield* Deferred.await(gate)
            const [a, b] = yield* Effect.all([child(x * 10), child(x * 10 + 1)], { concurrency: "unbounded" })
            return a + b
          })
      )
      const { value } = yield* withKernel(
        { maxConcurrency: 1 },
        Effect.gen(function*() {
          const fibers = yield* Effect.forEach(range(0, 4), (x) => Effect.fork(parent(x)))
          yield* untilTasks(4)
          yield* Deferred.succeed(gate, undefined)
          return { results: yield* Effect.forEach(fibers, Fiber.join), stats: yield* Dfk.detailedStats }
        })
      )
      assert.deepStrictEqual(value.results, [3, 23, 43, 63])
      // A parent lends its slot as it calls its children, so the next top-level call starts;
      // from then on the waiting children (and parents taking their slots back) go first, so
      // no more than two parents are ever part-way through.
      assert.deepStrictEqual(order, [
        "parent 0",
        "parent 1",
        "child 0",
        "child 1",
        "child 10",
        "child 11",
        "parent 2",
        "parent 3",
        "child 20",
        "child 21",
        "child 30",
        "child 31"
      ])
      assert.strictEqual(value.stats.running, 0)
    }))
})

describe("Dfk.invalidate", () => {
  const counted = () => {
    const runs = { n: 0 }
    const app = App.make(
      { name: "counted", input: Schema.Struct({ x: Schema.Number }), output: Schema.Number, cache: true },
      ({ x }) => Effect.sync(() => (runs.n++, x * 3))
    )
    return { runs, app }
  }

  it.scoped("the memo forgets the key at once, a tombstone goes to this run's checkpoint, and later runs miss", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { app, runs } = counted()
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "dfk_exit" }).pipe(Layer.provide(platform))
      yield* Effect.gen(function*() {
        yield* app({ x: 1 })
        yield* app({ x: 2 })
        const key = yield* Dfk.invalidate(app, { x: 1 })
        assert.match(key, /^[0-9a-f]{64}$/)
        yield* app({ x: 1 }) // the memo forgot it: the body runs again
        assert.strictEqual(runs.n, 3)
      }).pipe(Effect.provide(kernel))
      // In the file: x=1's entry, x=2's, the tombstone of x=1 (written at once with what was
      // pending), then x=1's new entry at the close.
      const lines = checkpointEntries(path.join(root, "000"))
      assert.deepStrictEqual(lines.map((l) => [l.input.x, l.deleted ?? false, "result" in l]), [
        [1, false, true],
        [2, false, true],
        [1, true, false],
        [1, false, true]
      ])
      // A later run: x=1's last entry is the new result, x=2 is served: nothing runs.
      yield* Effect.all([app({ x: 1 }), app({ x: 2 })]).pipe(Effect.provide(kernel))
      assert.strictEqual(runs.n, 3)
      // Invalidated in a run of its own (no calls), then a later run misses it.
      yield* Dfk.invalidate(app, { x: 2 }).pipe(Effect.provide(kernel))
      yield* app({ x: 2 }).pipe(Effect.provide(kernel))
      assert.strictEqual(runs.n, 4)
    }))

  it.scoped("a loaded entry is dropped: the next call of the key in the same run runs the body", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { app, runs } = counted()
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      yield* app({ x: 5 }).pipe(Effect.provide(kernel))
      const stats = yield* Effect.gen(function*() {
        yield* Dfk.invalidate(app, { x: 5 })
        yield* app({ x: 5 })
        return yield* Dfk.stats
      }).pipe(Effect.provide(kernel))
      assert.strictEqual(runs.n, 2)
      assert.strictEqual(stats.misses, 1)
      assert.strictEqual(stats.hits, 0)
    }))

  it.scoped("an input that does not encode is an AppCacheError, and nothing is written", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const { app } = counted()
      const error = yield* Effect.flip(
        Dfk.invalidate(app, { x: "nope" } as never).pipe(Effect.provide(kernelLayer({ runDir: root })))
      )
      assert.strictEqual(error._tag, "AppCacheError")
      assert.isFalse(fs.existsSync(path.join(root, "000", "checkpoint", "tasks.jsonl")))
    }))
})

describe("Dfk.explain", () => {
  const greet = App.make(
    {
      name: "greet",
      version: "2",
      input: Schema.Struct({ name: Schema.String, lang: Schema.String, verbose: Schema.optional(Schema.Boolean) }),
      output: Schema.String,
      cache: true,
      ignoreForCache: ["verbose"]
    },
    ({ lang, name }) => Effect.succeed(`${lang}: hello ${name}`)
  )

  it.scoped("a hit names the checkpoint; a miss the closest entries and exactly what differs; a tombstone says so", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      yield* Effect.all([greet({ name: "ada", lang: "en" }), greet({ name: "bob", lang: "en" })]).pipe(
        Effect.provide(kernel)
      )
      const first = path.join(root, "000", "checkpoint")
      const [hit, changed, tombstoned, memo] = yield* Effect.gen(function*() {
        const hit = yield* Dfk.explain(greet, { name: "ada", lang: "en", verbose: true })
        const changed = yield* Dfk.explain(greet, { name: "ada", lang: "fr" })
        yield* Dfk.invalidate(greet, { name: "bob", lang: "en" })
        const tombstoned = yield* Dfk.explain(greet, { name: "bob", lang: "en" })
        yield* greet({ name: "cy", lang: "en" })
        const memo = yield* Dfk.explain(greet, { name: "cy", lang: "en" })
        return [hit, changed, tombstoned, memo] as const
      }).pipe(Effect.provide(kernel))

      assert.strictEqual(hit._tag, "Hit")
      if (hit._tag !== "Hit") return
      assert.strictEqual(hit.checkpoint, first)
      assert.deepStrictEqual(hit.input, { name: "ada", lang: "en" })
      assert.strictEqual(hit.version, "2")

      assert.strictEqual(changed._tag, "Miss")
      if (changed._tag !== "Miss") return
      assert.strictEqual(changed.stored, 2)
      assert.deepStrictEqual(changed.closest[0]!.differences, [
        { _tag: "Changed", path: "input.lang", stored: "en", asked: "fr" }
      ])
      assert.strictEqual(changed.closest[0]!.checkpoint, first)
      assert.strictEqual(changed.closest[0]!.result, "en: hello ada")

      assert.strictEqual(tombstoned._tag, "Miss")
      if (tombstoned._tag !== "Miss") return
      const [own] = tombstoned.closest
      assert.strictEqual(own!.hash, tombstoned.key)
      assert.deepStrictEqual(own!.differences.map((d) => d._tag), ["Tombstoned"])
      const tomb = own!.differences[0]!
      assert.strictEqual(tomb._tag === "Tombstoned" && tomb.checkpoint, path.join(root, "001", "checkpoint"))

      // Computed in this run (task_exit: also in this run's checkpoint).
      assert.strictEqual(memo._tag, "Hit")
      assert.strictEqual(memo._tag === "Hit" && memo.checkpoint, path.join(root, "001", "checkpoint"))
    }))

  it.scoped("computed in this run with no checkpoint mode: a hit from the memo (checkpoint null); a version miss", () =>
    Effect.gen(function*() {
      const greet3 = App.make(
        {
          name: "greet",
          version: "3",
          input: Schema.Struct({ name: Schema.String, lang: Schema.String }),
          output: Schema.String,
          cache: true
        },
        ({ name }) => Effect.succeed(name)
      )
      const root = yield* tmpDir
      const [memo, version] = yield* Effect.gen(function*() {
        yield* greet({ name: "ada", lang: "en" })
        yield* Dfk.checkpoint
        yield* greet({ name: "eve", lang: "en" })
        return [
          yield* Dfk.explain(greet, { name: "eve", lang: "en" }),
          yield* Dfk.explain(greet3, { name: "ada", lang: "en" })
        ] as const
      }).pipe(Effect.provide(kernelLayer({ runDir: root })))
      assert.deepStrictEqual(memo._tag === "Hit" && [memo.checkpoint, memo.time], [null, null])
      assert.strictEqual(version._tag, "Miss")
      assert.deepStrictEqual(version._tag === "Miss" && version.closest[0]!.differences, [
        { _tag: "Version", stored: "2", asked: "3" }
      ])
    }))

  it.scoped("a stored result that no longer decodes is a miss saying so", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const asText = App.make(
        { name: "shape", input: Schema.Number, output: Schema.String, cache: true },
        (x) => Effect.succeed(String(x))
      )
      const asNumber = App.make(
        { name: "shape", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.succeed(x)
      )
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      yield* asText(1).pipe(Effect.provide(kernel))
      const x = yield* Dfk.explain(asNumber, 1).pipe(Effect.provide(kernel))
      assert.strictEqual(x._tag, "Miss")
      assert.deepStrictEqual(x._tag === "Miss" && x.closest[0]!.differences.map((d) => d._tag), ["Undecodable"])
    }))
})

describe("Dfk.explain and expiresAfter", () => {
  it.scoped("an entry older than the app's expiresAfter (by Effect's clock) is a miss whose difference is Expired", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      const daily = App.make(
        { name: "daily", input: Schema.Number, output: Schema.Number, cache: true, expiresAfter: "1 day" },
        (n) => Effect.succeed(n + 1)
      )
      yield* TestClock.setTime(Date.now())
      yield* Effect.provide(daily(1), kernel)
      const fresh = yield* Effect.provide(Dfk.explain(daily, 1), kernel)
      assert.strictEqual(fresh._tag, "Hit")
      yield* TestClock.adjust("2 days")
      const old = yield* Effect.provide(Dfk.explain(daily, 1), kernel)
      assert.strictEqual(old._tag, "Miss")
      if (old._tag !== "Miss") return
      assert.strictEqual(old.closest[0]!.hash, old.key)
      const d = old.closest[0]!.differences
      assert.deepStrictEqual(d.map((x) => x._tag), ["Expired"])
      assert.strictEqual(d[0]!._tag === "Expired" && d[0]!.expiresAfter, "1d")
    }))
})

describe("explainMisses", () => {
  const scale = App.make(
    {
      name: "scale",
      input: Schema.Struct({ x: Schema.Number, factor: Schema.Number }),
      output: Schema.Number,
      cache: true
    },
    ({ factor, x }) => Effect.succeed(x * factor)
  )
  const other = App.make(
    { name: "other", input: Schema.Number, output: Schema.Number, cache: true },
    (x) => Effect.succeed(x)
  )

  it.scoped("each miss of an app with stored entries is one info line saying what differs; off: no such line", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const run = (explainMisses: boolean) => {
        const logs = captureLogs()
        return Effect.as(
          Effect.all([scale({ x: 1, factor: 3 }), other(1)]).pipe(
            Effect.provide(
              Dfk.layer({ runDir: root, checkpointMode: "task_exit", explainMisses }).pipe(Layer.provide(platform))
            ),
            Effect.provide(logs.layer)
          ),
          logs.lines
        )
      }
      yield* scale({ x: 1, factor: 2 }).pipe(
        Effect.provide(Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform)))
      )
      const on = (yield* run(true)).filter((l) => l.message.startsWith("Miss:"))
      assert.strictEqual(on.length, 1, JSON.stringify(on)) // `other` has no stored entries: no line
      assert.strictEqual(on[0]!.level, "INFO")
      assert.include(on[0]!.message, "scale (key ")
      assert.include(on[0]!.message, "input.factor: changed: stored 2, asked 3")
      assert.notInclude(on[0]!.message, "\n")
      const off = (yield* run(false)).filter((l) => l.message.startsWith("Miss:"))
      assert.deepStrictEqual(off, [])
    }))

  it.scoped("a tombstoned key's miss says it was invalidated", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const kernel = (explainMisses: boolean) =>
        Dfk.layer({ runDir: root, checkpointMode: "task_exit", explainMisses }).pipe(Layer.provide(platform))
      yield* scale({ x: 4, factor: 2 }).pipe(Effect.provide(kernel(false)))
      yield* Dfk.invalidate(scale, { x: 4, factor: 2 }).pipe(Effect.provide(kernel(false)))
      const logs = captureLogs()
      yield* scale({ x: 4, factor: 2 }).pipe(Effect.provide(kernel(true)), Effect.provide(logs.layer))
      const line = logs.lines.find((l) => l.message.startsWith("Miss:"))
      assert.isDefined(line)
      assert.include(line!.message, `invalidated by a tombstone in ${path.join(root, "001", "checkpoint")}`)
    }))

  it.scoped("explainMisses must be a boolean", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const error = yield* Effect.flip(
        Effect.provide(Dfk.runDir, kernelLayer({ runDir: root, explainMisses: "yes" as never }))
      )
      assert.strictEqual(error._tag, "ConfigurationError")
    }))
})
