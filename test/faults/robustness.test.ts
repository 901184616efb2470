/**
 * Robustness: failure modes beyond the ones the other files cover, from a failure-mode audit.
 *
 * - faulty file systems: writes that fail or are cut short at random points under
 *   concurrency, an fsync that fails after the bytes are written;
 * - interruption: of a call in the middle of its retries, of calls queued for a slot, of a
 *   workflow whose results wait on a write; bodies that return no effect;
 * - hangs: a write that never ends holds every later pass (and the close) behind it;
 * - odd run dirs: a file where a dir should be, names with spaces and line separators, one
 *   checkpoint listed several times;
 * - concurrency between kernels: several kernels on one `runDir`, a hundred concurrent
 *   `Dfk.checkpoint` calls, loads of a file another process is appending to;
 * - misbehaving stores: an append that dies, a load that hands entries over after it returned.
 *
 * Everything goes through the public API; the faults come from a wrapped `NodeFileSystem`
 * (as in write-failures.test.ts: the tests may run as root, who ignores permissions).
 */
import * as NodePath from "@effect/platform-node/NodePath"
import { SystemError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, Memo } from "effect-dfk"
import type { CheckpointError, CheckpointMode, CheckpointStoreService, DfkConfig, DfkStats } from "effect-dfk"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { nodeBin } from "../fixtures/child.ts"
import { captureLogs, eventually, interceptedFileSystem, platform, tmpDir, withKernel } from "../util.ts"

// ---------------------------------------------------------------------------------------
// A file system whose writes do what `decide` says.

type Action = "ok" | "fail" | "partial" | "hang"

interface Faults {
  /** What the write number `n` (0, 1, ...) does. */
  decide: (n: number) => Action
  /** Writes so far. */
  writes: number
  /** Writes failed, cut short, or hung so far. */
  faulted: number
  /** Opened to let hung writes go on. */
  release?: Deferred.Deferred<void> | undefined
  /** Writes hung now. */
  hanging: number
  /** Writes under way now, and the most at once. */
  active: number
  maxActive: number
  /** `sync` of an open file fails while this is above 0 (and counts down). */
  syncFailures: number
}

const enospc = (method: string, file: string) =>
  new SystemError({
    module: "FileSystem",
    method,
    pathOrDescriptor: file,
    reason: "Unknown",
    description: "ENOSPC: no space left on device"
  })

const faultyWrite = (
  faults: Faults,
  method: string,
  file: string,
  data: Uint8Array,
  write: (bytes: Uint8Array) => Effect.Effect<void, any>
): Effect.Effect<void, any> =>
  Effect.suspend(() => {
    const action = faults.decide(faults.writes++)
    if (action !== "ok") faults.faulted++
    faults.active++
    faults.maxActive = Math.max(faults.maxActive, faults.active)
    const done = Effect.sync(() => faults.active--)
    switch (action) {
      case "ok":
        return Effect.ensuring(write(data), done)
      case "fail":
        return Effect.ensuring(Effect.fail(enospc(method, file)), done)
      case "partial":
        // Half of the bytes reach the file, then the disk is full.
        return write(data.subarray(0, Math.floor(data.length / 2))).pipe(
          Effect.zipRight(Effect.fail(enospc(method, file))),
          Effect.ensuring(done)
        )
      case "hang":
        faults.hanging++
        return Deferred.await(faults.release!).pipe(
          Effect.ensuring(Effect.sync(() => faults.hanging--)),
          Effect.zipRight(write(data)),
          Effect.ensuring(done)
        )
    }
  })

/** `NodeFileSystem` with `writeFile` and the writes and syncs of open files going through `faults`. */
const faultyFileSystem = (faults: Faults): Layer.Layer<FileSystem.FileSystem> =>
  interceptedFileSystem({
    write: (method, file, data, write) => faultyWrite(faults, method, file, data, write),
    sync: (file, sync) =>
      Effect.suspend(() => faults.syncFailures > 0 ? (faults.syncFailures--, Effect.fail(enospc("sync", file))) : sync)
  })

/** Faults, logs and a kernel in a fresh run dir over the faulty file system. */
const setup = (config: DfkConfig, decide: Faults["decide"] = () => "ok") =>
  Effect.gen(function*() {
    const faults: Faults = { decide, writes: 0, faulted: 0, hanging: 0, active: 0, maxActive: 0, syncFailures: 0 }
    const logs = captureLogs()
    const runDir = path.join(yield* tmpDir, "runinfo")
    const run = <A, E>(workflow: Effect.Effect<A, E, Dfk>) =>
      workflow.pipe(
        Effect.provide(Dfk.layer({ runDir, ...config })),
        Effect.provide(CheckpointFiles.none),
        Effect.provide(Layer.merge(faultyFileSystem(faults), NodePath.layer)),
        Effect.provide(logs.layer)
      )
    const file = path.join(runDir, "000", "checkpoint", "tasks.jsonl")
    const errors = () => logs.lines.filter((l) => l.level === "ERROR").map((l) => l.message)
    return { faults, logs, errors, run, runDir, file }
  })

/** The inputs of a `tasks.jsonl` in file order; fails on a torn or unparsable line. */
const inputsIn = (file: string): Array<any> => {
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, "utf8")
  if (text === "") return []
  assert.isTrue(text.endsWith("\n"), `${file} ends with a torn line`)
  return text.slice(0, -1).split("\n").map((line, n) => {
    try {
      return JSON.parse(line).input
    } catch {
      return assert.fail(`${file}:${n + 1} is not JSON: ${JSON.stringify(line.slice(0, 120))}`)
    }
  })
}

const sorted = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** `n` yields: reorders concurrent fibers without real time. */
const yields = (n: number) => Effect.forEach(range(0, n), () => Effect.yieldNow(), { discard: true })

/** Yields until `condition` holds (for fibers of this runtime; no I/O involved). */
const until = <R>(condition: Effect.Effect<boolean, never, R>) =>
  Effect.gen(function*() {
    while (!(yield* condition)) yield* Effect.yieldNow()
  })

const cause = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "success"

let bodies = 0
const triple = App.make(
  { name: "triple", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.sync(() => (bodies++, x * 3))
)

/** A kernel over the real platform with a given store. */
const withStore = (config: DfkConfig, store: CheckpointStoreService, files = CheckpointFiles.none) =>
  Effect.provide(
    Layer.provide(Dfk.layer(config), Layer.mergeAll(files, Layer.succeed(CheckpointStore, store), platform))
  )

// ---------------------------------------------------------------------------------------

describe("faulty file systems", () => {
  for (const mode of ["task_exit", "manual", "dfk_exit", "periodic"] as const satisfies ReadonlyArray<CheckpointMode>) {
    it.scoped(`${mode}: writes failing or cut short at random under concurrency; the close writes each entry once, no torn line`, () =>
      Effect.gen(function*() {
        const next = random(mode.length * 7919)
        let healthy = false
        const { errors, faults, file, run } = yield* setup(
          { checkpointMode: mode, ...(mode === "periodic" ? { checkpointPeriod: "1 second" } : {}) },
          () => {
            if (healthy) return "ok"
            const r = next()
            return r < 0.3 ? "fail" : r < 0.6 ? "partial" : "ok"
          }
        )
        const inputs = range(0, 300)
        yield* run(Effect.gen(function*() {
          // Fifteen rounds of twenty concurrent calls, each with an explicit pass among them
          // (a pass in every mode) and, in periodic mode, a periodic one as the clock moves.
          for (let round = 0; round < 15; round++) {
            yield* Effect.all([
              Effect.forEach(
                range(round * 20, round * 20 + 20),
                (x) => Effect.zipRight(yields(Math.floor(next() * 5)), triple(x)),
                {
                  concurrency: "unbounded",
                  discard: true
                }
              ),
              Effect.zipRight(yields(Math.floor(next() * 5)), Effect.either(Dfk.checkpoint)),
              mode === "periodic" ? TestClock.adjust("1 second") : Effect.void
            ], { concurrency: "unbounded", discard: true })
          }
          const stats = yield* Dfk.stats
          assert.strictEqual(stats.pending + stats.checkpointed, inputs.length, JSON.stringify(stats))
          healthy = true
        }))
        assert.deepStrictEqual(sorted(inputsIn(file)), inputs)
        assert.isAbove(faults.faulted, 0, "no write was made to fail")
        assert.isFalse(errors().some((m) => m.includes("lost")), JSON.stringify(errors()))
      }))
  }

  it.scoped("fsync failing after the bytes are written: the next passes do not write the entries twice", () =>
    Effect.gen(function*() {
      const { faults, file, run } = yield* setup({ checkpointMode: "task_exit", durability: "fsync" })
      faults.syncFailures = 2
      yield* run(Effect.gen(function*() {
        yield* Effect.forEach([1, 2, 3], (x) => triple(x), { concurrency: "unbounded" })
        yield* triple(4)
      }))
      assert.strictEqual(faults.syncFailures, 0, "the syncs did not fail")
      assert.deepStrictEqual(sorted(inputsIn(file)), [1, 2, 3, 4])
    }))
})

// ---------------------------------------------------------------------------------------

describe("interruption and misbehaving bodies", () => {
  for (const config of [{}, { retries: 1 }, { maxConcurrency: 1 }] as const) {
    it.scoped(`a body that returns no effect is a defect, memoized like one, and nothing hangs (${JSON.stringify(config)})`, () =>
      Effect.gen(function*() {
        let runs = 0
        const notAnEffect = App.make(
          { name: "not_an_effect", input: Schema.Number, output: Schema.Number, cache: true },
          ((x: number) => (runs++, x * 2)) as unknown as (x: number) => Effect.Effect<number>
        )
        const { value } = yield* withKernel(
          { ...config, checkpointMode: "task_exit" },
          Effect.gen(function*() {
            const exits = yield* Effect.all([notAnEffect(1), notAnEffect(1)].map(Effect.exit), {
              concurrency: "unbounded"
            })
            const again = yield* Effect.exit(notAnEffect(1))
            return { exits: [...exits, again], stats: yield* Dfk.detailedStats }
          })
        )
        for (const exit of value.exits) assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), cause(exit))
        // Run once (and retried, as any defect is), then memoized.
        assert.strictEqual(runs, 1 + ("retries" in config ? config.retries : 0))
        assert.strictEqual(value.stats.running, 0)
        assert.strictEqual(value.stats.pending, 0)
      }))
  }

  it.scoped("interrupted in the middle of its retries: the 20 waiters run the body again and succeed; counts add up", () =>
    Effect.gen(function*() {
      let attempts = 0
      const blocked = yield* Deferred.make<void>()
      const flaky = App.make(
        { name: "flaky", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            attempts++
            if (attempts === 1) return Effect.fail("first attempt" as const)
            if (attempts === 2) return Effect.zipRight(Deferred.succeed(blocked, undefined), Effect.never)
            return Effect.succeed(x * 10)
          })
      )
      const { runDir, value } = yield* withKernel(
        { retries: 3, checkpointMode: "task_exit", maxConcurrency: 1 },
        Effect.gen(function*() {
          const executor = yield* Effect.fork(flaky(7))
          yield* Deferred.await(blocked)
          const waiters = yield* Effect.fork(
            Effect.all(Array.from({ length: 20 }, () => flaky(7)), { concurrency: "unbounded" })
          )
          yield* until(Effect.map(Dfk.stats, (s) => s.tasks === 21))
          const interrupted = yield* Fiber.interrupt(executor)
          const values = yield* Fiber.join(waiters)
          return { interrupted, values, stats: yield* Dfk.detailedStats }
        })
      )
      assert.isTrue(Exit.isInterrupted(value.interrupted))
      assert.deepStrictEqual(value.values, Array(20).fill(70))
      assert.strictEqual(attempts, 3, "the interrupted attempt is not retried; one waiter runs the body once")
      assert.strictEqual(value.stats.running, 0)
      assert.strictEqual(value.stats.checkpointed, 1)
      assert.strictEqual(value.stats.tasks, 21)
      assert.strictEqual(value.stats.hits + value.stats.misses, 21)
      assert.deepStrictEqual(inputsIn(path.join(runDir, "checkpoint", "tasks.jsonl")), [7])
    }))

  it.scoped(
    "maxConcurrency: interrupting running and queued calls (nested apps too) leaks no slot",
    () =>
      Effect.gen(function*() {
        let running = 0
        let gate = yield* Deferred.make<void>() // never opened for the first calls
        const slotted = App.make(
          { name: "slotted", input: Schema.Number, output: Schema.Number, cache: true },
          (x) =>
            Effect.acquireUseRelease(
              Effect.sync(() => running++),
              () => Effect.as(Deferred.await(gate), x),
              () => Effect.sync(() => running--)
            )
        )
        const nested = App.make(
          { name: "nested", input: Schema.Number, output: Schema.Number, cache: true },
          (x) => Effect.map(Effect.all([slotted(x), slotted(x + 1000)], { concurrency: "unbounded" }), ([a]) => a)
        )
        const { value } = yield* withKernel(
          { maxConcurrency: 3 },
          Effect.gen(function*() {
            const calls = yield* Effect.fork(
              Effect.forEach(range(0, 40), (x) => (x % 2 === 1 ? nested(x) : slotted(x)), { concurrency: "unbounded" })
            )
            yield* until(Effect.map(Dfk.detailedStats, (s) => s.running >= 3))
            yield* Fiber.interrupt(calls)
            const afterInterrupt = { running, stats: yield* Dfk.detailedStats }
            // Three new bodies wait for each other: they end only if all three get a slot.
            gate = yield* Deferred.make<void>()
            const three = yield* Effect.fork(
              Effect.forEach([100, 101, 102], (x) => slotted(x), { concurrency: "unbounded" })
            )
            yield* until(Effect.sync(() => running === 3))
            yield* Deferred.succeed(gate, undefined)
            const results = yield* Fiber.join(three)
            return { afterInterrupt, results, stats: yield* Dfk.detailedStats }
          })
        )
        assert.strictEqual(value.afterInterrupt.running, 0)
        assert.strictEqual(value.afterInterrupt.stats.running, 0)
        assert.deepStrictEqual(value.results, [100, 101, 102])
        assert.strictEqual(value.stats.running, 0)
      }),
    30_000
  )

  it.scoped(
    "task_exit: interrupting a workflow whose results wait on a hung write (200 callers of 4 keys) ends once it is written; each entry once",
    () =>
      Effect.gen(function*() {
        const { faults, file, run } = yield* setup({ checkpointMode: "task_exit" }, (n) => (n === 0 ? "hang" : "ok"))
        faults.release = yield* Deferred.make<void>()
        const keyed = App.make({ name: "keyed", input: Schema.Number, output: Schema.Number, cache: true }, (x) =>
          Effect.succeed(x + 100))
        const value = yield* run(Effect.gen(function*() {
          const workflow = yield* Effect.fork(Effect.forEach(range(0, 200), (i) =>
            keyed(i % 4), { concurrency: "unbounded" }))
          yield* eventually(() =>
            faults.hanging === 1, "the first write to hang")
          yield* until(Effect.map(Dfk.stats, (s) =>
            s.tasks === 200))
          const interrupting = yield* Effect.fork(Fiber.interrupt(workflow))
          yield* yields(50)
          // The callers whose results are being written wait for the write, interrupted or not.
          const whileHung = { interrupting: yield* Fiber.poll(interrupting), stats: yield* Dfk.stats }
          yield* Deferred.succeed(faults.release!, undefined)
          const exit = yield* Fiber.join(interrupting)
          return { whileHung, exit, stats: yield* Dfk.stats }
        }))
        assert.isTrue(Option.isNone(value.whileHung.interrupting), "the interruption returned while a write hung")
        assert.strictEqual(value.whileHung.stats.checkpointed, 0)
        assert.isTrue(Exit.isInterrupted(value.exit) || Exit.isSuccess(value.exit), cause(value.exit))
        assert.strictEqual(value.stats.checkpointed + value.stats.pending, 4)
        assert.deepStrictEqual(sorted(inputsIn(file)), [0, 1, 2, 3])
      }),
    30_000
  )
})

// ---------------------------------------------------------------------------------------

describe("hangs", () => {
  it.scoped(
    "a hung write holds every later pass behind it (periodic ticks, Dfk.checkpoint even under a timeout); none overlaps; released, each entry is written once",
    () =>
      Effect.gen(function*() {
        const { faults, file, run } = yield* setup(
          { checkpointMode: "periodic", checkpointPeriod: "1 second" },
          (n) => (n === 0 ? "hang" : "ok")
        )
        faults.release = yield* Deferred.make<void>()
        const value = yield* run(Effect.gen(function*() {
          yield* triple(1)
          yield* TestClock.adjust("1 second") // the first periodic pass: its write hangs
          yield* eventually(() => faults.hanging === 1, "the periodic write to hang")
          yield* triple(2)
          const explicit = yield* Effect.fork(Dfk.checkpoint)
          const timed = yield* Effect.fork(Effect.exit(Effect.timeout(Dfk.checkpoint, "100 millis")))
          yield* yields(10)
          yield* TestClock.adjust("10 seconds") // past the timeout, and ten periods
          yield* yields(50)
          const whileHung = {
            explicit: yield* Fiber.poll(explicit),
            timed: yield* Fiber.poll(timed),
            writes: faults.writes,
            stats: yield* Dfk.stats
          }
          yield* Deferred.succeed(faults.release!, undefined)
          const dir = yield* Fiber.join(explicit)
          const timedExit = yield* Fiber.join(timed)
          return { whileHung, dir, timedExit, stats: yield* Dfk.stats }
        }))
        // A pass that started is uninterruptible: the caller waits for the hung write.
        assert.isTrue(Option.isNone(value.whileHung.explicit))
        assert.isTrue(Option.isNone(value.whileHung.timed), "Dfk.checkpoint returned (timed out) while a pass hung")
        assert.strictEqual(value.whileHung.writes, 1, "a second write started while the first hung")
        assert.deepStrictEqual(
          { checkpointed: value.whileHung.stats.checkpointed, pending: value.whileHung.stats.pending },
          { checkpointed: 0, pending: 2 }
        )
        assert.strictEqual(value.dir, path.dirname(file))
        // The timeout takes effect once the pass it waited behind has ended.
        assert.isTrue(
          Exit.isFailure(value.timedExit) && Cause.isTimeoutException(Cause.squash(value.timedExit.cause)),
          cause(value.timedExit)
        )
        assert.strictEqual(faults.maxActive, 1)
        assert.deepStrictEqual({ checkpointed: value.stats.checkpointed, pending: value.stats.pending }, {
          checkpointed: 2,
          pending: 0
        })
        assert.deepStrictEqual(sorted(inputsIn(file)), [1, 2])
      }),
    30_000
  )
})

// ---------------------------------------------------------------------------------------

describe("odd run dirs", () => {
  it.scoped("a runDir that is a regular file fails the layer with a CheckpointError naming it; CheckpointFiles.all of it is empty", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tmpDir, "runinfo")
      fs.writeFileSync(file, "not a dir")
      for (const config of [{}, { checkpointMode: "task_exit" }] as const) {
        const error = yield* Effect.flip(Dfk.runDir.pipe(
          Effect.provide(
            Layer.provide(Dfk.layer({ runDir: file, ...config }), Layer.merge(CheckpointFiles.none, platform))
          )
        ))
        assert.strictEqual(error._tag, "CheckpointError")
        if (error._tag === "CheckpointError") assert.include(error.path, file)
      }
      assert.deepStrictEqual(yield* Effect.provide(getAllCheckpoints(file), platform), [])
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        triple(2),
        Layer.provide(CheckpointFiles.all(file), platform)
      )
      assert.strictEqual(value, 6)
    }))

  it.scoped("a file where the run's checkpoint dir goes: the pass fails with a CheckpointError, the entry stays pending, its loss is logged and fails the run", () =>
    Effect.gen(function*() {
      const { errors, run } = yield* setup({ checkpointMode: "task_exit" })
      let seen: { result: number; error: CheckpointError; stats: DfkStats } | undefined
      const closed = yield* Effect.flip(run(Effect.gen(function*() {
        fs.writeFileSync(path.join(yield* Dfk.runDir, "checkpoint"), "x")
        const result = yield* triple(5)
        const error = yield* Effect.flip(Dfk.checkpoint)
        seen = { result, error, stats: yield* Dfk.stats }
      })))
      assert.strictEqual((closed as CheckpointError)._tag, "CheckpointError")
      assert.include((closed as CheckpointError).reason, "1 entry not written")
      const value = seen!
      assert.strictEqual(value.result, 15)
      assert.strictEqual(value.error._tag, "CheckpointError")
      assert.strictEqual(value.stats.pending, 1)
      assert.isTrue(errors().some((m) => m.includes("1 entry lost")), JSON.stringify(errors()))
    }))

  it.scoped("a runDir with spaces, non-ASCII letters and a line separator in its name: written, and resumed from", () =>
    Effect.gen(function*() {
      const runDir = path.join(yield* tmpDir, "run dir ☃ é\u2028 x")
      let runs = 0
      const exclaim = App.make(
        { name: "exclaim", input: Schema.String, output: Schema.String, cache: true },
        (s) => Effect.sync(() => (runs++, s + "!"))
      )
      const kernel = Layer.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" }), platform)
      assert.strictEqual(yield* Effect.provide(exclaim("a"), kernel), "a!")
      assert.strictEqual(yield* Effect.provide(exclaim("a"), kernel), "a!")
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(inputsIn(path.join(runDir, "001", "checkpoint", "tasks.jsonl")), ["a"])
    }))

  it.scoped("one checkpoint dir listed three times: each key served from it, and carried forward once", () =>
    Effect.gen(function*() {
      const first = yield* withKernel({ checkpointMode: "dfk_exit" }, Effect.forEach([1, 2, 3], (x) => triple(x)))
      const dir = path.join(first.runDir, "checkpoint")
      const before = bodies
      const second = yield* withKernel(
        { checkpointMode: "dfk_exit" },
        Effect.zipRight(Effect.forEach([1, 2, 3], (x) => triple(x)), Dfk.detailedStats),
        CheckpointFiles.layer([dir, dir, dir])
      )
      assert.strictEqual(bodies, before)
      assert.strictEqual(second.value.hits, 3)
      assert.strictEqual(second.value.fromCheckpoint, 3)
      assert.deepStrictEqual(sorted(inputsIn(path.join(second.runDir, "checkpoint", "tasks.jsonl"))), [1, 2, 3])
    }))
})

// ---------------------------------------------------------------------------------------

describe("concurrency between kernels", () => {
  it.scoped("four kernels at once on one runDir, resuming by default from each other's growing checkpoints: distinct dirs, clean files", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const work = (offset: number) =>
        Effect.gen(function*() {
          yield* Effect.forEach(range(offset, offset + 200), (x) => triple(x), { concurrency: 16 })
          return yield* Dfk.runDir
        }).pipe(Effect.provide(Layer.provide(Dfk.layer({ runDir: root, checkpointMode: "task_exit" }), platform)))
      const dirs = yield* Effect.all([work(0), work(100), work(50), work(150)], { concurrency: "unbounded" })
      assert.strictEqual(new Set(dirs).size, 4)
      for (const [i, offset] of [0, 100, 50, 150].entries()) {
        const inputs = inputsIn(path.join(dirs[i]!, "checkpoint", "tasks.jsonl"))
        assert.strictEqual(new Set(inputs).size, inputs.length, "an entry is written twice")
        assert.deepStrictEqual(sorted(inputs), range(offset, offset + 200))
      }
    }))

  it.scoped("100 concurrent Dfk.checkpoint calls while 500 calls complete (task_exit, manual, dfk_exit): each entry once, one dir", () =>
    Effect.gen(function*() {
      const next = random(42)
      for (const mode of ["task_exit", "manual", "dfk_exit"] as const) {
        const { file, run } = yield* setup({ checkpointMode: mode })
        const dirs = yield* run(Effect.gen(function*() {
          const calls = yield* Effect.fork(
            Effect.forEach(range(0, 500), (x) => Effect.zipRight(yields(Math.floor(next() * 3)), triple(x)), {
              concurrency: 50
            })
          )
          const dirs = yield* Effect.forEach(
            range(0, 100),
            () => Effect.zipRight(yields(Math.floor(next() * 7)), Dfk.checkpoint),
            { concurrency: "unbounded" }
          )
          yield* Fiber.join(calls)
          const stats = yield* Dfk.stats
          assert.strictEqual(stats.checkpointed + stats.pending, 500)
          return dirs
        }))
        assert.deepStrictEqual([...new Set(dirs)], [path.dirname(file)])
        assert.deepStrictEqual(sorted(inputsIn(file)), range(0, 500), mode)
      }
    }))

  it(
    "repeated loads of a file another process appends to in small pieces: never a BadCheckpoint, never a torn entry",
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-appending-"))
      const file = path.join(dir, "tasks.jsonl")
      fs.writeFileSync(file, "")
      // Each line goes out in three pieces (split inside multi-byte characters), a millisecond
      // apart, until stdin closes: the file grows slowly, so every load stays small and quick
      // however loaded the machine is.
      const script = `
      const fs = require("fs"), crypto = require("crypto");
      const fd = fs.openSync(${JSON.stringify(file)}, "a");
      const line = (i) => Buffer.from(JSON.stringify({ v: 1, hash: crypto.createHash("sha256").update(String(i)).digest("hex"),
        app: "a", version: null, input: i, result: "é€😀".repeat(i % 50), time: "t" }) + "\\n");
      let i = 0, piece = 0, bytes;
      const step = () => {
        if (piece === 0) bytes = line(i++);
        const a = Math.floor(bytes.length / 3) * piece, b = piece === 2 ? bytes.length : Math.floor(bytes.length / 3) * (piece + 1);
        fs.writeSync(fd, bytes.subarray(a, b));
        piece = (piece + 1) % 3;
        setTimeout(step, 1);
      };
      process.stdin.on("end", () => process.exit(0));
      process.stdin.resume();
      step();
    `
      const child = spawn(nodeBin, ["-e", script], { stdio: ["pipe", "ignore", "inherit"] })
      const exited = new Promise((resolve) => child.on("exit", resolve))
      const load = Effect.gen(function*() {
        const store = yield* CheckpointStore
        const inputs: Array<unknown> = []
        yield* store.load(dir, (entry) => {
          inputs.push(entry.input)
        })
        return inputs
      }).pipe(
        Effect.provide(CheckpointStore.layerFileSystem),
        Effect.provide(platform),
        Effect.provide(Logger.remove(Logger.defaultLogger))
      )
      try {
        const counts: Array<number> = []
        // Loads until twenty of them saw the file grow.
        while (new Set(counts).size < 20) {
          const exit = await Effect.runPromiseExit(load)
          assert.isTrue(Exit.isSuccess(exit), cause(exit))
          if (Exit.isSuccess(exit)) {
            assert.deepStrictEqual(
              exit.value,
              range(0, exit.value.length),
              "the entries read are not the lines written"
            )
            counts.push(exit.value.length)
          }
          if (counts.length > 20_000) assert.fail("the file did not grow")
          await new Promise((resolve) => setImmediate(resolve))
        }
      } finally {
        child.stdin!.end()
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
        await exited
        clearTimeout(timer)
        fs.rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000
  )
})

// ---------------------------------------------------------------------------------------

describe("misbehaving stores", () => {
  for (const mode of ["task_exit", "manual", "dfk_exit"] as const) {
    it.scoped(`${mode}: an append that dies once loses nothing: the caller gets its result, the defect is reported, a later pass writes it`, () =>
      Effect.gen(function*() {
        const memory = CheckpointStore.makeMemory()
        let appends = 0
        const store: CheckpointStoreService = {
          ...memory,
          append: (dir, entries, options) =>
            Effect.suspend(() =>
              ++appends === 1 ? Effect.die(new Error("store bug")) : memory.append(dir, entries, options)
            )
        }
        const logs = captureLogs()
        const root = yield* tmpDir
        const value = yield* Effect.gen(function*() {
          const a = yield* triple(1)
          const checkpoint = yield* Effect.exit(Dfk.checkpoint)
          const b = yield* triple(2)
          return { a, b, checkpoint, dir: yield* Dfk.runDir }
        }).pipe(withStore({ runDir: root, checkpointMode: mode }, store), Effect.provide(logs.layer))
        assert.deepStrictEqual([value.a, value.b], [3, 6])
        const inputs: Array<unknown> = []
        yield* memory.load(path.join(value.dir, "checkpoint"), (e) => {
          inputs.push(e.input)
        })
        assert.deepStrictEqual(inputs, [1, 2])
        const logged = logs.lines.some((l) => l.level === "ERROR" && l.message.includes("store bug"))
        if (mode === "task_exit") {
          // The write for the caller died: logged; the explicit pass then wrote the entry.
          assert.isTrue(logged, JSON.stringify(logs.lines))
          assert.isTrue(Exit.isSuccess(value.checkpoint), cause(value.checkpoint))
        } else {
          // The explicit pass died: its caller sees the defect.
          assert.isTrue(
            Exit.isFailure(value.checkpoint) && Cause.isDie(value.checkpoint.cause),
            cause(value.checkpoint)
          )
        }
      }))
  }

  it.scoped("a load that hands over entries after it returned: ignored, well-formed or not (neither served nor written)", () =>
    Effect.gen(function*() {
      let late: ((entry: any) => void) | undefined
      const memory = CheckpointStore.makeMemory()
      const store: CheckpointStoreService = {
        ...memory,
        load: (_dir, onEntry) => Effect.sync(() => void (late = onEntry)),
        exists: () => Effect.succeed(true)
      }
      const root = yield* tmpDir
      const hash = yield* Memo.key({ name: "triple", input: 1 })
      const before = bodies
      const value = yield* Effect.gen(function*() {
        // Well-formed, but too late: the load is over. Served, it would be 777.
        const hash2 = yield* Memo.key({ name: "triple", input: 2 })
        late!({ hash: hash2, app: "triple", version: null, input: 2, result: 777, time: new Date(0).toISOString() })
        // The right key, a wrong result and no time: served, it would be 999 and poison the file.
        late!({ hash, app: "triple", version: null, input: 1, result: 999, time: undefined })
        const results = yield* Effect.all([triple(1), triple(2)])
        const checkpoint = yield* Effect.exit(Dfk.checkpoint)
        return { results, checkpoint, dir: yield* Dfk.runDir }
      }).pipe(
        withStore({ runDir: root, checkpointMode: "manual" }, store, CheckpointFiles.layer(["virtual/000/checkpoint"]))
      )
      assert.deepStrictEqual(value.results, [3, 6])
      assert.strictEqual(bodies, before + 2)
      assert.isTrue(Exit.isSuccess(value.checkpoint), cause(value.checkpoint))
      const written: Array<[unknown, unknown]> = []
      yield* memory.load(path.join(value.dir, "checkpoint"), (e) => {
        written.push([e.input, typeof e.time])
      })
      assert.deepStrictEqual(written, [[1, "string"], [2, "string"]])
    }))
})
