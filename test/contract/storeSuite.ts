/**
 * The one store suite: what every `CheckpointStore` layer must do, and the kernel writing
 * through it and resuming from it. Run over each store layer (test/CheckpointStore.test.ts:
 * files, memory, a store of JSON text; test/SqlStore.test.ts: SQLite and PostgreSQL).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { App, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, getLastCheckpoint, RunDirs } from "effect-dfk"
import type { CheckpointEntry, DfkConfig, EncodedEntry } from "effect-dfk"
import { platform, tmpDir } from "../util.ts"

export const entry = (n: number): CheckpointEntry => ({
  hash: n.toString(16).padStart(64, "0"),
  app: "app",
  version: n % 2 === 0 ? null : "v1",
  input: { n, nested: { list: [1, "two", null] } },
  result: { value: n * 10 },
  time: new Date(0).toISOString()
})

export const storeSuite = (name: string, storeLayer: Layer.Layer<CheckpointStore, unknown>): void => {
  describe(name, () => {
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
