import { assert, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, Dfk } from "effect-dfk"
import type { EncodedEntry } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as path from "node:path"
import { ByteQueue } from "../src/internal/byteQueue.ts"
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

describe("PendingQueue (the kernel's queue, for stores without one)", () => {
  it.effect("writes every queued entry in order, and puts a failed batch back in front less what was written", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      const queue = new PendingQueue((entries) =>
        Effect.sync(() => {
          for (const e of entries) written.push(e.input)
        })
      )
      queue.push(entry(1))
      queue.push(entry(2))
      queue.push(entry(3))
      assert.strictEqual(queue.size, 3)
      const batch = queue.take()
      assert.strictEqual(batch.count, 3)
      assert.strictEqual(queue.size, 0)
      queue.push(entry(4))
      // The write stored the first entry of the batch before it failed.
      queue.putBack(batch, 1)
      assert.strictEqual(queue.size, 3)
      yield* queue.write(queue.take())
      assert.deepStrictEqual(written, ["2", "3", "4"])
      assert.strictEqual(queue.take().count, 0)
    }))
})

const decoder = new TextDecoder()
const text = (pieces: ReadonlyArray<Uint8Array>) => pieces.map((p) => decoder.decode(p)).join("")

// Lines of every size class: small, several per 64 KiB first slab, a third of a 1 MiB slab,
// longer than a slab, and multi-byte UTF-8 (2, 3 and 4 bytes a character).
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

describe("ByteQueue", () => {
  it("gives back every queued line, byte for byte and in order, whatever their sizes", () => {
    const queue = new ByteQueue()
    for (const line of lines) queue.push(line)
    assert.strictEqual(queue.size, lines.length)
    const batch = queue.take()
    assert.strictEqual(batch.count, lines.length)
    assert.strictEqual(queue.size, 0)
    assert.strictEqual(text(batch.pieces), lines.join(""))
    // No piece is much larger than a slab, except a line that is larger by itself.
    for (const piece of batch.pieces) {
      const own = lines.some((l) => piece.length === new TextEncoder().encode(l).length && l.length * 3 > 1 << 20)
      assert.isTrue(piece.length <= 1 << 20 || own)
    }
  })

  it("keeps bytes already taken intact while it fills on, and puts a failed batch back in front", () => {
    const queue = new ByteQueue()
    queue.push(lines[0]!)
    queue.push(lines[1]!)
    const first = queue.take()
    const firstText = text(first.pieces)
    // More lines into the same slab, after the part handed out.
    queue.push(lines[2]!)
    queue.push(lines[7]!)
    assert.strictEqual(text(first.pieces), firstText)
    queue.putBack(first, 0)
    assert.strictEqual(queue.size, 4)
    const all = queue.take()
    assert.strictEqual(all.count, 4)
    assert.strictEqual(text(all.pieces), lines[0]! + lines[1]! + lines[2]! + lines[7]!)
    assert.strictEqual(queue.take().count, 0)
    assert.deepStrictEqual(queue.take().pieces, [])
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
    assert.deepStrictEqual<unknown>({ ...e }, expected)
    assert.deepStrictEqual(JSON.parse(JSON.stringify(e)), expected)
    assert.deepStrictEqual(structuredClone(e), expected)
  })
})

const echo = App.make(
  { name: "echo", input: Schema.Struct({ i: Schema.Number, s: Schema.String }), output: Schema.String, cache: true },
  ({ s }) => Effect.succeed(s)
)

describe("pending entries across slabs", () => {
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
