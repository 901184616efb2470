/**
 * The one store suite: what every `CheckpointStore` layer must do, and the kernel writing
 * through it and resuming from it. Run over each store layer (test/CheckpointStore.test.ts:
 * files, memory, a store of JSON text; test/SqlStore.test.ts: SQLite and PostgreSQL).
 */
import { assert, describe, it } from "@effect/vitest"
import {
  App,
  CheckpointFiles,
  CheckpointStore,
  Dfk,
  getAllCheckpoints,
  getLastCheckpoint,
  Memo,
  RunDirs
} from "effect-dfk"
import type { CheckpointEntry, DfkConfig, EncodedEntry } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as path from "node:path"
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
          seen.map((e) => ({
            hash: e.hash,
            app: e.app,
            version: e.version,
            input: e.input,
            result: e.result,
            time: e.time
          })),
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
          seen.map((e) => ({
            hash: e.hash,
            app: e.app,
            version: e.version,
            input: e.input,
            result: e.result,
            time: e.time
          })),
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
        // A store that is loaded: the second run carried the results forward, so the last
        // checkpoint alone is enough. A shared store (lookups on demand) keeps one entry per
        // key in all: every run's checkpoints answer together.
        const store = yield* CheckpointStore
        const listed = store.lookup === undefined ? yield* getLastCheckpoint(root) : all
        const [third] = yield* run({}, CheckpointFiles.layer(listed))
        assert.deepStrictEqual(third, first)
        assert.strictEqual(bodies, 3)
      }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

    // DESIGN §3 on storage, whatever the store: the same answers as with the JSON Lines files.
    describe("the storage contract (DESIGN §3)", () => {
      const entriesOf = (dir: string) =>
        Effect.flatMap(CheckpointStore, (store) => {
          const seen: Array<CheckpointEntry> = []
          return Effect.as(store.load(dir, (e) => seen.push(e)), seen)
        })

      it.scoped("task_exit: a result's entry is in the store before its caller sees the result", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          const seenAtReturn: Array<number> = []
          const app = App.make(
            { name: "contract_inc", input: Schema.Number, output: Schema.Number, cache: true },
            (x) => Effect.succeed(x + 1)
          )
          yield* Effect.gen(function*() {
            const { checkpointDir } = yield* Dfk
            for (const x of [1, 2, 3]) {
              yield* app(x)
              seenAtReturn.push((yield* entriesOf(checkpointDir)).length)
            }
          }).pipe(Effect.provide(Dfk.layer({ runDir: root, checkpointMode: "task_exit" })))
          assert.deepStrictEqual(seenAtReturn, [1, 2, 3])
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

      it.scoped("every mode writes what is pending at the close; failures are never stored", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          const app = App.make(
            { name: "contract_half", input: Schema.Number, output: Schema.Number, cache: true },
            (x) => x % 2 === 0 ? Effect.succeed(x / 2) : Effect.fail("odd")
          )
          for (const mode of ["periodic", "dfk_exit", "manual"] as const) {
            const dir = yield* Effect.gen(function*() {
              yield* Effect.forEach([2, 3, 4], (x) => Effect.either(app(x)))
              return (yield* Dfk).checkpointDir
            }).pipe(
              Effect.provide(
                Dfk.layer({ runDir: path.join(root, mode), checkpointMode: mode, checkpointPeriod: "1 hour" })
              )
            )
            const entries = yield* entriesOf(dir)
            assert.deepStrictEqual(entries.map((e) => e.input).sort(), [2, 4], mode)
            assert.deepStrictEqual(entries.map((e) => e.result).sort(), [1, 2], mode)
          }
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

      it.scoped("listed checkpoints load in order, the last entry of a key wins; a new version misses", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          const store = yield* CheckpointStore
          let bodies = 0
          const make = (version: string | undefined) =>
            App.make(
              { name: "contract_label", input: Schema.Number, output: Schema.String, cache: true, version },
              (x) => Effect.sync(() => (bodies++, `computed ${x}`))
            )
          const key = yield* Memo.key({ name: "contract_label", input: 5 })
          const at = (label: string): CheckpointEntry => ({
            hash: key,
            app: "contract_label",
            version: null,
            input: 5,
            result: label,
            time: new Date(0).toISOString()
          })
          const a = path.join(root, "a", "checkpoint")
          const b = path.join(root, "b", "checkpoint")
          yield* store.append(a, [at("a1"), at("a2")])
          yield* store.append(b, [at("b1")])
          const run = (dirs: ReadonlyArray<string>, version?: string) =>
            make(version)(5).pipe(
              Effect.provide(Dfk.layer({ runDir: path.join(root, "runs") })),
              Effect.provide(CheckpointFiles.layer(dirs))
            )
          assert.strictEqual(yield* run([b, a]), "a2")
          assert.strictEqual(yield* run([a, b]), "b1")
          assert.strictEqual(bodies, 0)
          assert.strictEqual(yield* run([a, b], "2"), "computed 5")
          assert.strictEqual(bodies, 1)
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

      it.scoped("a tombstone loads back as one; the last entry of a key wins, so after a tombstone a call misses", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          const store = yield* CheckpointStore
          let bodies = 0
          const app = App.make(
            { name: "contract_tomb", input: Schema.Number, output: Schema.String, cache: true },
            (x) => Effect.sync(() => (bodies++, `computed ${x}`))
          )
          const key = yield* Memo.key({ name: "contract_tomb", input: 5 })
          const at = (label: string): CheckpointEntry => ({
            hash: key,
            app: "contract_tomb",
            version: null,
            input: 5,
            result: label,
            time: new Date(0).toISOString()
          })
          const tombstone: CheckpointEntry = { ...at("x"), result: undefined, deleted: true }
          const a = path.join(root, "a", "checkpoint")
          const b = path.join(root, "b", "checkpoint")
          yield* store.append(a, [at("a1"), tombstone])
          yield* store.append(b, [at("b1")])
          const loaded = yield* entriesOf(a)
          assert.deepStrictEqual(loaded.map((e) => [e.result, e.deleted === true]), [["a1", false], [undefined, true]])
          assert.deepStrictEqual(loaded[1]!.input, 5)
          const run = (dirs: ReadonlyArray<string>) =>
            app(5).pipe(
              Effect.provide(Dfk.layer({ runDir: path.join(root, "runs") })),
              Effect.provide(CheckpointFiles.layer(dirs))
            )
          assert.strictEqual(yield* run([b, a]), "computed 5") // the tombstone is the last entry
          assert.strictEqual(bodies, 1)
          assert.strictEqual(yield* run([a, b]), "b1") // a newer entry after it
          assert.strictEqual(bodies, 1)
          if (store.lookup !== undefined) {
            const answers = yield* store.lookup({ _tag: "Dirs", dirs: [b, a] }, [key])
            assert.deepStrictEqual(answers, [undefined])
            const later = yield* store.lookup({ _tag: "Dirs", dirs: [a, b] }, [key])
            assert.strictEqual(later[0]?.result, "b1")
          }
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

      it.scoped("Dfk.invalidate under default resume: the next run misses the key, the one after serves its new entry", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          let bodies = 0
          const app = App.make(
            { name: "contract_invalidate", input: Schema.Number, output: Schema.Number, cache: true },
            (x) => Effect.sync(() => (bodies++, x + bodies * 100))
          )
          const kernel = Dfk.layer({ runDir: root, checkpointMode: "task_exit" })
          const first = yield* Effect.all([app(1), app(2)]).pipe(Effect.provide(kernel))
          yield* Dfk.invalidate(app, 1).pipe(Effect.provide(kernel))
          const second = yield* Effect.all([app(1), app(2)]).pipe(Effect.provide(kernel))
          assert.strictEqual(bodies, 3)
          assert.strictEqual(second[1], first[1])
          assert.notStrictEqual(second[0], first[0])
          const third = yield* Effect.all([app(1), app(2)]).pipe(Effect.provide(kernel))
          assert.deepStrictEqual(third, second)
          assert.strictEqual(bodies, 3)
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))

      it.scoped("an entry whose hash is not the key of its own input is never served", () =>
        Effect.gen(function*() {
          const root = yield* tmpDir
          const store = yield* CheckpointStore
          let bodies = 0
          const app = App.make(
            { name: "contract_tampered", input: Schema.Number, output: Schema.Number, cache: true },
            (x) => Effect.sync(() => (bodies++, x * 10))
          )
          const key = yield* Memo.key({ name: "contract_tampered", input: 1 })
          const dir = path.join(root, "x", "checkpoint")
          // The key of input 1, with another input and result: edited by hand.
          yield* store.append(dir, [{
            hash: key,
            app: "contract_tampered",
            version: null,
            input: 2,
            result: 999,
            time: new Date(0).toISOString()
          }])
          const value = yield* app(1).pipe(
            Effect.provide(Dfk.layer({ runDir: path.join(root, "runs") })),
            Effect.provide(CheckpointFiles.layer([dir]))
          )
          assert.strictEqual(value, 10)
          assert.strictEqual(bodies, 1)
        }).pipe(Effect.provide(storeLayer), Effect.provide(platform)))
    })
  })
}
