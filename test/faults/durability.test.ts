import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk } from "effect-dfk"
import type { Durability } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { checkpointEntries, platform, tmpDir } from "../util.ts"

/** The platform's FileSystem, recording the path of every `sync` of an open file. */
const recordingFs = (syncs: Array<string>) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs) => ({
      ...fs,
      open: (p: string, options?: FileSystem.OpenFileOptions) =>
        Effect.map(fs.open(p, options), (file) =>
          new Proxy(file, {
            get: (target, key) =>
              key === "sync"
                ? Effect.zipRight(Effect.sync(() => syncs.push(p)), target.sync)
                : Reflect.get(target, key)
          }))
    }))
  ).pipe(Layer.provide(platform))

const double = App.make(
  { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.succeed(x * 2)
)

const runWith = (root: string, durability: Durability | undefined, syncs: Array<string>) =>
  Effect.forEach([1, 2, 3], (x) => double(x)).pipe(
    Effect.zipRight(Dfk.runDir),
    Effect.provide(
      Dfk.layer({ runDir: root, checkpointMode: "task_exit", ...(durability ? { durability } : {}) }).pipe(
        Layer.provide(CheckpointFiles.none),
        Layer.provide(Layer.merge(platform, recordingFs(syncs)))
      )
    )
  )

describe("durability", () => {
  it.scoped("fsync syncs the checkpoint file on every pass and its directory once", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const syncs: Array<string> = []
      const runDir = yield* runWith(root, "fsync", syncs)
      const file = path.join(runDir, "checkpoint", "tasks.jsonl")
      // Three task_exit passes and the pass at scope close.
      assert.deepStrictEqual(syncs.filter((p) => p === file).length, 4)
      assert.deepStrictEqual(syncs.filter((p) => p === path.join(runDir, "checkpoint")).length, 1)
      assert.strictEqual(checkpointEntries(runDir).length, 3)
    }))

  it.scoped("the default does not fsync", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const syncs: Array<string> = []
      const runDir = yield* runWith(root, undefined, syncs)
      assert.deepStrictEqual(syncs, [])
      assert.strictEqual(checkpointEntries(runDir).length, 3)
    }))

  it.scoped("an unknown durability is a ConfigurationError", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const error = yield* Effect.flip(runWith(root, "sometimes" as Durability, []))
      assert.strictEqual(error._tag, "ConfigurationError")
    }))
})
