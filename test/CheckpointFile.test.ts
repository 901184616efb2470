/**
 * `CheckpointFile`: the line rule is the loader's own (a file loads exactly when no line is
 * `Corrupt`, with one entry per `Entry` line, and a torn last line is skipped), `lines` splits
 * a file as the loader does, and `keyInput` is the input the kernel stores and hashes.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFile, CheckpointStore, Dfk, Memo } from "effect-dfk"
import type { CheckpointEntry } from "effect-dfk"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import { checkpointEntries, platform, tmpDir, withKernel } from "./util.ts"

const entry = (n: number, extra: Record<string, unknown> = {}) => {
  const input = { n }
  const hash = Effect.runSync(Memo.key({ name: "sq", input }))
  return { v: 1, hash, app: "sq", version: null, input, result: n * n, time: "2026-01-01T00:00:00.000Z", ...extra }
}
const line = (n: number) => JSON.stringify(entry(n))

const tags = (text: string, terminated = true) => CheckpointFile.checkLine(text, terminated)._tag

const collectLines = (file: string) =>
  CheckpointFile.lines(file).pipe(Stream.runCollect, Effect.map(Chunk.toArray), Effect.provide(platform))

/** Loads `dir` with the library's store: the entries, or the failure's reason and line. */
const load = (dir: string) =>
  Effect.gen(function*() {
    const store = yield* CheckpointStore
    const out: Array<CheckpointEntry> = []
    const result = yield* Effect.either(store.load(dir, (e) => out.push(e)))
    return Either.isRight(result) ? { entries: out } : { reason: result.left.reason, line: result.left.line }
  }).pipe(Effect.provide(CheckpointStore.layerFileSystem.pipe(Layer.provideMerge(platform))))

describe("CheckpointFile", () => {
  it("names the file", () => {
    assert.strictEqual(CheckpointFile.name, "tasks.jsonl")
  })

  it("checkLine: blank, entry, torn and corrupt lines", () => {
    for (const blank of ["", " ", "\t", "\r", " \r "]) assert.strictEqual(tags(blank), "Blank", JSON.stringify(blank))
    const good = CheckpointFile.checkLine(line(3), true)
    assert.strictEqual(good._tag, "Entry")
    if (good._tag === "Entry") assert.deepStrictEqual(good.entry, entry(3))
    // An unterminated last entry that is whole is an entry, not a torn line.
    assert.strictEqual(tags(line(3), false), "Entry")
    assert.strictEqual(tags(line(3) + "\r"), "Entry")
    // Torn: unterminated, unparsable, starting like an entry (after a BOM or whitespace).
    for (const torn of ["{", line(3).slice(0, 30), "  {\"v\":1", "\ufeff{\"v\""]) {
      assert.strictEqual(tags(torn, false), "Torn", JSON.stringify(torn))
      assert.strictEqual(tags(torn, true), "Corrupt", JSON.stringify(torn))
    }
    const notJson = CheckpointFile.checkLine("hello", false)
    assert.deepStrictEqual(notJson, { _tag: "Corrupt", reason: "the line is not valid JSON" })
    const cases: Array<[unknown, string]> = [
      [[1], "the line is not a JSON object"],
      [{ ...entry(1), v: undefined }, "the entry has no \"v\" field"],
      [{ ...entry(1), v: 2 }, "unsupported entry format version 2"],
      [{ ...entry(1), hash: "ABC" }, "\"hash\" is not 64 lowercase hex digits"],
      [{ ...entry(1), app: 7 }, "\"app\" is not a string"],
      [{ ...entry(1), version: 1 }, "\"version\" is neither a string nor null"],
      [{ ...entry(1), time: null }, "\"time\" is not a string"]
    ]
    for (const [value, reason] of cases) {
      assert.deepStrictEqual(CheckpointFile.checkLine(JSON.stringify(value), true), { _tag: "Corrupt", reason })
    }
    // The hash is not checked here (Memo.checkEntry is).
    const edited = CheckpointFile.checkLine(JSON.stringify({ ...entry(1), input: { n: 2 } }), true)
    assert.strictEqual(edited._tag, "Entry")
  })

  it.scoped("checkLine agrees with the loader, line by line", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const pieces = [line(1), "", "  ", line(2), "not json", JSON.stringify({ ...entry(3), v: 2 }), line(4), "[]"]
      let i = 0
      // Every file of up to three of the pieces, terminated or not, and a torn tail.
      const files: Array<string> = []
      for (const a of pieces) {
        for (const b of pieces) {
          files.push(`${a}\n${b}\n`, `${a}\n${b}`, `${a}\n${b}\n${line(5).slice(0, 12)}`, `${a}\n{"v":1,"h\n${b}`)
        }
      }
      for (const text of files) {
        const dir = path.join(root, String(i++))
        fs.mkdirSync(dir)
        const file = path.join(dir, CheckpointFile.name)
        fs.writeFileSync(file, text)
        const lines = yield* collectLines(file)
        const verdicts = lines.map((l) => CheckpointFile.checkLine(l.text, l.terminated))
        const loaded = yield* load(dir)
        const corrupt = verdicts.findIndex((v) => v._tag === "Corrupt")
        if (corrupt === -1) {
          assert.deepStrictEqual(
            "entries" in loaded ? loaded.entries.map((e) => e.hash) : loaded,
            verdicts.flatMap((v) => v._tag === "Entry" ? [v.entry.hash] : []),
            JSON.stringify(text)
          )
        } else {
          const v = verdicts[corrupt]!
          assert.deepStrictEqual(loaded, { reason: v._tag === "Corrupt" ? v.reason : "", line: lines[corrupt]!.line })
        }
      }
    }))

  it.scoped("lines: split and decoded as the loader does, across reads", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const file = path.join(root, CheckpointFile.name)
      fs.writeFileSync(file, "")
      assert.deepStrictEqual(yield* collectLines(file), [])
      fs.writeFileSync(file, "\ufeffa\r\n\nb")
      assert.deepStrictEqual(yield* collectLines(file), [
        { text: "a\r", line: 1, terminated: true },
        { text: "", line: 2, terminated: true },
        { text: "b", line: 3, terminated: false }
      ])
      // Multi-byte characters across the 1 MiB reads, and a line longer than a read.
      const long = "é€😀".repeat(200_000)
      const texts = ["x".repeat(1024 * 1024 - 3) + "é€", long, "ü", ""]
      fs.writeFileSync(file, texts.join("\n") + "\n")
      const lines = yield* collectLines(file)
      assert.deepStrictEqual(lines.map((l) => l.text), texts)
      assert.deepStrictEqual(lines.map((l) => l.line), [1, 2, 3, 4])
      assert.isTrue(lines.every((l) => l.terminated))
      const missing = yield* Effect.either(collectLines(path.join(root, "missing", CheckpointFile.name)))
      assert.isTrue(Either.isLeft(missing))
    }))

  it.scoped("keyInput is the input the kernel stores and hashes", () =>
    Effect.gen(function*() {
      const slow = App.make(
        {
          name: "slow",
          input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
          output: Schema.Number,
          cache: true,
          ignoreForCache: ["sleepMs"]
        },
        ({ x }) => Effect.succeed(x + 1)
      )
      const { runDir } = yield* withKernel({ checkpointMode: "task_exit" }, slow({ x: 1, sleepMs: 5 }))
      const [stored] = checkpointEntries(runDir)
      const input = CheckpointFile.keyInput({ x: 1, sleepMs: 5 }, ["sleepMs"])
      assert.deepStrictEqual(JSON.parse(JSON.stringify(input)), stored!.input)
      const hash = yield* Memo.key({ name: "slow", input })
      assert.strictEqual(hash, stored!.hash)
      const array = [1, 2]
      assert.strictEqual(CheckpointFile.keyInput(array, ["0"]), array)
      assert.deepStrictEqual(CheckpointFile.keyInput({ a: 1 }, []), { a: 1 })
    }))
})

describe("tombstones in the file", () => {
  const tombstone = (n: number, extra: Record<string, unknown> = {}) => {
    const { result: _result, ...rest } = entry(n)
    return { ...rest, deleted: true, time: "2026-01-02T00:00:00.000Z", ...extra }
  }

  it("checkLine: a tombstone is an entry; a malformed one is corrupt, with the reason", () => {
    const good = CheckpointFile.checkLine(JSON.stringify(tombstone(3)), true)
    assert.strictEqual(good._tag, "Entry")
    if (good._tag === "Entry") assert.strictEqual(good.entry.deleted, true)
    const cases: Array<[unknown, string]> = [
      [tombstone(3, { deleted: false }), "\"deleted\" is not true"],
      [tombstone(3, { deleted: "yes" }), "\"deleted\" is not true"],
      [{ ...tombstone(3), result: 9 }, "a tombstone (\"deleted\": true) has a \"result\""],
      [(({ input: _input, ...rest }) => rest)(tombstone(3)), "the entry has no \"input\" field"]
    ]
    for (const [value, reason] of cases) {
      const verdict = CheckpointFile.checkLine(JSON.stringify(value), true)
      assert.strictEqual(verdict._tag, "Corrupt", JSON.stringify(value))
      if (verdict._tag === "Corrupt") assert.include(verdict.reason, reason)
    }
  })

  it.scoped("the kernel writes a tombstone as the line of DESIGN §4, with no result", () =>
    Effect.gen(function*() {
      const sq = App.make(
        { name: "sq", input: Schema.Struct({ n: Schema.Number }), output: Schema.Number, cache: true },
        ({ n }) => Effect.succeed(n * n)
      )
      const { runDir } = yield* withKernel({}, Effect.flatMap(sq({ n: 4 }), () => Dfk.invalidate(sq, { n: 4 })))
      const file = path.join(runDir, "checkpoint", "tasks.jsonl")
      const lines = fs.readFileSync(file, "utf8").trim().split("\n")
      assert.strictEqual(lines.length, 2)
      const key = entry(4).hash
      assert.match(
        lines[1]!,
        new RegExp(
          `^\\{"v":1,"hash":"${key}","app":"sq","version":null,"input":\\{"n":4\\},"deleted":true,"time":"[^"]+"\\}$`
        )
      )
      assert.isUndefined(JSON.parse(lines[0]!).deleted)
    }))

  it.scoped("a malformed tombstone line fails the load with BadCheckpoint naming the file and line", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "tasks.jsonl")
      fs.writeFileSync(file, [line(1), JSON.stringify(tombstone(1, { deleted: 1 })), line(2)].join("\n") + "\n")
      const result = yield* load(dir)
      assert.deepStrictEqual(result, {
        reason: "\"deleted\" is not true (a tombstone has \"deleted\": true)",
        line: 2
      })
      fs.writeFileSync(file, [line(1), JSON.stringify(tombstone(1)), line(2)].join("\n") + "\n")
      const ok = yield* load(dir)
      assert.deepStrictEqual(ok.entries?.map((e) => e.deleted === true), [false, true, false])
    }))
})
