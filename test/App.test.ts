import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk, Memo } from "effect-dfk"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import * as path from "node:path"
import { captureLogs, checkpointEntries, exists, platform, tmpDir, withKernel } from "./util.ts"

class Boom extends Schema.TaggedError<Boom>()("Boom", { n: Schema.Number }) {}

const counter = () => {
  let n = 0
  return {
    inc: () => ++n,
    get count() {
      return n
    }
  }
}

describe("App", () => {
  it.scoped("a repeat call reuses the outcome and runs the body once", () =>
    Effect.gen(function*() {
      const runs = counter()
      const double = App.make(
        { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => (runs.inc(), x * 2))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const a = yield* double(4)
          const b = yield* double(4)
          const c = yield* double(5)
          return { a, b, c, stats: yield* Dfk.stats }
        })
      )
      assert.deepStrictEqual([value.a, value.b, value.c], [8, 8, 10])
      assert.strictEqual(runs.count, 2)
      // Exactly DESIGN's five fields.
      assert.deepStrictEqual(value.stats, { tasks: 3, hits: 1, misses: 2, checkpointed: 0, pending: 2 })
    }))

  it.scoped("results that are undefined, null, falsy or objects are memoized as they are", () =>
    Effect.gen(function*() {
      const runs = counter()
      const Result = Schema.Union(
        Schema.Undefined,
        Schema.Null,
        Schema.Number,
        Schema.String,
        Schema.Boolean,
        Schema.Struct({ a: Schema.Array(Schema.Number) })
      )
      const results: Array<typeof Result.Type> = [undefined, null, 0, "", false, { a: [1] }]
      const pick = App.make(
        { name: "pick", input: Schema.Number, output: Result, cache: true },
        (i) => Effect.sync(() => (runs.inc(), results[i]))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const first = yield* Effect.forEach(results, (_, i) => pick(i))
          const second = yield* Effect.forEach(results, (_, i) => pick(i))
          return { first, second, stats: yield* Dfk.stats }
        })
      )
      assert.deepStrictEqual(value.first, results)
      assert.strictEqual(value.second[5], value.first[5]) // the same object, not a copy
      assert.deepStrictEqual(value.second, results)
      assert.strictEqual(runs.count, results.length)
      assert.strictEqual(value.stats.hits, results.length)
    }))

  it.scoped("a body that throws instead of returning an effect is a defect, memoized in-run like a failure", () =>
    Effect.gen(function*() {
      const runs = counter()
      const throws = App.make(
        { name: "throws", input: Schema.Number, output: Schema.Number, cache: true },
        (n): Effect.Effect<number> => {
          runs.inc()
          throw new Error(`bad ${n}`)
        }
      )
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const first = yield* Effect.exit(throws(1))
          const second = yield* Effect.exit(throws(1))
          return { first, second, stats: yield* Dfk.stats }
        })
      )
      for (const exit of [value.first, value.second]) {
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      }
      assert.strictEqual(runs.count, 1)
      assert.strictEqual(value.stats.hits, 1)
      assert.strictEqual(value.stats.pending, 0)
    }))

  it.scoped("a result whose encoding throws is returned and memoized, not checkpointed, with a warning", () =>
    Effect.gen(function*() {
      const runs = counter()
      const Unencodable = Schema.transform(Schema.String, Schema.Number, {
        strict: true,
        decode: (s) => Number(s),
        encode: (): string => {
          throw new Error("no encoding here")
        }
      })
      const odd = App.make(
        { name: "odd", input: Schema.Number, output: Unencodable, cache: true },
        (n) => Effect.sync(() => (runs.inc(), n + 1))
      )
      const logs = captureLogs()
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const first = yield* odd(1)
          const second = yield* odd(1)
          return { first, second, stats: yield* Dfk.stats }
        }).pipe(Effect.provide(logs.layer))
      )
      assert.deepStrictEqual([value.first, value.second], [2, 2])
      assert.strictEqual(runs.count, 1)
      assert.strictEqual(value.stats.pending, 0)
      assert.deepStrictEqual(checkpointEntries(runDir), [])
      assert.isTrue(logs.lines.some((l) => l.level === "WARN" && l.message.includes("no encoding here")))
    }))

  it.scoped("cache: false runs the body every time (failures too)", () =>
    Effect.gen(function*() {
      const runs = counter()
      const fails = App.make(
        { name: "nocache", input: Schema.Number, output: Schema.Number },
        (n) => Effect.suspend(() => Effect.fail(new Boom({ n: runs.inc() + n })))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const first = yield* Effect.flip(fails(1))
          const second = yield* Effect.flip(fails(1))
          return { first, second, stats: yield* Dfk.stats }
        })
      )
      assert.notStrictEqual(value.first, value.second)
      assert.strictEqual(runs.count, 2)
      assert.strictEqual(value.stats.misses, 2)
      assert.strictEqual(value.stats.hits, 0)
    }))

  it.scoped("memoize: false memoizes and checkpoints nothing", () =>
    Effect.gen(function*() {
      const runs = counter()
      const inc = App.make(
        { name: "inc", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => (runs.inc(), x + 1))
      )
      const { value, runDir } = yield* withKernel(
        { memoize: false, checkpointMode: "task_exit" },
        Effect.gen(function*() {
          yield* inc(1)
          yield* inc(1)
          return yield* Dfk.stats
        })
      )
      assert.strictEqual(runs.count, 2)
      assert.strictEqual(value.hits, 0)
      assert.strictEqual(value.pending, 0)
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("20 concurrent identical calls share one execution", () =>
    Effect.gen(function*() {
      const runs = counter()
      const gate = yield* Deferred.make<void>()
      const slow = App.make(
        { name: "slow", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => runs.inc()).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(x * 3))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(
            Effect.forEach(Array.from({ length: 20 }, () => 7), (x) => slow(x), { concurrency: "unbounded" })
          )
          yield* Effect.yieldNow()
          yield* Deferred.succeed(gate, undefined)
          const results = yield* Fiber.join(fiber)
          return { results, stats: yield* Dfk.stats }
        })
      )
      assert.strictEqual(runs.count, 1)
      assert.deepStrictEqual(value.results, Array.from({ length: 20 }, () => 21))
      assert.strictEqual(value.stats.tasks, 20)
      assert.strictEqual(value.stats.misses, 1)
      assert.strictEqual(value.stats.hits, 19)
    }))

  it.scoped("an interrupted call is not memoized, and its waiters run the body instead", () =>
    Effect.gen(function*() {
      const runs = counter()
      const started = yield* Deferred.make<void>()
      const slow = App.make(
        { name: "slow", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.sync(() => runs.inc()).pipe(
            Effect.zipRight(Deferred.succeed(started, undefined)),
            Effect.zipRight(Effect.sleep("1 second")),
            Effect.as(x + 100)
          )
      )
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const executor = yield* Effect.fork(slow(1))
          yield* Deferred.await(started)
          const waiter = yield* Effect.fork(slow(1))
          yield* Effect.yieldNow()
          yield* Fiber.interrupt(executor)
          yield* TestClock.adjust("2 seconds")
          const fromWaiter = yield* Fiber.join(waiter)
          const again = yield* slow(1)
          return { fromWaiter, again, stats: yield* Dfk.stats }
        })
      )
      assert.strictEqual(value.fromWaiter, 101)
      assert.strictEqual(value.again, 101)
      assert.strictEqual(runs.count, 2) // the interrupted one and the waiter's
      assert.strictEqual(value.stats.tasks, 3)
    }))

  it.scoped("an interrupted call whose finalizer dies is not memoized either; its waiters run the body", () =>
    Effect.gen(function*() {
      const runs = counter()
      const started = yield* Deferred.make<void>()
      const fragile = App.make(
        { name: "fragile", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            runs.inc()
            // The first run hangs until interrupted, and its cleanup then dies.
            return runs.count === 1
              ? Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Effect.never),
                Effect.ensuring(Effect.die(new Error("cleanup failed")))
              )
              : Effect.succeed(x + 1)
          })
      )
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const executor = yield* Effect.fork(fragile(1))
          yield* Deferred.await(started)
          const waiters = yield* Effect.fork(Effect.all([fragile(1), fragile(1)], { concurrency: "unbounded" }))
          while ((yield* Dfk.stats).tasks < 3) yield* Effect.yieldNow()
          const interrupted = yield* Fiber.interrupt(executor)
          const fromWaiters = yield* Fiber.join(waiters)
          const again = yield* fragile(1)
          return { interrupted, fromWaiters, again }
        })
      )
      assert.isTrue(Exit.isFailure(value.interrupted) && Cause.isInterrupted(value.interrupted.cause))
      assert.deepStrictEqual(value.fromWaiters, [2, 2])
      assert.strictEqual(value.again, 2)
      assert.strictEqual(runs.count, 2) // the interrupted one, then one waiter's
    }))

  for (const config of [{}, { retries: 2 }, { maxConcurrency: 2 }] as const) {
    it.scoped(`a body that throws leaves no body counted as running (${JSON.stringify(config)}, cached or not)`, () =>
      Effect.gen(function*() {
        const make = (cache: boolean) =>
          App.make(
            { name: `throws_${cache}`, input: Schema.Number, output: Schema.Number, cache },
            (n): Effect.Effect<number> => {
              throw new Error(`bad ${n}`)
            }
          )
        const { value } = yield* withKernel(
          config,
          Effect.gen(function*() {
            const cached = make(true)
            const exits = yield* Effect.all([make(false)(1), cached(1), cached(1)].map(Effect.exit), {
              concurrency: "unbounded"
            })
            return { exits, stats: yield* Dfk.detailedStats }
          })
        )
        for (const exit of value.exits) assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        assert.strictEqual(value.stats.running, 0)
      }))
  }

  it.scoped("an input that fails to encode fails with AppCacheError before the body runs", () =>
    Effect.gen(function*() {
      const runs = counter()
      const app = App.make(
        {
          name: "strict",
          input: Schema.Struct({ n: Schema.Number.pipe(Schema.int()) }),
          output: Schema.Number,
          cache: true
        },
        ({ n }) => Effect.sync(() => (runs.inc(), n))
      )
      const nan = App.make(
        { name: "nan", input: Schema.Struct({ n: Schema.Number }), output: Schema.Number, cache: true },
        ({ n }) => Effect.sync(() => (runs.inc(), n))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const notInt = yield* Effect.flip(app({ n: 1.5 }))
          const notJson = yield* Effect.flip(nan({ n: NaN }))
          return { notInt, notJson }
        })
      )
      assert.strictEqual(value.notInt._tag, "AppCacheError")
      assert.strictEqual((value.notInt as any).app, "strict")
      assert.strictEqual(value.notJson._tag, "AppCacheError")
      assert.include((value.notJson as any).reason, "JSON")
      assert.strictEqual(runs.count, 0)
    }))

  it.scoped("ignoreForCache leaves input keys out of the key; version is part of it", () =>
    Effect.gen(function*() {
      const runs = counter()
      const make = (version?: string) =>
        App.make(
          {
            name: "v",
            input: Schema.Struct({ x: Schema.Number, label: Schema.String }),
            output: Schema.Number,
            cache: true,
            ignoreForCache: ["label"],
            ...(version === undefined ? {} : { version })
          },
          ({ x }) => Effect.sync(() => (runs.inc(), x))
        )
      const v0 = make()
      const v2 = make("2")
      const { runDir } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.gen(function*() {
          yield* v0({ x: 1, label: "a" })
          yield* v0({ x: 1, label: "b" })
          yield* v2({ x: 1, label: "c" })
          yield* Dfk.checkpoint
        })
      )
      assert.strictEqual(runs.count, 2)
      const entries = checkpointEntries(runDir)
      assert.deepStrictEqual(entries.map((e) => [e.version, e.input]), [[null, { x: 1 }], ["2", { x: 1 }]])
    }))

  it.scoped("maxConcurrency bounds running bodies; memo hits take no slot; nested apps do not deadlock", () =>
    Effect.gen(function*() {
      let running = 0
      let peak = 0
      const work = App.make(
        { name: "work", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.sync(() => {
            running++
            peak = Math.max(peak, running)
          }).pipe(
            Effect.zipRight(Effect.sleep("10 millis")),
            Effect.ensuring(Effect.sync(() => running--)),
            Effect.as(x)
          )
      )
      const outer = App.make(
        { name: "outer", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.map(Effect.forEach([x, x + 1], (y) => work(y), { concurrency: "unbounded" }), ([a, b]) => a + b)
      )
      const { value } = yield* withKernel(
        { maxConcurrency: 2 },
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(
            Effect.forEach([0, 10, 20, 30, 40, 50], (x) => work(x), { concurrency: "unbounded" })
          )
          yield* TestClock.adjust("100 millis")
          yield* Fiber.join(fiber)
          const peakFlat = peak
          const nested = yield* Effect.fork(outer(100))
          yield* TestClock.adjust("100 millis")
          return { peakFlat, nested: yield* Fiber.join(nested) }
        })
      )
      assert.strictEqual(value.peakFlat, 2)
      assert.strictEqual(value.nested, 201)
    }))

  it.scoped("a result that does not encode with the output schema is returned but not checkpointed", () =>
    Effect.gen(function*() {
      const bad = App.make(
        { name: "bad_output", input: Schema.Number, output: Schema.Number, cache: true },
        () => Effect.succeed(NaN)
      )
      const { value, runDir } = yield* withKernel({ checkpointMode: "task_exit" }, bad(1))
      assert.isTrue(Number.isNaN(value))
      assert.deepStrictEqual(checkpointEntries(runDir), [])
      assert.isTrue(exists(path.join(runDir, "checkpoint", "tasks.jsonl")))
    }))

  it.scoped("names are unique per kernel: a second app with the name and version of one already called fails with AppCacheError", () =>
    Effect.gen(function*() {
      const asNumber = App.make(
        { name: "process", input: Schema.Struct({ x: Schema.Number }), output: Schema.Number, cache: true },
        ({ x }) => Effect.succeed(x * 10)
      )
      const asString = App.make(
        { name: "process", input: Schema.Struct({ x: Schema.Number }), output: Schema.String, cache: true },
        ({ x }) => Effect.succeed(`x=${x}`)
      )
      const otherVersion = App.make(
        {
          name: "process",
          version: "2",
          input: Schema.Struct({ x: Schema.Number }),
          output: Schema.String,
          cache: true
        },
        ({ x }) => Effect.succeed(`v2 x=${x}`)
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const a = yield* asNumber({ x: 1 })
          const again = yield* asNumber({ x: 1 })
          const b = yield* Effect.flip(asString({ x: 1 }))
          const c = yield* otherVersion({ x: 1 })
          const d = yield* asNumber({ x: 2 })
          return { a, again, b, c, d, stats: yield* Dfk.stats }
        })
      )
      assert.strictEqual(value.a, 10)
      assert.strictEqual(value.again, 10, "the same definition called twice is fine")
      assert.strictEqual(value.b._tag, "AppCacheError")
      assert.strictEqual(value.b.app, "process")
      assert.include(value.b.reason, "Another app named process (version null) was already called in this run")
      assert.strictEqual(value.c, "v2 x=1", "another version is another app")
      assert.strictEqual(value.d, 20)
      assert.strictEqual(value.stats.tasks, 4, "the refused call is not a task")
    }))

  it("App.make throws a TypeError naming the option for an empty name or a missing schema", () => {
    const body = (x: number) => Effect.succeed(x)
    assert.throws(
      () => App.make({ name: "", input: Schema.Number, output: Schema.Number }, body),
      TypeError,
      "App.make: the \"name\" option must be a non-empty string (got \"\")"
    )
    assert.throws(
      () => App.make({ name: "n", input: undefined as unknown as typeof Schema.Number, output: Schema.Number }, body),
      TypeError,
      "App.make: the \"input\" option of app n must be a Schema (got undefined)"
    )
  })

  it.scoped("ignoreForCache naming a key the encoded input cannot have, or given for an input that is no object, fails the call", () =>
    Effect.gen(function*() {
      const runs = counter()
      const typo = App.make(
        {
          name: "typo",
          input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
          output: Schema.Number,
          cache: true,
          ignoreForCache: ["sleep_ms" as "sleepMs"]
        },
        ({ x }) => Effect.sync(() => (runs.inc(), x))
      )
      const scalar = App.make(
        { name: "scalar", input: Schema.Number, output: Schema.Number, cache: true, ignoreForCache: ["x"] as never },
        (x) => Effect.sync(() => (runs.inc(), x))
      )
      // A key that is optional in the schema is fine when a call leaves it out.
      const optional = App.make(
        {
          name: "optional",
          input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
          output: Schema.Number,
          cache: true,
          ignoreForCache: ["sleepMs"]
        },
        ({ x }) => Effect.sync(() => (runs.inc(), x))
      )
      // A schema whose encoded side the kernel cannot read ahead: checked on the value.
      const opaque = App.make(
        { name: "opaque", input: Schema.Unknown, output: Schema.Unknown, cache: true, ignoreForCache: ["x"] as never },
        (x) => Effect.sync(() => (runs.inc(), x))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          return {
            typo: yield* Effect.flip(typo({ x: 1 })),
            typoAgain: yield* Effect.flip(typo({ x: 1 })),
            scalar: yield* Effect.flip(scalar(1)),
            optional: [yield* optional({ x: 1 }), yield* optional({ x: 1, sleepMs: 5 })],
            opaqueObject: yield* opaque({ x: 1, y: 2 }),
            opaqueNumber: yield* Effect.flip(opaque(3))
          }
        })
      )
      assert.strictEqual(value.typo._tag, "AppCacheError")
      assert.include(value.typo.reason, "ignoreForCache names \"sleep_ms\", which the encoded input does not have")
      assert.strictEqual(value.typoAgain._tag, "AppCacheError")
      assert.include(value.scalar.reason, "the encoded input is not an object")
      assert.deepStrictEqual(value.optional, [1, 1])
      assert.deepStrictEqual(value.opaqueObject, { x: 1, y: 2 })
      assert.include(value.opaqueNumber.reason, "the encoded input is not an object")
      assert.strictEqual(runs.count, 2, "only optional (once: same key) and opaque with an object ran")
    }))

  it.scoped("per-app retries override the kernel's, both ways; only the final outcome is memoized", () =>
    Effect.gen(function*() {
      const attempts = { more: 0, fewer: 0 }
      const flaky = (name: "more" | "fewer", retries: number) =>
        App.make(
          { name: `flaky_${name}`, input: Schema.Number, output: Schema.Number, cache: true, retries },
          (x) =>
            Effect.suspend(() =>
              ++attempts[name] <= 2 ? Effect.fail(new Boom({ n: attempts[name] })) : Effect.succeed(x)
            )
        )
      const more = flaky("more", 2)
      const fewer = flaky("fewer", 0)
      const { value } = yield* withKernel(
        { retries: 1 },
        Effect.gen(function*() {
          return {
            more: yield* more(7),
            fewer: yield* Effect.flip(fewer(7)),
            fewerAgain: yield* Effect.flip(fewer(7))
          }
        })
      )
      assert.strictEqual(value.more, 7, "two retries: the third attempt succeeds (the kernel's one retry would not do)")
      assert.strictEqual(attempts.more, 3)
      assert.deepStrictEqual(value.fewer, new Boom({ n: 1 }), "no retries for this app although the kernel has one")
      assert.deepStrictEqual(value.fewerAgain, new Boom({ n: 1 }), "the memoized failure")
      assert.strictEqual(attempts.fewer, 1)
      assert.throws(
        () => App.make({ name: "bad", input: Schema.Number, output: Schema.Number, retries: -1 }, Effect.succeed),
        TypeError,
        "the \"retries\" option of app bad must be a whole number"
      )
    }))
})

const DAY = 24 * 60 * 60 * 1000

describe("expiresAfter", () => {
  // Entries' times are wall-clock times (Date.now, as ever); the check reads Effect's Clock,
  // here a TestClock set relative to the time an entry was written.
  it.scoped("an entry older than expiresAfter (by the Clock) is a miss, logged as expired; the new entry wins", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const runs = counter()
      const forecast = App.make(
        { name: "forecast", input: Schema.String, output: Schema.Number, cache: true, expiresAfter: "7 days" },
        () => Effect.sync(() => runs.inc())
      )
      const logs = captureLogs()
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      const run = Effect.zip(forecast("paris"), Dfk.stats).pipe(Effect.provide(Layer.merge(kernel, logs.layer)))
      const expired = () => logs.lines.filter((l) => l.message.includes("expired"))

      assert.strictEqual((yield* run)[0], 1)
      const written = Date.parse(checkpointEntries(path.join(root, "000"))[0]!.time)
      yield* TestClock.setTime(written + 6 * DAY)
      assert.strictEqual((yield* run)[0], 1)
      yield* TestClock.setTime(written + 7 * DAY) // not older than 7 days: still served
      const [served, servedStats] = yield* run
      assert.strictEqual(served, 1)
      assert.strictEqual(servedStats.hits, 1)
      assert.lengthOf(expired(), 0)

      yield* TestClock.setTime(written + 7 * DAY + 1)
      const [value, stats] = yield* run
      assert.strictEqual(value, 2)
      assert.strictEqual(runs.count, 2)
      assert.deepStrictEqual([stats.hits, stats.misses], [0, 1])
      assert.lengthOf(expired(), 1)
      assert.strictEqual(expired()[0]!.level, "INFO")
      assert.match(
        expired()[0]!.message,
        /^A checkpointed entry of forecast \([0-9a-f]{12}\) expired \(written .*expiresAfter \(7d\)\), so the app runs again$/
      )

      // The new entry (written now) wins from then on.
      const newer = Date.parse(checkpointEntries(path.join(root, "003"))[0]!.time)
      yield* TestClock.setTime(newer + DAY)
      assert.strictEqual((yield* run)[0], 2)
      assert.strictEqual(runs.count, 2)
    }))

  it.scoped("within a run the memo answers a repeat call, however long ago the first one ran", () =>
    Effect.gen(function*() {
      const runs = counter()
      const quick = App.make(
        { name: "quick", input: Schema.Number, output: Schema.Number, cache: true, expiresAfter: "1 minute" },
        (x) => Effect.sync(() => (runs.inc(), x))
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          yield* quick(1)
          yield* TestClock.adjust("1 hour")
          yield* quick(1)
          return yield* Dfk.stats
        })
      )
      assert.strictEqual(runs.count, 1)
      assert.strictEqual(value.hits, 1)
    }))

  it.scoped("entries without expiresAfter never expire; expiresAfter: 0 serves no stored entry", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const runs = counter()
      const forever = App.make(
        { name: "forever", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.sync(() => (runs.inc(), x))
      )
      const never = App.make(
        { name: "never", input: Schema.Number, output: Schema.Number, cache: true, expiresAfter: 0 },
        (x) => Effect.sync(() => (runs.inc(), x))
      )
      const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
      const run = Effect.provide(Effect.zip(forever(1), never(1)), kernel)
      yield* run
      yield* TestClock.setTime(Date.now() + 3650 * DAY)
      yield* run
      assert.strictEqual(runs.count, 3, "forever ran once, never twice")
    }))

  it("App.make throws a TypeError naming expiresAfter when it is not a duration", () => {
    assert.throws(
      () =>
        App.make(
          { name: "bad", input: Schema.Number, output: Schema.Number, expiresAfter: "soon" as any },
          Effect.succeed
        ),
      TypeError,
      "the \"expiresAfter\" option of app bad must be a duration"
    )
  })
})

interface Recorded {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly parent: string | undefined
  ended: boolean
}

/** A tracer that records every span with its attributes and parent. */
const recordingTracer = () => {
  const spans: Array<Recorded> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const record: Recorded = {
        name,
        attributes,
        parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
        ended: false
      }
      spans.push(record)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `span-${++ids}`,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (endTime, exit) => {
          record.ended = true
          status = { _tag: "Ended", startTime, endTime, exit }
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, layer: Layer.setTracer(tracer) }
}

describe("observability", () => {
  it.scoped("a span per app call, named after the app, with app, hash and outcome", () => {
    const { layer, spans } = recordingTracer()
    return Effect.gen(function*() {
      const root = yield* tmpDir
      const gate = yield* Deferred.make<void>()
      const leaf = App.make(
        { name: "obs_leaf", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.as(Deferred.await(gate), x)
      )
      const parent = App.make(
        { name: "obs_parent", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => leaf(x + 1)
      )
      const kernel = (files: Layer.Layer<CheckpointFiles>) =>
        Dfk.layer({ runDir: root, checkpointMode: "task_exit" }).pipe(Layer.provide(files), Layer.provide(platform))
      yield* Effect.gen(function*() {
        const a = yield* Effect.fork(parent(1))
        const b = yield* Effect.fork(leaf(2))
        yield* Effect.yieldNow()
        const c = yield* Effect.fork(leaf(2)) // joins b in flight
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(Fiber.zip(Fiber.zip(a, b), c))
        yield* leaf(2) // in-run memo
      }).pipe(Effect.provide(kernel(CheckpointFiles.none)))
      yield* leaf(2).pipe(Effect.provide(kernel(CheckpointFiles.layer([path.join(root, "000", "checkpoint")]))))
      yield* Effect.void

      const calls = spans.filter((s) => s.name.startsWith("obs_"))
      const outcomes = calls.map((s) => `${s.name}:${s.attributes.get("outcome")}`)
      // parent(1) calls leaf(2); b and c are leaf(2) too: one runs, two join it in flight.
      assert.deepStrictEqual(outcomes.slice().sort(), [
        "obs_leaf:checkpoint",
        "obs_leaf:dedup",
        "obs_leaf:dedup",
        "obs_leaf:hit",
        "obs_leaf:miss",
        "obs_parent:miss"
      ])
      // Every outcome (hits too) carries the call's memo key.
      const keys: Record<string, string> = {
        obs_leaf: yield* Memo.key({ name: "obs_leaf", input: 2 }),
        obs_parent: yield* Memo.key({ name: "obs_parent", input: 1 })
      }
      for (const s of calls) {
        assert.strictEqual(s.attributes.get("app"), s.name)
        assert.strictEqual(s.attributes.get("hash"), keys[s.name])
        assert.isTrue(s.ended)
      }
      // The leaf called from the parent's body is a child of the parent's span.
      const nested = calls.find((s) => s.name === "obs_leaf" && s.parent === "obs_parent")
      assert.isDefined(nested)
      const passes = spans.filter((s) => s.name === "dfk.checkpoint")
      assert.isAbove(passes.length, 0)
      assert.isTrue(passes.every((s) => s.ended))
    }).pipe(Effect.provide(layer))
  })
})
