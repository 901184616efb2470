/**
 * File (`File.Content`, `File.Stat`): files in the memo key. The schemas on their own, then
 * under a kernel: an edited input file reruns exactly the apps that read it, a missing one
 * fails the call before the body, a changed or deleted output file makes its checkpointed
 * result a miss, and a file is hashed once per kernel however many calls name it.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { App, AppCacheError, CheckpointFiles, Dfk, File } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, platform, tmpDir } from "./util.ts"

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex")

/** `NodeFileSystem` counting the files opened (hashing opens a file; stat does not), by path. */
const countingFileSystem = () => {
  const opens = new Map<string, number>()
  const layer = Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real): FileSystem.FileSystem => ({
      ...real,
      open: (file, options) =>
        Effect.suspend(() => (opens.set(file, (opens.get(file) ?? 0) + 1), real.open(file, options)))
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))
  return { opens: (file: string) => opens.get(file) ?? 0, layer }
}

/** A kernel over `runDir` (task_exit, default resume), on `fsLayer` when given. */
const kernel = (runDir: string, fsLayer?: Layer.Layer<FileSystem.FileSystem>) =>
  fsLayer === undefined
    ? Dfk.layer({ runDir, checkpointMode: "task_exit" }).pipe(Layer.provide(platform))
    : Dfk.layer({ runDir, checkpointMode: "task_exit" }).pipe(Layer.provide(fsLayer), Layer.provide(platform))

/** Body runs by app name. */
const counts = () => {
  const runs: Record<string, number> = {}
  return {
    runs,
    ran: (name: string) => {
      runs[name] = (runs[name] ?? 0) + 1
    }
  }
}

const encode = <A, I>(schema: Schema.Schema<A, I, FileSystem.FileSystem>, value: A) =>
  Effect.provide(Schema.encode(schema)(value), NodeFileSystem.layer)
const decode = <A, I>(schema: Schema.Schema<A, I, FileSystem.FileSystem>, value: I) =>
  Effect.provide(Schema.decode(schema)(value), NodeFileSystem.layer)

describe("File.Content", () => {
  it.scoped("encodes a path as { path, sha256 } of the file's bytes, and decodes it back while they are the same", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "a.txt")
      fs.writeFileSync(file, "hello\n")
      const encoded = yield* encode(File.Content, file)
      assert.deepStrictEqual(encoded, { path: file, sha256: sha256("hello\n") })
      assert.strictEqual(yield* decode(File.Content, encoded), file)
    }))

  it.scoped("a file larger than a read is hashed whole (the same sha256 as one read of it)", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "big.bin")
      const bytes = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31) & 0xff)
      fs.writeFileSync(file, bytes)
      assert.strictEqual((yield* encode(File.Content, file)).sha256, sha256(bytes))
      fs.writeFileSync(file, "")
      assert.strictEqual((yield* encode(File.Content, file)).sha256, sha256(""))
    }))

  it.scoped("decoding fails, naming the file, when it changed or is gone", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "a.txt")
      fs.writeFileSync(file, "one")
      const encoded = yield* encode(File.Content, file)
      fs.writeFileSync(file, "two")
      const changed = yield* Effect.either(decode(File.Content, encoded))
      assert.isTrue(Either.isLeft(changed))
      assert.include(Either.isLeft(changed) ? changed.left.message : "", `The file ${file} changed`)
      fs.rmSync(file)
      const gone = yield* Effect.either(decode(File.Content, encoded))
      assert.include(Either.isLeft(gone) ? gone.left.message : "", `The file ${file} is gone`)
    }))

  it.scoped("encoding fails, naming the path, for a missing file or a directory", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const missing = path.join(dir, "missing.txt")
      const none = yield* Effect.either(encode(File.Content, missing))
      assert.include(Either.isLeft(none) ? none.left.message : "", `The file ${missing} does not exist`)
      const isDir = yield* Effect.either(encode(File.Content, dir))
      assert.include(Either.isLeft(isDir) ? isDir.left.message : "", `${dir} is not a file`)
    }))

  it.scoped("the synchronous parsers fail without reading: the schema needs a FileSystem", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "a.txt")
      fs.writeFileSync(file, "x")
      const counted = countingFileSystem()
      const encoded = Schema.encodeEither(File.Content as Schema.Schema<string, File.ContentEncoded>)(file)
      assert.isTrue(Either.isLeft(encoded))
      assert.include(Either.isLeft(encoded) ? encoded.left.message : "", "needs a FileSystem")
      // Outside a kernel every encode reads the file (there is no cache to keep its hash).
      yield* Effect.provide(Schema.encode(File.Content)(file), counted.layer)
      yield* Effect.provide(Schema.encode(File.Content)(file), counted.layer)
      assert.strictEqual(counted.opens(file), 2)
    }))
})

describe("File.Stat", () => {
  it.scoped("encodes { path, size, mtimeMs } without reading the file; decoding fails, naming it, once it changed", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "big.bin")
      fs.writeFileSync(file, new Uint8Array(1234))
      fs.utimesSync(file, 1_700_000_000, 1_700_000_000)
      const counted = countingFileSystem()
      const encoded = yield* Effect.provide(Schema.encode(File.Stat)(file), counted.layer)
      assert.deepStrictEqual(encoded, { path: file, size: 1234, mtimeMs: 1_700_000_000_000 })
      assert.strictEqual(counted.opens(file), 0)
      assert.strictEqual(yield* decode(File.Stat, encoded), file)
      fs.utimesSync(file, 1_700_000_001, 1_700_000_001)
      const touched = yield* Effect.either(decode(File.Stat, encoded))
      assert.include(Either.isLeft(touched) ? touched.left.message : "", `The file ${file} changed`)
      fs.rmSync(file)
      const gone = yield* Effect.either(decode(File.Stat, encoded))
      assert.include(Either.isLeft(gone) ? gone.left.message : "", `The file ${file} is gone`)
    }))
})

describe("files in the key", () => {
  it.scoped("editing an input file between two runs reruns exactly the apps that depend on it", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const runDir = path.join(dir, "runs")
      const [a, b] = [path.join(dir, "a.txt"), path.join(dir, "b.txt")]
      fs.writeFileSync(a, "1\n2\n")
      fs.writeFileSync(b, "1\n2\n3\n")
      const { ran, runs } = counts()
      const lines = App.make(
        { name: "lines", input: Schema.Struct({ file: File.Content }), output: Schema.Number, cache: true },
        ({ file }) => Effect.sync(() => (ran("lines"), fs.readFileSync(file, "utf8").split("\n").length - 1))
      )
      const total = App.make(
        { name: "total", input: Schema.Array(Schema.Number), output: Schema.Number, cache: true },
        (ns) => Effect.sync(() => (ran("total"), ns.reduce((x, y) => x + y, 0)))
      )
      const unrelated = App.make(
        { name: "unrelated", input: Schema.Number, output: Schema.Number, cache: true },
        (n) => Effect.sync(() => (ran("unrelated"), n + 1))
      )
      const workflow = Effect.gen(function*() {
        const counted = yield* Effect.forEach([a, b], (file) => lines({ file }))
        return [yield* total(counted), yield* unrelated(1)]
      })
      // The app's requirements do not include FileSystem: the kernel provides its own.
      const typed: Effect.Effect<number, AppCacheError, Dfk> = lines({ file: a })
      assert.isTrue(Effect.isEffect(typed))

      assert.deepStrictEqual(yield* Effect.provide(workflow, kernel(runDir)), [5, 2])
      assert.deepStrictEqual(runs, { lines: 2, total: 1, unrelated: 1 })
      assert.deepStrictEqual(yield* Effect.provide(workflow, kernel(runDir)), [5, 2])
      assert.deepStrictEqual(runs, { lines: 2, total: 1, unrelated: 1 }, "nothing changed: nothing runs")
      fs.writeFileSync(a, "1\n2\n3\n4\n")
      assert.deepStrictEqual(yield* Effect.provide(workflow, kernel(runDir)), [7, 2])
      // lines(a) and total (its input changed) rerun; lines(b) and unrelated are served.
      assert.deepStrictEqual(runs, { lines: 3, total: 2, unrelated: 1 })
      // Back to the old bytes: the old entries answer again.
      fs.writeFileSync(a, "1\n2\n")
      assert.deepStrictEqual(yield* Effect.provide(workflow, kernel(runDir)), [5, 2])
      assert.deepStrictEqual(runs, { lines: 3, total: 2, unrelated: 1 })
    }))

  it.scoped("a File.Stat input: a new modification time reruns its app; the file is never read", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const runDir = path.join(dir, "runs")
      const file = path.join(dir, "huge.bin")
      fs.writeFileSync(file, new Uint8Array(100))
      fs.utimesSync(file, 1_700_000_000, 1_700_000_000)
      const { ran, runs } = counts()
      const size = App.make(
        { name: "size", input: File.Stat, output: Schema.Number, cache: true },
        (p) => Effect.sync(() => (ran("size"), fs.statSync(p).size))
      )
      const counted = countingFileSystem()
      const run = Effect.provide(size(file), kernel(runDir, counted.layer))
      assert.strictEqual(yield* run, 100)
      assert.strictEqual(yield* run, 100)
      assert.deepStrictEqual(runs, { size: 1 })
      fs.utimesSync(file, 1_700_000_005, 1_700_000_005)
      assert.strictEqual(yield* run, 100)
      assert.deepStrictEqual(runs, { size: 2 })
      assert.strictEqual(counted.opens(file), 0)
    }))

  it.scoped("a missing input file fails the call with AppCacheError naming the path, before the body runs", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const missing = path.join(dir, "nope.csv")
      const { ran, runs } = counts()
      const read = App.make(
        { name: "read", input: Schema.Struct({ data: File.Content }), output: Schema.Number, cache: true },
        () => Effect.sync(() => (ran("read"), 1))
      )
      const failed = yield* Effect.flip(Effect.provide(read({ data: missing }), kernel(path.join(dir, "runs"))))
      assert.instanceOf(failed, AppCacheError)
      assert.strictEqual(failed.app, "read")
      assert.strictEqual(failed.reason, `The file ${missing} does not exist`)
      assert.deepStrictEqual(runs, {})
    }))

  it.scoped("a checkpointed result whose output file changed or was deleted is computed again, with a warning naming it", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const runDir = path.join(dir, "runs")
      const out = path.join(dir, "out.txt")
      const { ran, runs } = counts()
      const produce = App.make(
        { name: "produce", input: Schema.String, output: File.Content, cache: true },
        (text) => Effect.sync(() => (ran("produce"), fs.writeFileSync(out, text), out))
      )
      const logs = captureLogs()
      const run = Effect.provide(produce("hello"), Layer.merge(kernel(runDir), logs.layer))
      const warnings = () => logs.lines.filter((l) => l.level === "WARN").map((l) => l.message)

      assert.strictEqual(yield* run, out)
      assert.strictEqual(yield* run, out)
      assert.deepStrictEqual(runs, { produce: 1 }, "the file is as written: served")
      fs.rmSync(out)
      assert.strictEqual(yield* run, out)
      assert.deepStrictEqual(runs, { produce: 2 })
      assert.strictEqual(fs.readFileSync(out, "utf8"), "hello")
      assert.lengthOf(warnings(), 1)
      assert.include(warnings()[0], `The file ${out} is gone`)
      assert.include(warnings()[0], "so the app runs again")
      fs.writeFileSync(out, "edited by hand")
      assert.strictEqual(yield* run, out)
      assert.deepStrictEqual(runs, { produce: 3 })
      assert.strictEqual(fs.readFileSync(out, "utf8"), "hello")
      assert.lengthOf(warnings(), 2)
      assert.include(warnings()[1], `The file ${out} changed`)
      assert.strictEqual(yield* run, out)
      assert.deepStrictEqual(runs, { produce: 3 })
    }))

  it.scoped("a file named by many calls is hashed once per kernel, and again once it changes", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const file = path.join(dir, "shared.bin")
      fs.writeFileSync(file, new Uint8Array(2 * 1024 * 1024))
      const Input = Schema.Struct({ data: File.Content, i: Schema.Number })
      const apps = ["first", "second", "third"].map((name) =>
        App.make({ name, input: Input, output: Schema.Number, cache: true }, ({ i }) => Effect.succeed(i))
      )
      const counted = countingFileSystem()
      const calls = (n: number) =>
        Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) => apps[i % 3]!({ data: file, i }),
          { concurrency: "unbounded" }
        )
      const layer = Dfk.layer({ runDir: path.join(dir, "runs") }).pipe(
        Layer.provide(CheckpointFiles.none),
        Layer.provide(counted.layer),
        Layer.provide(platform)
      )
      yield* Effect.provide(
        Effect.gen(function*() {
          assert.lengthOf(yield* calls(300), 300)
          assert.strictEqual(counted.opens(file), 1, "300 concurrent calls, one read")
          fs.writeFileSync(file, new Uint8Array(10))
          yield* calls(30)
          assert.strictEqual(counted.opens(file), 2, "a new size and time: read again, once")
        }),
        layer
      )
      // The cache lives as long as its kernel: the next one reads the file again.
      yield* Effect.provide(calls(30), layer)
      assert.strictEqual(counted.opens(file), 3)
    }))
})

describe("Dfk.explain and files", () => {
  it.scoped("an edited input file: a miss whose closest entry differs by FileChanged, naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const runDir = path.join(dir, "runs")
      const a = path.join(dir, "a.txt")
      fs.writeFileSync(a, "one\n")
      const size = App.make(
        { name: "size", input: Schema.Struct({ file: File.Content }), output: Schema.Number, cache: true },
        ({ file }) => Effect.sync(() => fs.readFileSync(file).length)
      )
      yield* Effect.provide(size({ file: a }), kernel(runDir))
      const before = yield* Effect.provide(Dfk.explain(size, { file: a }), kernel(runDir))
      assert.strictEqual(before._tag, "Hit")
      fs.writeFileSync(a, "one, edited\n")
      const after = yield* Effect.provide(Dfk.explain(size, { file: a }), kernel(runDir))
      assert.strictEqual(after._tag, "Miss")
      if (after._tag !== "Miss") return
      const differences = after.closest[0]!.differences
      assert.lengthOf(differences, 1)
      const d = differences[0]!
      assert.strictEqual(d._tag, "FileChanged")
      if (d._tag !== "FileChanged") return
      assert.strictEqual(d.path, a)
      assert.deepStrictEqual(d.stored, { path: a, sha256: sha256("one\n") })
      assert.deepStrictEqual(d.actual, { path: a, sha256: sha256("one, edited\n") })
    }))

  it.scoped("a deleted output file: the stored entry of the key is a miss with FileChanged saying it is gone", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      const runDir = path.join(dir, "runs")
      const out = path.join(dir, "out.txt")
      const produce = App.make(
        { name: "produce", input: Schema.String, output: File.Content, cache: true },
        (text) => Effect.sync(() => (fs.writeFileSync(out, text), out))
      )
      yield* Effect.provide(produce("hello"), kernel(runDir))
      assert.strictEqual((yield* Effect.provide(Dfk.explain(produce, "hello"), kernel(runDir)))._tag, "Hit")
      fs.rmSync(out)
      const x = yield* Effect.provide(Dfk.explain(produce, "hello"), kernel(runDir))
      assert.strictEqual(x._tag, "Miss")
      if (x._tag !== "Miss") return
      const d = x.closest[0]!.differences[0]!
      assert.strictEqual(d._tag, "FileChanged")
      if (d._tag !== "FileChanged") return
      assert.strictEqual(d.path, out)
      assert.include(String(d.actual), "is gone")
    }))
})
