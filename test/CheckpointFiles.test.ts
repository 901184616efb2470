import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk, getAllCheckpoints, getLastCheckpoint, Memo } from "effect-dfk"
import type { DfkConfig } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, platform, tmpDir } from "./util.ts"

let runs = 0
const square = App.make(
  { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.sync(() => (runs++, x * x))
)

/** Runs `effect` under a kernel with the given config and (optional) CheckpointFiles layer. */
const run = <A, E>(
  config: DfkConfig,
  effect: Effect.Effect<A, E, Dfk>,
  files?: Layer.Layer<CheckpointFiles, never, any>
) => {
  const kernel = Dfk.layer(config)
  const layer = files === undefined ? kernel : kernel.pipe(Layer.provide(files))
  return Effect.zip(effect, Dfk.runDir).pipe(Effect.provide(Layer.provide(layer, platform)), Effect.provide(platform))
}

const counting = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const before = runs
    return Effect.map(effect, (value) => ({ value, bodies: runs - before }))
  })

describe("CheckpointFiles", () => {
  it.scoped("getAllCheckpoints / getLastCheckpoint list checkpoint dirs in numeric order", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const list = (e: Effect.Effect<Array<string>, never, any>) => Effect.provide(e, platform)
      assert.deepStrictEqual(yield* list(getAllCheckpoints(path.join(root, "missing"))), [])
      assert.deepStrictEqual(yield* list(getLastCheckpoint(root)), [])
      for (const name of ["000", "001", "002", "999", "1000"]) {
        fs.mkdirSync(path.join(root, name, "checkpoint"), { recursive: true })
        if (name !== "001") fs.writeFileSync(path.join(root, name, "checkpoint", "tasks.jsonl"), "")
      }
      fs.mkdirSync(path.join(root, "zzz", "checkpoint"), { recursive: true })
      fs.writeFileSync(path.join(root, "zzz", "checkpoint", "tasks.jsonl"), "")
      fs.writeFileSync(path.join(root, "X"), "")
      const all = yield* list(getAllCheckpoints(root))
      assert.deepStrictEqual(all, ["000", "002", "999", "1000"].map((n) => path.join(root, n, "checkpoint")))
      assert.deepStrictEqual(yield* list(getLastCheckpoint(root)), [path.join(root, "1000", "checkpoint")])
    }))

  it.scoped("resumes from an explicit list, with or without a mode; results carry forward", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [first, dir0] = yield* run(
        { runDir: root, checkpointMode: "task_exit" },
        counting(square(3)),
        CheckpointFiles.none
      )
      assert.deepStrictEqual(first, { value: 9, bodies: 1 })
      const cp0 = path.join(dir0, "checkpoint")
      const [second, dir1] = yield* run(
        { runDir: root },
        counting(Effect.zip(square(3), Dfk.detailedStats)),
        CheckpointFiles.layer([cp0])
      )
      assert.strictEqual(second.value[0], 9)
      assert.strictEqual(second.bodies, 0)
      assert.strictEqual(second.value[1].hits, 1)
      assert.strictEqual(second.value[1].fromCheckpoint, 1)
      // No mode: the carried-forward entry is pending, not written.
      assert.strictEqual(second.value[1].pending, 1)
      assert.isFalse(fs.existsSync(path.join(dir1, "checkpoint")))
    }))

  it.scoped("last(): resuming from only the newest checkpoint never loses older results", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const config = { runDir: root, checkpointMode: "task_exit" } as const
      const a = yield* run(config, counting(square(4)), CheckpointFiles.last(root))
      const b = yield* run(config, counting(square(4)), CheckpointFiles.last(root))
      const c = yield* run(config, counting(square(4)), CheckpointFiles.last(root))
      assert.deepStrictEqual([a[0].bodies, b[0].bodies, c[0].bodies], [1, 0, 0])
      assert.deepStrictEqual(checkpointEntries(b[1]).map((e) => e.result), [16])
      assert.deepStrictEqual(checkpointEntries(c[1]).map((e) => e.result), [16])
    }))

  it.scoped("default resume: a mode and no CheckpointFiles loads every checkpoint; none opts out", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const config = { runDir: root, checkpointMode: "dfk_exit" } as const
      yield* run(config, counting(square(5)))
      yield* run(config, counting(square(6)))
      const resumed = yield* run(config, counting(Effect.zip(square(5), square(6))))
      assert.strictEqual(resumed[0].bodies, 0)
      const optedOut = yield* run(config, counting(square(5)), CheckpointFiles.none)
      assert.strictEqual(optedOut[0].bodies, 1)
      // No mode and no CheckpointFiles: nothing is loaded.
      const noMode = yield* run({ runDir: root }, counting(square(5)))
      assert.strictEqual(noMode[0].bodies, 1)
    }))

  it.scoped("BadCheckpoint names the path (and line) for a missing file or a file that is not a checkpoint", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const load = (dir: string) => Effect.flip(run({ runDir: root }, Effect.void, CheckpointFiles.layer([dir])))
      const empty = path.join(root, "empty")
      fs.mkdirSync(empty)
      const missing = yield* load(empty)
      assert.strictEqual(missing._tag, "BadCheckpoint")
      assert.strictEqual((missing as any).path, path.join(empty, "tasks.jsonl"))
      assert.strictEqual((missing as any).line, 0)

      const garbage = path.join(root, "garbage")
      fs.mkdirSync(garbage)
      fs.writeFileSync(path.join(garbage, "tasks.jsonl"), "this is not json\n")
      const bad = yield* load(garbage)
      assert.strictEqual(bad._tag, "BadCheckpoint")
      assert.strictEqual((bad as any).line, 1)

      // Without a final newline too: text (or bytes) that cannot start an entry is no torn write.
      for (
        const [name, content] of [["text", "this is not a checkpoint"], [
          "bytes",
          Buffer.from([0x80, 0x00, 0xff])
        ]] as const
      ) {
        const dir = path.join(root, `unterminated-${name}`)
        fs.mkdirSync(dir)
        fs.writeFileSync(path.join(dir, "tasks.jsonl"), content)
        const error = yield* load(dir)
        assert.strictEqual(error._tag, "BadCheckpoint", name)
        assert.strictEqual((error as any).path, path.join(dir, "tasks.jsonl"))
        assert.strictEqual((error as any).line, 1)
      }

      const shape = path.join(root, "shape")
      fs.mkdirSync(shape)
      const good = JSON.stringify({
        v: 1,
        hash: "a".repeat(64),
        app: "x",
        version: null,
        input: 1,
        result: 1,
        time: "t"
      })
      fs.writeFileSync(path.join(shape, "tasks.jsonl"), `${good}\n${good}\n{"v":2}\n`)
      const wrongShape = yield* load(shape)
      assert.strictEqual((wrongShape as any).line, 3)
      assert.include((wrongShape as any).reason, "version")
    }))

  it.scoped("a torn last line is skipped with a warning", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [dir] = yield* run(
        { runDir: root, checkpointMode: "manual" },
        Effect.zipRight(Effect.zip(square(8), square(9)), Dfk.checkpoint)
      )
      const file = path.join(dir, "tasks.jsonl")
      const text = fs.readFileSync(file, "utf8")
      fs.writeFileSync(file, text.slice(0, text.length - 20)) // cut the second line
      const logs = captureLogs()
      const [result] = yield* run(
        { runDir: root },
        counting(Effect.zip(square(8), square(9))),
        CheckpointFiles.layer([dir])
      )
        .pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(result, { value: [64, 81], bodies: 1 })
      assert.isTrue(logs.lines.some((l) => l.level === "WARN" && l.message.includes("torn last line (line 2)")))
    }))

  it.scoped("an entry that no longer decodes with the output schema is a miss with a warning", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [dir] = yield* run({ runDir: root, checkpointMode: "manual" }, Effect.zipRight(square(10), Dfk.checkpoint))
      const file = path.join(dir, "tasks.jsonl")
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("\"result\":100", "\"result\":\"a hundred\""))
      const logs = captureLogs()
      const [result] = yield* run({ runDir: root }, counting(square(10)), CheckpointFiles.layer([dir]))
        .pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(result, { value: 100, bodies: 1 })
      assert.isTrue(logs.lines.some((l) => l.level === "WARN" && l.message.includes("no longer decodes")))
    }))

  it.scoped("integrity: an entry whose hash was edited to another call's key is never served, nor written again", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [, dir0] = yield* run({ runDir: root, checkpointMode: "task_exit" }, Effect.all([square(3), square(4)]))
      // Give the entry of square(4) = 16 the hash of square(3), and drop the real one.
      const file = path.join(dir0, "checkpoint", "tasks.jsonl")
      const entries = checkpointEntries(dir0)
      const three = entries.find((e) => e.input === 3)!
      const four = entries.find((e) => e.input === 4)!
      fs.writeFileSync(file, JSON.stringify({ ...four, hash: three.hash }) + "\n")
      const logs = captureLogs()
      const [second, dir1] = yield* run({ runDir: root, checkpointMode: "task_exit" }, counting(square(3))).pipe(
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(second, { value: 9, bodies: 1 }, "square(3) runs; 16 is not served")
      const warning = logs.lines.find((l) => l.level === "WARN" && l.message.includes("is not served"))
      assert.isDefined(warning)
      assert.include(warning!.message, "square")
      assert.include(warning!.message, "the hash is not the memo key")
      assert.isFalse(warning!.message.includes("\n"), "one line")
      // This run's checkpoint holds the true entry only.
      assert.deepStrictEqual(checkpointEntries(dir1).map((e) => [e.hash, e.input, e.result]), [[three.hash, 3, 9]])
    }))

  it.scoped("a corrupt line stops the run with a BadCheckpoint that says how to go on (dfk verify, dfk repair)", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const [, dir0] = yield* run({ runDir: root, checkpointMode: "task_exit" }, square(2))
      const cp = path.join(dir0, "checkpoint")
      fs.appendFileSync(path.join(cp, "tasks.jsonl"), "not json\n")
      const error = yield* Effect.flip(run({ runDir: root, checkpointMode: "task_exit" }, square(2)))
      assert.strictEqual(error._tag, "BadCheckpoint")
      assert.include(error.message, `at line 2: the line is not valid JSON`)
      assert.include(
        error.message,
        `dfk verify ${cp} lists every bad line; dfk repair ${cp} moves them to tasks.jsonl.bad`
      )
    }))

  it.scoped("integrity with nested inputs: stored in another key order it is served; one nested value edited, it is not", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const Input = Schema.Struct({
        a: Schema.Struct({
          c: Schema.Array(Schema.Union(Schema.Number, Schema.Struct({ e: Schema.String, f: Schema.Number }))),
          d: Schema.Number
        }),
        b: Schema.Number
      })
      let bodies = 0
      const nested = App.make(
        { name: "nested_in", input: Input, output: Schema.String, cache: true },
        () => Effect.sync(() => (bodies++, "computed"))
      )
      const asked = { a: { c: [1, { e: "x", f: 0 }], d: 2 }, b: 1 }
      const other = { a: { c: [1, { e: "y", f: 0 }], d: 2 }, b: 1 }
      const key = (input: unknown) => Effect.runSync(Memo.key({ name: "nested_in", input }))
      const line = (hash: string, input: string, result: string) =>
        `{"v":1,"hash":"${hash}","app":"nested_in","version":null,"input":${input},"result":"${result}","time":"2026-01-01T00:00:00.000Z"}\n`
      const dir = path.join(root, "given", "checkpoint")
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(
        path.join(dir, "tasks.jsonl"),
        // The asked input, keys in another order than canonical JSON's: a true entry.
        line(key(asked), `{"b":1,"a":{"d":2,"c":[1,{"f":0,"e":"x"}]}}`, "stored") +
          // The entry of the other input, its nested "y" edited to "z": its hash is not its key.
          line(key(other), `{"b":1,"a":{"d":2,"c":[1,{"f":0,"e":"z"}]}}`, "edited")
      )
      const logs = captureLogs()
      const [value] = yield* run(
        { runDir: path.join(root, "runs") },
        Effect.all([nested(asked), nested(other)]),
        CheckpointFiles.layer([dir])
      ).pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(value, ["stored", "computed"])
      assert.strictEqual(bodies, 1)
      assert.isTrue(logs.lines.some((l) => l.level === "WARN" && l.message.includes("is not served")))
    }))
})
