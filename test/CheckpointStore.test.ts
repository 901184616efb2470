/**
 * One suite, run over each store layer: whatever backs the checkpoints, the kernel
 * behaves the same.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, BadCheckpoint, CheckpointFiles, CheckpointStore, Dfk } from "effect-dfk"
import type { CheckpointEntry, CheckpointStoreService, DfkConfig } from "effect-dfk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { entry, storeSuite } from "./contract/storeSuite.ts"
import { captureLogs, platform, tmpDir } from "./util.ts"

/**
 * A store that keeps each entry as the JSON text of what it is handed, as a key-value or SQL
 * store would: it sees only the entries' own fields.
 */
const layerJsonText = Layer.sync(CheckpointStore, (): CheckpointStoreService => {
  const dirs = new Map<string, Array<string>>()
  return {
    append: (dir, entries) =>
      Effect.sync(() => {
        const rows = dirs.get(dir) ?? []
        for (const e of entries) rows.push(JSON.stringify(e))
        dirs.set(dir, rows)
      }),
    load: (dir, onEntry) =>
      Effect.suspend(() => {
        const rows = dirs.get(dir)
        if (rows === undefined) {
          return Effect.fail(new BadCheckpoint({ path: dir, line: 0, reason: "no checkpoint here" }))
        }
        for (const row of rows) onEntry(JSON.parse(row))
        return Effect.void
      }),
    exists: (dir) => Effect.sync(() => dirs.has(dir))
  }
})

const stores = [
  ["layerFileSystem", CheckpointStore.layerFileSystem.pipe(Layer.provide(platform))],
  ["layerMemory", CheckpointStore.layerMemory],
  ["a store of JSON text (test)", layerJsonText]
] as const

for (const [name, storeLayer] of stores) storeSuite(`CheckpointStore.${name}`, storeLayer)

describe("a store that misbehaves", () => {
  const double = App.make(
    { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
    (x) => Effect.succeed(x * 2)
  )
  const withStore = (config: DfkConfig, store: CheckpointStoreService, files = CheckpointFiles.none) =>
    Effect.provide(
      Layer.provide(Dfk.layer(config), Layer.mergeAll(files, Layer.succeed(CheckpointStore, store), platform))
    )

  /** A memory store whose first append is interrupted inside it (a fiber it joined, say). */
  const interruptedOnce = (): CheckpointStoreService => {
    const memory = CheckpointStore.makeMemory()
    let appends = 0
    return {
      ...memory,
      append: (dir, entries, options) => ++appends === 1 ? Effect.interrupt : memory.append(dir, entries, options)
    }
  }

  it.scoped("a malformed entry it loads is a BadCheckpoint naming the dir and the entry, before anything runs", () =>
    Effect.gen(function*() {
      const good = entry(1)
      const store: CheckpointStoreService = {
        ...CheckpointStore.makeMemory(),
        load: (_dir, onEntry) =>
          Effect.sync(() => {
            onEntry(good)
            onEntry({ ...good, time: undefined as unknown as string })
          })
      }
      const root = yield* tmpDir
      const error = yield* Effect.flip(
        double(1).pipe(withStore({ runDir: root }, store, CheckpointFiles.layer(["elsewhere"])))
      )
      assert.strictEqual(error._tag, "BadCheckpoint")
      const bad = error as BadCheckpoint
      assert.strictEqual(bad.path, "elsewhere")
      assert.strictEqual(bad.line, 2)
      assert.include(bad.reason, "\"time\" is not a string")
    }))

  /** A store over an array of rows, handing them to `load` through `give` (which may bend them). */
  const rowsStore = (
    give: (rows: ReadonlyArray<CheckpointEntry>, onEntry: (entry: CheckpointEntry) => void) => void
  ): CheckpointStoreService => {
    const rows: Array<CheckpointEntry> = []
    return {
      append: (_dir, entries) =>
        Effect.sync(() => {
          for (const e of entries) rows.push(e)
        }),
      load: (_dir, onEntry) => Effect.sync(() => give(rows, onEntry)),
      exists: () => Effect.succeed(rows.length > 0)
    }
  }

  it.scoped("a store that gives back only hash, result and time is a BadCheckpoint: the integrity rule needs app, version and input", () =>
    Effect.gen(function*() {
      const store = rowsStore((rows, onEntry) => {
        for (const e of rows) onEntry({ hash: e.hash, result: e.result, time: e.time } as CheckpointEntry)
      })
      const root = yield* tmpDir
      yield* double(21).pipe(withStore({ runDir: root, checkpointMode: "task_exit" }, store))
      const error = yield* Effect.flip(
        double(21).pipe(
          withStore({ runDir: root, checkpointMode: "task_exit" }, store, CheckpointFiles.layer(["anywhere"]))
        )
      )
      assert.strictEqual(error._tag, "BadCheckpoint")
      assert.include((error as BadCheckpoint).reason, "\"app\" is not a string")
    }))

  it.scoped("an entry from a store whose hash is not the key of its own app, version and input is not served", () =>
    Effect.gen(function*() {
      // The store mixes up its rows: the entry of double(4) comes back under the hash of double(3).
      const store = rowsStore((rows, onEntry) => {
        const three = rows.find((e) => e.input === 3)!
        const four = rows.find((e) => e.input === 4)!
        onEntry({ ...four, hash: three.hash })
      })
      const root = yield* tmpDir
      yield* Effect.all([double(3), double(4)]).pipe(withStore({ runDir: root, checkpointMode: "task_exit" }, store))
      const logs = captureLogs()
      const value = yield* Effect.zip(double(3), Dfk.stats).pipe(
        withStore({ runDir: root, checkpointMode: "task_exit" }, store, CheckpointFiles.layer(["anywhere"])),
        Effect.provide(logs.layer)
      )
      assert.strictEqual(value[0], 6, "the body ran: 8 (the result of double(4)) is not served for double(3)")
      assert.strictEqual(value[1].misses, 1)
      assert.isTrue(logs.lines.some((l) => l.level === "WARN" && l.message.includes("is not served")))
    }))

  it.scoped("an append that is interrupted (inside the store) is a CheckpointError; the entries stay pending", () =>
    Effect.gen(function*() {
      const store = interruptedOnce()
      const root = yield* tmpDir
      const value = yield* Effect.gen(function*() {
        yield* double(1)
        const first = yield* Effect.exit(Dfk.checkpoint)
        const pending = (yield* Dfk.stats).pending
        yield* Dfk.checkpoint
        return { first, pending, stats: yield* Dfk.stats }
      }).pipe(withStore({ runDir: root, checkpointMode: "manual" }, store))
      assert.isTrue(Exit.isFailure(value.first))
      if (Exit.isFailure(value.first)) {
        const failure = value.first.cause
        assert.strictEqual(failure._tag, "Fail")
        assert.strictEqual((failure as { error: { _tag: string } }).error._tag, "CheckpointError")
      }
      assert.strictEqual(value.pending, 1)
      assert.deepStrictEqual({ checkpointed: value.stats.checkpointed, pending: value.stats.pending }, {
        checkpointed: 1,
        pending: 0
      })
    }))

  it.scoped("periodic: an interrupted append is logged, and the passes go on", () =>
    Effect.gen(function*() {
      const store = interruptedOnce()
      const logs = captureLogs()
      const root = yield* tmpDir
      const stats = yield* Effect.gen(function*() {
        yield* double(1)
        yield* TestClock.adjust("1 second") // the first pass: interrupted inside the store
        yield* double(2)
        yield* TestClock.adjust("1 second") // the second pass writes both
        for (let i = 0; i < 100 && (yield* Dfk.stats).checkpointed < 2; i++) yield* Effect.yieldNow()
        return yield* Dfk.stats
      }).pipe(
        withStore({ runDir: root, checkpointMode: "periodic", checkpointPeriod: "1 second" }, store),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual({ checkpointed: stats.checkpointed, pending: stats.pending }, {
        checkpointed: 2,
        pending: 0
      })
      assert.isTrue(logs.lines.some((l) => l.level === "ERROR" && l.message.includes("Periodic checkpoint failed")))
    }))
})

describe("task_exit passes (group commit)", () => {
  it.scoped("calls whose bodies end together are written in one pass, and each caller is answered after it", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const memory = CheckpointStore.makeMemory()
      // The size of each pass the store is handed (it writes by `append` or `appendEncoded`).
      const passes: Array<number> = []
      const store: CheckpointStoreService = {
        ...memory,
        append: (dir, entries, options) =>
          Effect.suspend(() => (passes.push(entries.length), memory.append(dir, entries, options))),
        ...(memory.appendEncoded === undefined ? {} : {
          appendEncoded: (dir, entries, options) =>
            Effect.suspend(() => (passes.push(entries.length), memory.appendEncoded!(dir, entries, options)))
        })
      }
      const gate = yield* Deferred.make<void>()
      const gated = App.make(
        { name: "gated", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.as(Deferred.await(gate), x * 3)
      )
      const [values, stats] = yield* Effect.gen(function*() {
        const all = yield* Effect.fork(Effect.forEach(Array.from({ length: 64 }, (_, i) => i), gated, {
          concurrency: "unbounded"
        }))
        // Every body waits at the gate, then all of them end at once.
        for (let i = 0; i < 100 && (yield* Dfk.detailedStats).running < 64; i++) yield* Effect.yieldNow()
        assert.strictEqual((yield* Dfk.detailedStats).running, 64)
        yield* Deferred.succeed(gate, undefined)
        const values = yield* Fiber.join(all)
        return [values, yield* Dfk.stats] as const
      }).pipe(
        Effect.provide(
          Layer.provide(
            Dfk.layer({ runDir: root, checkpointMode: "task_exit" }),
            Layer.mergeAll(CheckpointFiles.none, Layer.succeed(CheckpointStore, store), platform)
          )
        )
      )
      assert.deepStrictEqual(values, Array.from({ length: 64 }, (_, i) => i * 3))
      // Each caller returned once its entry was written: all 64, in the first pass.
      assert.strictEqual(stats.checkpointed, 64)
      assert.strictEqual(passes[0], 64, `passes: ${passes.join(", ")}`)
    }))
})
