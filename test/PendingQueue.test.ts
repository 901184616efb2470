import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { App, CheckpointFiles, Dfk } from "effect-dfk"
import type { EncodedEntry } from "effect-dfk"
import { PendingQueue } from "../src/internal/pending.ts"
import { decodedEntry } from "../src/internal/store.ts"
import { checkpointEntries, withKernel } from "./util.ts"

const entry = (n: number): EncodedEntry => ({
  hash: n.toString(16).padStart(64, "0"),
  app: "a",
  version: null,
  input: String(n),
  result: String(n),
  time: "t"
})

describe("PendingQueue", () => {
  it("gives back every queued entry in order, and puts a failed batch back in front less what was written", () => {
    const queue = new PendingQueue()
    queue.push(entry(1))
    queue.push(entry(2))
    queue.push(entry(3))
    assert.strictEqual(queue.size, 3)
    const batch = queue.take()
    assert.strictEqual(queue.size, 0)
    assert.deepStrictEqual(batch.map((e) => e.input), ["1", "2", "3"])
    queue.push(entry(4))
    // The append stored the first entry of the batch before it failed.
    queue.putBack(batch, 1)
    assert.strictEqual(queue.size, 3)
    assert.deepStrictEqual(queue.take().map((e) => e.input), ["2", "3", "4"])
    queue.putBack([entry(5)], 0)
    assert.deepStrictEqual(queue.take().map((e) => e.input), ["5"])
    assert.deepStrictEqual(queue.take(), [])
  })
})

describe("decodedEntry", () => {
  it("hands a store without appendEncoded plain entries: copying or serializing one keeps every field", () => {
    const hash = "ab".repeat(32)
    const e = decodedEntry({ hash, app: "a", version: "2", input: "{\"x\":1}", result: "[1,\"é\"]", time: "t" })
    const expected = { hash, app: "a", version: "2", input: { x: 1 }, result: [1, "é"], time: "t" }
    // A store may read the fields, spread the entry, serialize it or clone it.
    assert.deepStrictEqual(
      { hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time },
      expected
    )
    assert.deepStrictEqual({ ...e }, expected)
    assert.deepStrictEqual(JSON.parse(JSON.stringify(e)), expected)
    assert.deepStrictEqual(structuredClone(e), expected)
  })
})

const echo = App.make(
  { name: "echo", input: Schema.Struct({ i: Schema.Number, s: Schema.String }), output: Schema.String, cache: true },
  ({ s }) => Effect.succeed(s)
)

// Results of every size: small, tens and hundreds of KiB, longer than a MiB, and multi-byte
// UTF-8 (2, 3 and 4 bytes a character).
const lines = [
  "{\"a\":1}\n",
  `{"s":"${"x".repeat(40_000)}"}\n`,
  `{"s":"${"é".repeat(30_000)}"}\n`,
  `{"s":"${"y".repeat(350_000)}"}\n`,
  `{"s":"${"€".repeat(200_000)}"}\n`,
  `{"s":"${"z".repeat(1_500_000)}"}\n`,
  `{"s":"${"😀".repeat(1000)}"}\n`,
  "{\"b\":2}\n"
]

describe("pending entries of every size", () => {
  it.scoped("a manual pass writes results of every size, and a resume serves them all", () =>
    Effect.gen(function*() {
      const inputs = lines.map((line, i) => ({ i, s: line.slice(0, -1) }))
      const { runDir } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.gen(function*() {
          yield* Effect.forEach(inputs, echo, { discard: true })
          assert.strictEqual((yield* Dfk.stats).pending, inputs.length)
          yield* Dfk.checkpoint
          assert.strictEqual((yield* Dfk.stats).pending, 0)
        })
      )
      const entries = checkpointEntries(runDir)
      assert.deepStrictEqual(entries.map((e) => e.result), inputs.map((x) => x.s))
      const { value: served } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.zip(Effect.forEach(inputs, echo), Dfk.stats),
        CheckpointFiles.layer([path.join(runDir, "checkpoint")])
      )
      assert.deepStrictEqual(served[0], inputs.map((x) => x.s))
      assert.strictEqual(served[1].misses, 0)
    }))
})
