/**
 * One suite, run over each store layer: whatever backs the checkpoints, the kernel
 * behaves the same.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as path from "node:path"
import { App, BadCheckpoint, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, getLastCheckpoint, RunDirs } from "effect-dfk"
import type { CheckpointEntry, CheckpointStoreService, DfkConfig, EncodedEntry } from "effect-dfk"
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
        if (rows === undefined) return Effect.fail(new BadCheckpoint({ path: dir, line: 0, reason: "no checkpoint here" }))
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

const entry = (n: number): CheckpointEntry => ({
  hash: n.toString(16).padStart(64, "0"),
  app: "app",
  version: n % 2 === 0 ? null : "v1",
  input: { n, nested: { list: [1, "two", null] } },
  result: { value: n * 10 },
  time: new Date(0).toISOString()
})

for (const [name, storeLayer] of stores) {
  describe(`CheckpointStore.${name}`, () => {
    it.scoped("appends and loads entries in order", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "000", "checkpoint")
        const store = yield* CheckpointStore
        assert.isFalse(yield* store.exists(dir))
        yield* store.append(dir, [entry(1), entry(2)])
        yield* store.append(dir, [])
        yield* store.append(dir, [entry(3)])
        assert.isTrue(yield* store.exists(dir))
        const seen: Array<CheckpointEntry> = []
        yield* store.load(dir, (e) => seen.push(e))
        assert.deepStrictEqual(
          seen.map((e) => ({ hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time })),
          [entry(1), entry(2), entry(3)]
        )
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("a large append (several MiB, multi-byte text, a line longer than a MiB) loads back whole", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "000", "checkpoint")
        const store = yield* CheckpointStore
        const many: Array<CheckpointEntry> = Array.from({ length: 6000 }, (_, n) => ({
          ...entry(n),
          result: { value: n, text: `é€😀${"x".repeat(n % 700)}` }
        }))
        many[3000] = { ...entry(3000), result: "y".repeat(1_500_000) }
        yield* store.append(dir, many)
        const seen: Array<CheckpointEntry> = []
        yield* store.load(dir, (e) => seen.push(e))
        assert.strictEqual(seen.length, many.length)
        assert.deepStrictEqual(seen.map((e) => e.result), many.map((e) => e.result))
        assert.deepStrictEqual(seen.map((e) => e.hash), many.map((e) => e.hash))
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("an empty append still makes a loadable checkpoint", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "000", "checkpoint")
        const store = yield* CheckpointStore
        yield* store.append(dir, [])
        let count = 0
        yield* store.load(dir, () => count++)
        assert.strictEqual(count, 0)
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("loading a dir without a checkpoint is a BadCheckpoint", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const store = yield* CheckpointStore
        const error = yield* Effect.flip(store.load(path.join(root, "nothing"), () => {}))
        assert.strictEqual(error._tag, "BadCheckpoint")
        assert.include(error.path, "nothing")
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("runs: allocated in order, listed oldest first, and the kernel's run is one of them", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const store = yield* CheckpointStore
        const runs = store.runs
        if (runs !== undefined) {
          assert.deepStrictEqual(yield* runs.list(root), [])
          const first = yield* runs.allocate(root)
          const second = yield* runs.allocate(root)
          assert.deepStrictEqual([first, second], [path.join(root, "000"), path.join(root, "001")])
          assert.deepStrictEqual(yield* runs.list(root), [first, second])
          // Another runDir has runs of its own.
          assert.deepStrictEqual(yield* runs.allocate(path.join(root, "other")), path.join(root, "other", "000"))
        }
        const runDir = yield* Dfk.runDir.pipe(Effect.provide(Dfk.layer({ runDir: root })))
        assert.strictEqual(runDir, path.join(root, runs === undefined ? "000" : "002"))
        const listed = yield* RunDirs.list(root)
        assert.deepStrictEqual(listed.map((run) => run.path).at(-1), runDir)
      }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

    it.scoped("encoded entries (appendEncoded, when the store has it) load back as entries", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "000", "checkpoint")
        const store = yield* CheckpointStore
        const encoded: Array<EncodedEntry> = [1, 2].map((n) => {
          const e = entry(n)
          return { ...e, input: JSON.stringify(e.input), result: JSON.stringify(e.result) }
        })
        if (store.appendEncoded !== undefined) yield* store.appendEncoded(dir, encoded)
        else yield* store.append(dir, [entry(1), entry(2)])
        const seen: Array<CheckpointEntry> = []
        yield* store.load(dir, (e) => seen.push(e))
        assert.deepStrictEqual(
          seen.map((e) => ({ hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time })),
          [entry(1), entry(2)]
        )
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("its queue (when it has one) writes the queued entries in order; a batch put back is written again", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "000", "checkpoint")
        const store = yield* CheckpointStore
        if (store.queue === undefined) return
        const queue = store.queue(dir, {})
        const encoded = (n: number): EncodedEntry => {
          const e = entry(n)
          return { ...e, input: JSON.stringify(e.input), result: JSON.stringify(e.result) }
        }
        queue.push(encoded(1))
        queue.push(encoded(2))
        const first = queue.take()
        assert.strictEqual(first.count, 2)
        queue.push(encoded(3))
        queue.putBack(first, 1)
        assert.strictEqual(queue.size, 2)
        yield* queue.write(queue.take())
        const seen: Array<CheckpointEntry> = []
        yield* store.load(dir, (e) => seen.push(e))
        assert.deepStrictEqual(seen.map((e) => e.input), [entry(2).input, entry(3).input])
      }).pipe(Effect.provide(storeLayer)))

    it.scoped("the kernel writes through it and resumes from it", () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        let bodies = 0
        const cube = App.make(
          { name: "cube", input: Schema.Number, output: Schema.Number, cache: true },
          (x) => Effect.sync(() => (bodies++, x ** 3))
        )
        const run = (config: DfkConfig, files?: Layer.Layer<CheckpointFiles, never, any>) => {
          const kernel = Dfk.layer({ runDir: root, ...config })
          return Effect.forEach([1, 2, 3], (x) => cube(x)).pipe(
            Effect.zip(Dfk.detailedStats),
            Effect.provide(files === undefined ? kernel : Layer.provide(kernel, files))
          )
        }
        const [first] = yield* run({ checkpointMode: "task_exit" })
        const [second, stats] = yield* run({ checkpointMode: "dfk_exit" }) // default resume
        assert.deepStrictEqual(first, [1, 8, 27])
        assert.deepStrictEqual(second, first)
        assert.strictEqual(bodies, 3)
        assert.strictEqual(stats.fromCheckpoint, 3)
        const all = yield* getAllCheckpoints(root)
        assert.deepStrictEqual(all, [path.join(root, "000", "checkpoint"), path.join(root, "001", "checkpoint")])
        // The second run carried the results forward, so the last checkpoint alone is enough.
        const [third] = yield* run({}, CheckpointFiles.layer(yield* getLastCheckpoint(root)))
        assert.deepStrictEqual(third, first)
        assert.strictEqual(bodies, 3)
      }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))
  })
}

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
      const error = yield* Effect.flip(double(1).pipe(withStore({ runDir: root }, store, CheckpointFiles.layer(["elsewhere"]))))
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
      append: (_dir, entries) => Effect.sync(() => void rows.push(...entries)),
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
      const error = yield* Effect.flip(double(21).pipe(
        withStore({ runDir: root, checkpointMode: "task_exit" }, store, CheckpointFiles.layer(["anywhere"]))
      ))
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
      assert.deepStrictEqual({ checkpointed: value.stats.checkpointed, pending: value.stats.pending }, { checkpointed: 1, pending: 0 })
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
      assert.deepStrictEqual({ checkpointed: stats.checkpointed, pending: stats.pending }, { checkpointed: 2, pending: 0 })
      assert.isTrue(logs.lines.some((l) => l.level === "ERROR" && l.message.includes("Periodic checkpoint failed")))
    }))
})
