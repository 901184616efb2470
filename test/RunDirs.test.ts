/**
 * `RunDirs`: listing the runs under a run dir, and allocating new ones atomically.
 */
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, getAllCheckpoints, RunDirs } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { platform, tmpDir } from "./util.ts"

describe("RunDirs", () => {
  it.scoped("list: the numeric directories, in numeric order, with their checkpoint dirs", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      assert.deepStrictEqual(yield* Effect.provide(RunDirs.list(path.join(root, "missing")), platform), [])
      for (const name of ["002", "000", "1000", "999", "010", "notes", "01a"]) fs.mkdirSync(path.join(root, name))
      // A file with a run's name is not a run.
      fs.writeFileSync(path.join(root, "003"), "")
      const runs = yield* Effect.provide(RunDirs.list(root), platform)
      assert.deepStrictEqual(runs.map((r) => r.name), ["000", "002", "010", "999", "1000"])
      assert.deepStrictEqual(runs.map((r) => r.number), [0, 2, 10, 999, 1000])
      assert.deepStrictEqual(runs[1], {
        name: "002",
        number: 2,
        path: path.join(root, "002"),
        checkpointDir: path.join(root, "002", "checkpoint")
      })
      // getAllCheckpoints lists the checkpoint dirs among them that hold a checkpoint.
      fs.mkdirSync(runs[2]!.checkpointDir)
      fs.writeFileSync(path.join(runs[2]!.checkpointDir, "tasks.jsonl"), "")
      assert.deepStrictEqual(yield* Effect.provide(getAllCheckpoints(root), platform), [runs[2]!.checkpointDir])
    }))

  it.scoped("allocate: the next number, at least three digits, never one already taken", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const runDir = path.join(root, "runinfo")
      const alloc = Effect.provide(RunDirs.allocate(runDir), platform)
      assert.strictEqual(yield* alloc, path.join(runDir, "000"))
      assert.strictEqual(yield* alloc, path.join(runDir, "001"))
      fs.mkdirSync(path.join(runDir, "999"))
      assert.strictEqual(yield* alloc, path.join(runDir, "1000"))
      // Concurrent allocations never share a directory.
      const many = yield* Effect.all(Array.from({ length: 20 }, () => alloc), { concurrency: "unbounded" })
      assert.strictEqual(new Set(many).size, 20)
      assert.isTrue(many.every((dir) => fs.statSync(dir).isDirectory()))
      const numbers = (yield* Effect.provide(RunDirs.list(runDir), platform)).map((r) => r.number)
      assert.deepStrictEqual(numbers, [0, 1, 999, ...Array.from({ length: 21 }, (_, i) => 1000 + i)])
    }))

  it.scoped("allocate: a file in the way fails with the platform error", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const file = path.join(root, "file")
      fs.writeFileSync(file, "")
      const result = yield* Effect.either(Effect.provide(RunDirs.allocate(file), platform))
      assert.strictEqual(result._tag, "Left")
    }))

  // As list reads the provided store's own runs (memory, SQL), allocate makes the run there:
  // a tool that adds a run through the public API (`dfk compact`) gets a number the store gave
  // out, never one its next run takes again.
  it.scoped("allocate: in the provided store when it keeps runs of its own, as list reads them; no folder", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const runDir = path.join(root, "nightly")
      const store = CheckpointStore.makeMemory()
      const inStore = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(Effect.provideService(CheckpointStore, store), Effect.provide(platform))
      const first = yield* inStore(RunDirs.allocate(runDir))
      const second = yield* Effect.orDie(store.runs!.allocate(runDir))
      assert.notStrictEqual(second, first, "the store gave out the number allocate returned")
      assert.deepStrictEqual((yield* inStore(RunDirs.list(runDir))).map((r) => r.path), [first, second])
      assert.isFalse(fs.existsSync(first), "a store with runs of its own needs no folder")
    }))
})
