/**
 * One suite, run over each store layer: whatever backs the checkpoints, the kernel
 * behaves the same.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { App, BadCheckpoint, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, getLastCheckpoint } from "effect-dfk"
import type { CheckpointEntry, CheckpointStoreService, DfkConfig } from "effect-dfk"
import { platform, tmpDir } from "./util.ts"

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
