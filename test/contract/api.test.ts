/**
 * DESIGN.md §2 (public API), checked through the public API: every name of the contract with
 * its type, every DfkConfig field, and the semantics of `retries` and `maxConcurrency`.
 * (The errors' fields: test/errors.test.ts.)
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformPath from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, getLastCheckpoint } from "effect-dfk"
import type { AppCacheError, CheckpointError, DfkConfig, DfkError } from "effect-dfk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { checkpointEntries, tmpDir, withKernel } from "../util.ts"
import { Boom, kernel, makeDouble, stats } from "./helpers.ts"

// ---------------------------------------------------------------------------------------------
// §2 Public API
// ---------------------------------------------------------------------------------------------

describe("§2 public API", () => {
  it("exports every name of the contract", () => {
    assert.isFunction(App.make)
    assert.isTrue(Context.isTag(Dfk))
    assert.isFunction(Dfk.layer)
    assert.isTrue(Effect.isEffect(Dfk.checkpoint))
    assert.isTrue(Effect.isEffect(Dfk.runDir))
    assert.isTrue(Effect.isEffect(Dfk.stats))
    assert.isTrue(Context.isTag(CheckpointFiles))
    assert.isFunction(CheckpointFiles.layer)
    assert.isFunction(CheckpointFiles.all)
    assert.isFunction(CheckpointFiles.last)
    assert.isTrue(Layer.isLayer(CheckpointFiles.none))
    assert.isFunction(getAllCheckpoints)
    assert.isFunction(getLastCheckpoint)
    assert.isTrue(Context.isTag(CheckpointStore))
  })

  it("the names have the contract's types (checked by tsc) and are effects and layers", () => {
    const app = App.make(
      { name: "t", input: Schema.Struct({ x: Schema.Number }), output: Schema.String },
      ({ x }) => x > 0 ? Effect.succeed(String(x)) : Effect.fail(new Boom({ n: x }))
    )
    const call: Effect.Effect<string, Boom | AppCacheError, Dfk> = app({ x: 1 })
    const layer: Layer.Layer<Dfk, DfkError, FileSystem.FileSystem | PlatformPath.Path> = Dfk.layer({})
    const checkpoint: Effect.Effect<string, CheckpointError, Dfk> = Dfk.checkpoint
    const runDir: Effect.Effect<string, never, Dfk> = Dfk.runDir
    const counters: Effect.Effect<
      { tasks: number; hits: number; misses: number; checkpointed: number; pending: number },
      never,
      Dfk
    > = Dfk.stats
    const all: Effect.Effect<ReadonlyArray<string>, unknown, FileSystem.FileSystem | PlatformPath.Path> =
      getAllCheckpoints()
    const last: Effect.Effect<ReadonlyArray<string>, unknown, FileSystem.FileSystem | PlatformPath.Path> =
      getLastCheckpoint("x")
    const listed: Layer.Layer<CheckpointFiles> = CheckpointFiles.layer(["a", "b"])
    const none: Layer.Layer<CheckpointFiles> = CheckpointFiles.none
    for (const e of [call, checkpoint, runDir, counters, all, last]) assert.isTrue(Effect.isEffect(e))
    for (const l of [layer, listed, none]) assert.isTrue(Layer.isLayer(l))
  })

  it.scoped("DfkConfig: every documented field and period form builds a kernel", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const configs: Array<DfkConfig> = [
        { memoize: true, checkpointMode: "periodic", checkpointPeriod: "00:00:05", retries: 1, maxConcurrency: 2 },
        { checkpointMode: "periodic", checkpointPeriod: Duration.seconds(3) },
        { checkpointMode: "periodic", checkpointPeriod: "3 seconds" },
        ...["00:00:01", "01:00:00", "100:59:59", "0:0:1"].map((checkpointPeriod): DfkConfig => ({
          checkpointMode: "periodic",
          checkpointPeriod
        })),
        { checkpointPeriod: "00:00:05" }, // a period with no mode
        {}
      ]
      for (const config of configs) {
        const built = yield* Effect.either(
          Dfk.runDir.pipe(Effect.provide(kernel({ ...config, runDir: root }, CheckpointFiles.none)))
        )
        assert.strictEqual(built._tag, "Right", JSON.stringify(config))
      }
    }))
})

// ---------------------------------------------------------------------------------------------
// §2 DfkConfig: retries and maxConcurrency
// ---------------------------------------------------------------------------------------------

describe("retries", () => {
  it.scoped("a call whose body fails twice then succeeds is one task and one miss; only the success is written", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const flaky = App.make(
        { name: "flaky", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.suspend(() => ++c.n <= 2 ? Effect.fail(new Boom({ n: c.n })) : Effect.succeed(x))
      )
      const { value, runDir } = yield* withKernel(
        { retries: 2, checkpointMode: "task_exit" },
        Effect.zip(Effect.zip(flaky(9), flaky(9)), Dfk.stats)
      )
      assert.deepStrictEqual(value[0], [9, 9])
      assert.strictEqual(c.n, 3)
      assert.deepStrictEqual(value[1], stats(2, 1, 1, 1, 0))
      assert.deepStrictEqual(checkpointEntries(runDir).map((e) => e.result), [9])
    }))

  it.scoped("retries exhausted: the last failure is memoized in-run and not written", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const bad = App.make(
        { name: "bad", input: Schema.Number, output: Schema.Number, cache: true },
        () => Effect.suspend(() => Effect.fail(new Boom({ n: ++c.n })))
      )
      const { value, runDir } = yield* withKernel(
        { retries: 3, checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const e1 = yield* Effect.flip(bad(1))
          const e2 = yield* Effect.flip(bad(1))
          yield* Dfk.checkpoint
          return { e1, e2, s: yield* Dfk.stats }
        })
      )
      assert.strictEqual(c.n, 4)
      assert.strictEqual((value.e1 as Boom).n, 4, "the final outcome")
      assert.strictEqual(value.e1, value.e2)
      assert.deepStrictEqual(value.s, stats(2, 1, 1, 0, 0))
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("retries apply to cache: false apps too; the default is no retry", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const plain = App.make(
        { name: "p", input: Schema.Number, output: Schema.Number },
        (x) => Effect.suspend(() => ++c.n % 2 === 1 ? Effect.fail(new Boom({ n: c.n })) : Effect.succeed(x))
      )
      const { value } = yield* withKernel({ retries: 1 }, plain(1))
      assert.strictEqual(value, 1)
      assert.strictEqual(c.n, 2)
      const e = yield* withKernel({}, Effect.flip(plain(1)))
      assert.strictEqual(e.value._tag, "Boom")
      assert.strictEqual(c.n, 3)
    }))
})

describe("maxConcurrency", () => {
  it.scoped("at most N app bodies run at once, cache: false apps included", () =>
    Effect.gen(function*() {
      let running = 0
      let peak = 0
      const busy = (name: string, cache: boolean) =>
        App.make(
          { name, input: Schema.Number, output: Schema.Number, cache },
          (x) =>
            Effect.sync(() => {
              running++
              peak = Math.max(peak, running)
            }).pipe(
              Effect.zipRight(Effect.sleep("15 millis")),
              Effect.ensuring(Effect.sync(() => running--)),
              Effect.as(x)
            )
        )
      const cached = busy("busy", true)
      const plain = busy("busy2", false)
      const inputs = Array.from({ length: 12 }, (_, i) => i)
      const { value } = yield* withKernel(
        { maxConcurrency: 3 },
        Effect.gen(function*() {
          const all = yield* Effect.fork(
            Effect.forEach(inputs, (i) => i % 2 ? cached(i) : plain(i), { concurrency: "unbounded" })
          )
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(all)
        })
      )
      assert.deepStrictEqual(value, inputs)
      assert.strictEqual(peak, 3)
    }))

  it.scoped("calls served from the memo or from a loaded checkpoint take no slot", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const d = makeDouble(c)
      yield* d(100).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      const blocking = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const blocker = App.make(
        { name: "blocker", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.zipRight(Deferred.succeed(blocking, undefined), Effect.as(Deferred.await(gate), x))
      )
      const out = yield* Effect.gen(function*() {
        yield* d(1)
        const holder = yield* Effect.fork(blocker(0))
        yield* Deferred.await(blocking) // the only slot is taken
        // A call that waits for a slot is still waiting when the clock passes its timeout.
        const hits = yield* Effect.fork(Effect.either(Effect.timeout(Effect.all([d(1), d(100)]), "1 second")))
        yield* TestClock.adjust("1 second")
        const served = yield* Fiber.join(hits)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        return served
      }).pipe(Effect.provide(kernel({ runDir: root, maxConcurrency: 1, checkpointMode: "manual" })))
      assert.deepStrictEqual(Either.getOrUndefined(out), [2, 200], "a hit waited for the slot")
      assert.strictEqual(c.n, 2)
    }))

  it.scoped("maxConcurrency 1 with an app calling another app does not deadlock", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const inner = makeDouble(c, "inner")
      const outer = App.make(
        { name: "outer", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => inner(x).pipe(Effect.map((y) => y + 1))
      )
      const { value } = yield* withKernel(
        { maxConcurrency: 1 },
        Effect.gen(function*() {
          const call = yield* Effect.fork(Effect.either(Effect.timeout(outer(2), "1 second")))
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(call)
        })
      )
      assert.strictEqual(Either.getOrUndefined(value), 5, "deadlocked")
    }))
})
