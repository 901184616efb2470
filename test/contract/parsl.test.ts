/**
 * Ports of Parsl's own checkpointing and memoization tests (parsl/tests/ in Parsl/parsl),
 * each making the same assertion on this library's API.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk, getLastCheckpoint } from "effect-dfk"
import type { DfkConfig } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, eventually, exists, platform, tmpDir } from "../util.ts"

/** One Parsl "run": a kernel over `effect`; returns its value and run dir. */
const run = <A, E>(
  config: DfkConfig,
  effect: Effect.Effect<A, E, Dfk>,
  files: Layer.Layer<CheckpointFiles, never, any> = CheckpointFiles.none
) =>
  Effect.zip(effect, Dfk.runDir).pipe(
    Effect.provide(Dfk.layer(config).pipe(Layer.provide(files), Layer.provide(platform))),
    Effect.provide(platform)
  )

const slowDouble = App.make(
  {
    name: "slow_double",
    input: Schema.Struct({ x: Schema.Number, sleepDur: Schema.optional(Schema.Number) }),
    output: Schema.Number,
    cache: true
  },
  ({ sleepDur = 1000, x }) => Effect.sleep(sleepDur).pipe(Effect.as(x * 2))
)

const uuidApp = App.make(
  { name: "uuid_app", input: Schema.Struct({ x: Schema.optional(Schema.String) }), output: Schema.String, cache: true },
  () => Effect.sync(() => randomUUID())
)

class UuidError extends Schema.TaggedError<UuidError>()("UuidError", { uuid: Schema.String }) {}
const uuidInExceptionApp = App.make(
  { name: "uuid_in_exception_app", input: Schema.Struct({}), output: Schema.String, cache: true },
  () => Effect.suspend(() => Effect.fail(new UuidError({ uuid: randomUUID() })))
)

describe("Parsl test_checkpointing", () => {
  it.scoped("test_task_exit: two task_exit results give exactly two records", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [, runDir] = yield* run(
        { runDir: root, checkpointMode: "task_exit" },
        Effect.forEach([0, 1], (x) => slowDouble({ x, sleepDur: 0 }), { concurrency: "unbounded" })
      )
      assert.strictEqual(checkpointEntries(runDir).length, 2)
    }))

  it.scoped("test_manual: no checkpoint file until Dfk.checkpoint, then it exists", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      yield* run(
        { runDir: root, checkpointMode: "manual" },
        Effect.gen(function*() {
          yield* uuidApp({})
          const file = path.join(yield* Dfk.runDir, "checkpoint", "tasks.jsonl")
          assert.isFalse(exists(file))
          yield* Dfk.checkpoint
          assert.isTrue(exists(file))
        })
      )
    }))

  it.scoped("test_periodic: at least three passes, each within 5.5 s of the previous", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const logs = captureLogs()
      const stamps: Array<number> = []
      const passLines = () =>
        logs.lines.filter((l) =>
          l.message.startsWith("Done checkpointing") || l.message === "No tasks checkpointed in this pass"
        ).length
      yield* run(
        { runDir: root, checkpointMode: "periodic", checkpointPeriod: "00:00:02", maxConcurrency: 1 },
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(
            Effect.forEach([3, 3, 3, 3], (x) => slowDouble({ x }), { concurrency: "unbounded" })
          )
          // Four 1 s tasks on one slot: 4 s of (test) time, with passes at 2 s, 4 s and 6 s.
          for (let t = 1; t <= 6; t++) {
            yield* TestClock.adjust("1 second")
            if (t % 2 === 0) {
              yield* eventually(() => passLines() >= t / 2, "a periodic pass")
              stamps.push(t)
            }
          }
          yield* TestClock.adjust("10 seconds") // lets a task that started late finish
          return yield* Effect.fromFiber(fiber)
        })
      ).pipe(Effect.provide(logs.layer))
      assert.isAtLeast(passLines(), 3)
      for (let i = 1; i < stamps.length; i++) assert.isBelow(stamps[i]! - stamps[i - 1]!, 5.5)
    }))

  it.scoped("test_regression_233: a rerun from the checkpoint returns the same (random) results", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      let bodies = 0
      const cachedRand = App.make(
        { name: "cached_rand", input: Schema.Number, output: Schema.Number, cache: true },
        () => Effect.sync(() => (bodies++, Math.floor(Math.random() * 10000)))
      )
      const five = Effect.forEach([0, 1, 2, 3, 4], (i) => cachedRand(i), { concurrency: "unbounded" })
      const [original, runDir] = yield* run({ runDir: root, checkpointMode: "task_exit" }, five)
      const [cached] = yield* run(
        { runDir: root, checkpointMode: "task_exit" },
        five,
        CheckpointFiles.layer([path.join(runDir, "checkpoint")])
      )
      assert.deepStrictEqual(cached, original)
      assert.strictEqual(bodies, 5)
    }))

  it.scoped("test_regression_233 (race): closing a dfk_exit kernel with calls in flight neither crashes nor hangs", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const cachedRand = App.make(
        { name: "cached_rand_race", input: Schema.Number, output: Schema.Number, cache: true },
        (i) => Effect.sleep("500 millis").pipe(Effect.as(i))
      )
      const [, runDir] = yield* run(
        { runDir: root, checkpointMode: "dfk_exit" },
        Effect.forEach([0, 1, 2, 3, 4], (i) => Effect.fork(cachedRand(i)))
      )
      // The calls were interrupted with the kernel's scope: none is memoized, the file is valid and empty.
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("test_task_exit_roundtrip: a result reloads from a task_exit checkpoint with no mode set", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [result, runDir] = yield* run({ runDir: root, checkpointMode: "task_exit" }, uuidApp({}))
      const [relaunched] = yield* run(
        { runDir: root },
        uuidApp({}),
        CheckpointFiles.layer([path.join(runDir, "checkpoint")])
      )
      assert.strictEqual(relaunched, result)
    }))

  it.scoped("test_task_exit_roundtrip (regression 239): a failed app runs again in the next run", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [result, runDir] = yield* run(
        { runDir: root, checkpointMode: "task_exit" },
        Effect.flip(uuidInExceptionApp({}))
      )
      const [relaunched] = yield* run(
        { runDir: root },
        Effect.flip(uuidInExceptionApp({})),
        CheckpointFiles.layer([path.join(runDir, "checkpoint")])
      )
      assert.strictEqual(result._tag, "UuidError")
      assert.strictEqual(relaunched._tag, "UuidError")
      assert.notStrictEqual((relaunched as UuidError).uuid, (result as UuidError).uuid)
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("test_get_last_checkpoint: each run resumes from only the previous one", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const param = randomUUID()
      const config = { runDir: root, checkpointMode: "task_exit" } as const
      const [a] = yield* run(config, uuidApp({ x: param }))
      const [b] = yield* run(config, uuidApp({ x: param }), CheckpointFiles.last(root))
      const [c, dirC] = yield* run(config, uuidApp({ x: param }), CheckpointFiles.last(root))
      assert.strictEqual(b, a)
      assert.strictEqual(c, a)
      assert.strictEqual(path.basename(dirC), "002")
    }))

  it.scoped("test_get_last_checkpoint (other files): a non-numeric file in the run dir is ignored", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const param = randomUUID()
      const config = { runDir: root, checkpointMode: "task_exit" } as const
      const [a] = yield* run(config, uuidApp({ x: param }))
      fs.writeFileSync(path.join(root, "X"), "")
      const [b] = yield* run(config, uuidApp({ x: param }), CheckpointFiles.last(root))
      assert.strictEqual(b, a)
    }))

  it.scoped("test_get_last_checkpoint (high run dir): 999 then 1000, and last means 1000", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const param = randomUUID()
      fs.writeFileSync(path.join(root, "998"), "")
      const config = { runDir: root, checkpointMode: "task_exit" } as const
      const [r999, d999] = yield* run(config, uuidApp({ x: param }))
      const [r1000, d1000] = yield* run(config, uuidApp({ x: param }))
      assert.strictEqual(path.basename(d999), "999")
      assert.strictEqual(path.basename(d1000), "1000")
      assert.notStrictEqual(r999, r1000)
      const last = yield* Effect.provide(getLastCheckpoint(root), platform)
      assert.deepStrictEqual(last, [path.join(d1000, "checkpoint")])
      const [relaunched] = yield* run(config, uuidApp({ x: param }), CheckpointFiles.last(root))
      assert.strictEqual(relaunched, r1000)
    }))
})

describe("Parsl test_python_apps", () => {
  const raising = (cache: boolean) =>
    App.make(
      { name: `raise_exception_${cache ? "cache" : "nocache"}`, input: Schema.Number, output: Schema.Number, cache },
      () => Effect.suspend(() => Effect.fail(new UuidError({ uuid: randomUUID() })))
    )

  it.scoped("test_memoize_exception: a cached failure comes back as the same error object", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const app = raising(true)
      yield* run(
        { runDir: root },
        Effect.gen(function*() {
          const x = yield* Effect.flip(app(0))
          for (let i = 0; i < 2; i++) assert.strictEqual(yield* Effect.flip(app(0)), x)
        })
      )
    }))

  it.scoped("test_memoize_exception (no cache): an uncached failure is a new error each time", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const app = raising(false)
      yield* run(
        { runDir: root },
        Effect.gen(function*() {
          const x = yield* Effect.flip(app(0))
          for (let i = 0; i < 2; i++) assert.notStrictEqual(yield* Effect.flip(app(0)), x)
        })
      )
    }))

  it.scoped("test_memoize_ignore_args: different x differ; with x ignored they are the same", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const make = (name: string, ignore: ReadonlyArray<"x">) =>
        App.make(
          {
            name,
            input: Schema.Struct({ x: Schema.Number }),
            output: Schema.String,
            cache: true,
            ignoreForCache: ignore
          },
          () => Effect.sync(() => randomUUID())
        )
      const randomUuid = make("random_uuid", [])
      const randomUuidDef = make("random_uuid_def", ["x"])
      yield* run(
        { runDir: root },
        Effect.gen(function*() {
          assert.notStrictEqual(yield* randomUuid({ x: 0 }), yield* randomUuid({ x: 1 }))
          assert.strictEqual(yield* randomUuidDef({ x: 0 }), yield* randomUuidDef({ x: 1 }))
        })
      )
    }))

  it.scoped("test_memoize_joinapp: an app whose body calls another app is memoized", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const constApp = App.make(
        { name: "const", input: Schema.String, output: Schema.String },
        (s) => Effect.succeed(s)
      )
      const randomUuid = App.make(
        { name: "random_uuid_join", input: Schema.Number, output: Schema.String, cache: true },
        () => Effect.suspend(() => constApp(randomUUID()))
      )
      yield* run(
        { runDir: root },
        Effect.gen(function*() {
          const x = yield* randomUuid(0)
          for (let i = 0; i < 2; i++) assert.strictEqual(yield* randomUuid(0), x)
        })
      )
    }))
})
