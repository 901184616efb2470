/**
 * Where the time of the hot paths goes: each piece of an app call, a checkpoint pass and
 * a load, timed alone (process CPU time, batches, medians) on the same compiled library
 * as `bench/run.ts`. `npx tsx bench/splits.ts [--quick] [--src <dir>]`.
 *
 * The pieces mirror what `src/internal/kernel.ts`, `fileStore.ts` and `canonical.ts` do
 * per call or per line; the sum of a path's pieces is close to the whole measured in B1,
 * B2, B4 and B6, which is how to read which piece to make cheaper.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type * as FileLoadModule from "../src/internal/fileLoad.ts"
import type * as FileStoreModule from "../src/internal/fileStore.ts"
import type * as FormatModule from "../src/internal/format.ts"
import { compileLibrary } from "./compile.ts"
import { ensureLoadFile, loadCheckpointDir } from "./data.ts"
import { DATA_DIR, fmt, ROOT, table, timeBatch } from "./util.ts"
import type { Budget } from "./util.ts"

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const srcIndex = argv.indexOf("--src")
const srcRoot = path.resolve(srcIndex === -1 ? ROOT : argv[srcIndex + 1]!)
const budget: Budget = quick ? { quick, timeMs: 100, warmupMs: 50 } : { quick, timeMs: 600, warmupMs: 200 }

const { canonical, lib, outDir } = await compileLibrary(srcRoot)
const importOptional = async <A>(rel: string): Promise<A | undefined> => {
  try {
    return (await import(pathToFileURL(path.join(outDir, rel)).href)) as A
  } catch {
    return undefined
  }
}
const fileStore = await importOptional<typeof FileStoreModule>("src/internal/fileStore.js")
const format = await importOptional<typeof FormatModule>("src/internal/format.js")
const fileLoad = await importOptional<typeof FileLoadModule>("src/internal/fileLoad.js")

interface Split {
  readonly group: string
  readonly piece: string
  readonly ns: number
}
const splits: Array<Split> = []
const record = (group: string, piece: string, ns: number) => {
  splits.push({ group, piece, ns })
  process.stderr.write(`${group}: ${piece}: ${fmt(ns)} ns\n`)
}

// ---------------------------------------------------------------------------------------
// One app call, piece by piece, inside one running Effect (as in B1/B2)

const SmallInput = Schema.Struct({ x: Schema.Number, label: Schema.String })
const encodeEffect = Schema.encode(SmallInput)
const encodeSync = Schema.encodeSync(SmallInput)
const encodeEither = ParseResult.encodeUnknownEither(SmallInput)
const encodeOutput = Schema.encode(Schema.Number)
const Tag = Context.GenericTag<{ readonly n: number }>("bench/splits/Tag")
const tmp = mkdtempSync(path.join(os.tmpdir(), "effect-dfk-splits-"))

const rt = ManagedRuntime.make(
  Layer.merge(
    Layer.succeed(Tag, { n: 1 }),
    lib.Dfk.layer({ runDir: path.join(tmp, "runs") }).pipe(
      Layer.provide(lib.CheckpointFiles.none),
      Layer.provide(NodeContext.layer)
    )
  )
)
const app = lib.App.make(
  { name: "bench_cached", input: SmallInput, output: Schema.Number, cache: true },
  ({ x }) => Effect.succeed(x * 2)
)

const N = 1000
const loop = <A, E, R>(step: () => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < N; i++) yield* step()
  })
let seq = 0
const effectPiece = async (group: string, piece: string, step: () => Effect.Effect<unknown, unknown, any>) => {
  const r = await timeBatch(budget, piece, N, () => rt.runPromise(loop(step) as Effect.Effect<void>), "cpu")
  record(group, piece, r.nsPerOp)
  return r.nsPerOp
}
const syncPiece = async (group: string, piece: string, n: number, f: () => unknown) => {
  let sink: unknown
  const r = await timeBatch(budget, piece, n, () => {
    for (let i = 0; i < n; i++) sink = f()
  }, "cpu")
  if (sink === Symbol.for("never")) throw new Error("unreachable")
  record(group, piece, r.nsPerOp)
  return r.nsPerOp
}

const callPieces = async () => {
  const g = "call"
  await rt.runPromise(app({ x: 1, label: "small" }))
  // Effect pieces include one loop step (the first line): subtract it to get the piece.
  await effectPiece(g, "loop step alone: yield* Effect.succeed", () => Effect.succeed(2))
  await effectPiece(g, "whole memo hit (B1)", () => app({ x: 1, label: "small" }))
  await effectPiece(g, "whole miss (B2)", () => app({ x: seq++, label: "small" }))
  await effectPiece(g, "service access: Effect.flatMap(Tag, f)", () => Effect.flatMap(Tag, () => Effect.void))
  await effectPiece(g, "Effect.suspend", () => Effect.suspend(() => Effect.void))
  await effectPiece(g, "Schema.encode(input) as an Effect", () => encodeEffect({ x: seq++, label: "small" }))
  await syncPiece(g, "Schema.encodeSync(input)", N, () => encodeSync({ x: seq++, label: "small" }))
  await syncPiece(g, "ParseResult.encodeUnknownEither(input)", N, () => encodeEither({ x: seq++, label: "small" }))
  await effectPiece(
    g,
    "Effect.mapError + flatMap around it",
    () => Effect.succeed(1).pipe(Effect.mapError(() => 0), Effect.flatMap(() => Effect.void))
  )
  await syncPiece(g, "canonicalJson(input)", N, () => canonical.canonicalJson({ label: "small", x: seq++ }))
  await syncPiece(g, "JSON.stringify(input) (the floor)", N, () => JSON.stringify({ label: "small", x: seq++ }))
  const text = "[\"bench_cached\",null,{\"label\":\"small\",\"x\":12345}]"
  await syncPiece(
    g,
    "sha256: createHash().update().digest(hex)",
    N,
    () => crypto.createHash("sha256").update(text).digest("hex")
  )
  const oneShot = (crypto as { hash?: (alg: string, data: string, enc: string) => string }).hash
  if (oneShot !== undefined) {
    await syncPiece(
      g,
      "sha256: crypto.hash(sha256, text, hex) (Node >= 20.12)",
      N,
      () => oneShot("sha256", text, "hex")
    )
  }
  await syncPiece(
    g,
    "keyFromJson (name, version, json -> sha256)",
    N,
    () => canonical.keyFromJson("bench_cached", null, "{\"label\":\"small\",\"x\":1}")
  )
  await syncPiece(g, "memo Map.get of a 64-char key", N, () => memo.get(keys[seq++ & 1023]!))
  await effectPiece(
    g,
    "Effect.uninterruptibleMask(restore => suspend)",
    () => Effect.uninterruptibleMask(() => Effect.suspend(() => Effect.void))
  )
  await effectPiece(
    g,
    "Effect.useSpan + withParentSpan (a span per call)",
    () =>
      Effect.useSpan(
        "bench_cached",
        { attributes: { app: "bench_cached" } },
        (span) => Effect.withParentSpan(Effect.sync(() => span.attribute("outcome", "hit")), span)
      )
  )
  const counter = Metric.counter("bench_splits_calls")
  const labels = [MetricLabel.make("outcome", "hit"), MetricLabel.make("app", "bench_cached")]
  await syncPiece(g, "Metric counter unsafeUpdate(1, [2 labels])", N, () => counter.unsafeUpdate(1, labels))
  const tagged = Metric.taggedWithLabels(counter, labels)
  await syncPiece(g, "  same, labels fixed once (taggedWithLabels)", N, () => tagged.unsafeUpdate(1, []))
  await syncPiece(g, "  same, a plain counter field (stats.hits++)", N, () => stats.hits++)
  // Miss-only pieces.
  await effectPiece(g, "miss: Deferred.unsafeMake + Deferred.succeed", () => {
    const d = Deferred.unsafeMake<number>(FiberId.none)
    return Deferred.succeed(d, 1)
  })
  await effectPiece(g, "miss: Effect.gen with 3 yields + flatten (produce)", () =>
    Effect.gen(function*() {
      yield* Effect.void
      const exit = yield* Effect.exit(Effect.succeed(1))
      yield* Effect.void
      return exit
    }).pipe(Effect.flatten))
  await effectPiece(
    g,
    "miss: the same as a flatMap chain",
    () =>
      Effect.void.pipe(Effect.zipRight(Effect.exit(Effect.succeed(1))), Effect.tap(() => Effect.void), Effect.flatten)
  )
  await effectPiece(
    g,
    "miss: Effect.exit(body) + ensuring (runBody)",
    () => Effect.exit(Effect.succeed(1).pipe(Effect.ensuring(Effect.void)))
  )
  await effectPiece(g, "miss: encodeOutput(result) as an Effect", () => encodeOutput(seq++))
  await effectPiece(
    g,
    "miss: Clock.currentTimeMillis + toISOString",
    () => Effect.map(Clock.currentTimeMillis, (now) => new Date(now).toISOString())
  )
  if (format !== undefined) {
    await syncPiece(
      g,
      "miss: encodedLine (builds the line)",
      N,
      () =>
        format.encodedLine({
          hash: keys[seq++ & 1023]!,
          app: "bench_cached",
          version: null,
          input: "{\"x\":1}",
          result: "2",
          time: "2025-01-01T00:00:00.000Z"
        })
    )
  }
}

const memo = new Map<string, number>()
const keys = Array.from({ length: 1024 }, (_, i) => canonical.sha256Hex(String(i)))
for (const k of keys) memo.set(k, 1)
const stats = { hits: 0 }

// ---------------------------------------------------------------------------------------
// A checkpoint pass (B4): building the text, encoding, writing

const passPieces = async () => {
  const g = "pass (per entry)"
  if (format === undefined) return
  const n = quick ? 20_000 : 100_000
  const lines = Array.from(
    { length: n },
    (_, i) =>
      format.encodedLine({
        hash: keys[i & 1023]!,
        app: "bench_cached",
        version: null,
        input: `{"label":"small","x":${i}}`,
        result: String(2 * i),
        time: "2025-01-01T00:00:00.000Z"
      })
  )
  let text = ""
  await syncPiece(g, `text += line for ${fmt(n)} lines`, 1, () => {
    text = ""
    for (const line of lines) text += line
    return text.length
  }).then((ns) => record(g, "  per entry", ns / n))
  await syncPiece(g, "lines.join(\"\")", 1, () => lines.join("").length)
    .then((ns) => record(g, "  per entry", ns / n))
  const encoder = new TextEncoder()
  await syncPiece(g, "TextEncoder.encode(text)", 1, () => encoder.encode(text).length)
    .then((ns) => record(g, "  per entry", ns / n))
  await syncPiece(g, "Buffer.from(text, utf8)", 1, () => Buffer.from(text, "utf8").length)
    .then((ns) => record(g, "  per entry", ns / n))
  const file = path.join(tmp, "pass.jsonl")
  const w = await timeBatch(budget, "writeFile", 1, async () => {
    rmSync(file, { force: true })
    await fsp.writeFile(file, text)
  })
  record(g, "fs.promises.writeFile(text) (wall)", w.nsPerOp)
  record(g, "  per entry", w.nsPerOp / n)
}

// ---------------------------------------------------------------------------------------
// Loading (B6): per line

const loadPieces = async () => {
  const g = "load (per line)"
  const n = 100_000
  await ensureLoadFile(n)
  const file = path.join(loadCheckpointDir(n), "tasks.jsonl")
  const text = readFileSync(file, "utf8")
  const lines = text.split("\n").filter((l) => l !== "")
  const per = (ns: number) => ns / lines.length
  const whole = async (piece: string, f: () => unknown) => {
    const ns = await syncPiece(g, `${piece} (${fmt(lines.length)} lines)`, 1, f)
    record(g, "  per line", per(ns))
  }
  await whole("split lines (indexOf + slice)", () => {
    let c = 0
    let start = 0
    let nl = text.indexOf("\n")
    while (nl !== -1) {
      c += text.slice(start, nl).length
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    return c
  })
  const parsed = lines.map((l) => JSON.parse(l))
  await whole("JSON.parse each line", () => {
    let c = 0
    for (const l of lines) c += JSON.parse(l).v
    return c
  })
  if (format !== undefined) {
    await whole("invalidEntry(parsed) (validation)", () => {
      let c = 0
      for (const o of parsed) if (format.invalidEntry(o) === undefined) c++
      return c
    })
  }
  await whole("Map.set(hash, parsed)", () => {
    const m = new Map<string, unknown>()
    for (const o of parsed) m.set(o.hash, o)
    return m.size
  })
  if (fileStore !== undefined && fileLoad !== undefined) {
    await whole("makeParser: split + parse + validate + onEntry into a Map", () => {
      const m = new Map<string, unknown>()
      const p = fileLoad.makeParser(file, (e) => m.set(e.hash, e), () => {})
      for (let i = 0; i < text.length; i += 256 * 1024) p.push(text.slice(i, i + 256 * 1024))
      p.end()
      return m.size
    })
    // The store's load from disk (Effect stream of 256 KiB chunks), into a Map.
    const storeRt = ManagedRuntime.make(NodeContext.layer)
    // The store may need a scope (for the files it keeps open): one that lives until the end.
    const storeScope = Effect.runSync(Scope.make())
    const store = await storeRt.runPromise(
      Scope.extend(fileStore.make as Effect.Effect<any, never, any>, storeScope) as Effect.Effect<any>
    )
    const r = await timeBatch(budget, "store.load", 1, () =>
      storeRt.runPromise(Effect.suspend(() => {
        const m = new Map<string, unknown>()
        return store.load(loadCheckpointDir(n), (e: { hash: string }) => m.set(e.hash, e))
      })), "cpu")
    record(g, `fileStore load from disk (${fmt(lines.length)} lines)`, r.nsPerOp)
    record(g, "  per line", per(r.nsPerOp))
    await Effect.runPromise(Scope.close(storeScope, Exit.void))
    await storeRt.dispose()
  }
  const d = await timeBatch(budget, "Dfk.layer load", 1, () =>
    Effect.runPromise(
      Effect.scoped(Layer.build(
        lib.Dfk.layer({ runDir: path.join(tmp, "load-runs"), checkpointMode: "manual" }).pipe(
          Layer.provide(lib.CheckpointFiles.layer([loadCheckpointDir(n)]))
        )
      )).pipe(
        Effect.provide(Layer.merge(NodeContext.layer, Logger.minimumLogLevel(LogLevel.Warning))),
        Effect.asVoid
      ) as Effect.Effect<void>
    ), "cpu")
  record(g, `Dfk.layer build with the checkpoint (${fmt(lines.length)} lines)`, d.nsPerOp)
  record(g, "  per line", per(d.nsPerOp))
}

try {
  await callPieces()
  await passPieces()
  await loadPieces()
} finally {
  await rt.dispose()
  rmSync(tmp, { recursive: true, force: true })
}

const groups = [...new Set(splits.map((s) => s.group))]
const out: Array<string> = [`Splits (process CPU time per piece${quick ? ", --quick" : ""}; library ${srcRoot})`]
for (const g of groups) {
  out.push("", table([[g, "ns"], ...splits.filter((s) => s.group === g).map((s) => [s.piece, fmt(s.ns)])], "lr"))
}
console.log(out.join("\n"))
writeFileSync(path.join(DATA_DIR, "splits.json"), JSON.stringify(splits, null, 2) + "\n")
