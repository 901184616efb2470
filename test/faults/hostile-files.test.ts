/**
 * Hostile checkpoint files (property-based, fast-check): random bytes, truncated lines,
 * valid JSON of the wrong shape, unknown "v", a 50 MB line, `__proto__` / `constructor`
 * keys. Loading gives a `BadCheckpoint` (path and line) or skips a torn last line with a
 * warning (DESIGN §3); never an untyped failure or defect, never a hang, and never a change
 * to `Object.prototype`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"
import { App, BadCheckpoint, CheckpointFiles, CheckpointStore, Dfk, Memo } from "../../mod.ts"
import type { CheckpointEntry, DfkError } from "../../mod.ts"
import { mayBeTorn } from "../../src/internal/format.ts"

// ---------------------------------------------------------------------------------------
// One runtime for every case, with a logger that keeps what was logged.

interface Logged {
  readonly level: string
  readonly message: string
}
const logs: Array<Logged> = []
const captureLogger = Logger.make(({ logLevel, message }) => {
  logs.push({
    level: logLevel.label,
    message: Array.isArray(message) ? message.map(String).join(" ") : String(message)
  })
})

const runtime = ManagedRuntime.make(
  Layer.mergeAll(
    Layer.provide(CheckpointStore.layerFileSystem, NodeContext.layer),
    NodeContext.layer,
    Logger.replace(Logger.defaultLogger, captureLogger)
  )
)

let root = ""
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-hostile-"))
})
afterAll(async () => {
  await runtime.dispose()
  fs.rmSync(root, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------
// Object.prototype must stay as it is.

const protoNames = Object.getOwnPropertyNames(Object.prototype).sort()
const assertPrototypeClean = () => {
  assert.deepStrictEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoNames, "Object.prototype changed")
  const probe: Record<string, unknown> = {}
  for (const k of ["polluted", "v", "hash", "app", "input", "result", "time", "x"]) {
    assert.isUndefined(probe[k], `Object.prototype.${k} is set`)
  }
  assert.strictEqual(Object.getPrototypeOf({}), Object.prototype)
}

// ---------------------------------------------------------------------------------------
// Loading one file, and checking the outcome.

class Hang {
  readonly _tag = "Hang"
}

interface Loaded {
  readonly exit: Exit.Exit<ReadonlyArray<CheckpointEntry>, DfkError | Hang>
  readonly file: string
  readonly warnings: ReadonlyArray<string>
}

let caseNo = 0

/** Writes `content` as the `tasks.jsonl` of a fresh checkpoint dir; returns the dir and file. */
const writeCheckpoint = (content: string | Uint8Array): { dir: string; file: string } => {
  const dir = path.join(root, `case-${++caseNo}`, "checkpoint")
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, "tasks.jsonl")
  fs.writeFileSync(file, content)
  return { dir, file }
}

const withTimeout = <A, E, R>(effect: Effect.Effect<A, E, R>, seconds: number) =>
  Effect.timeoutFail(effect, { duration: `${seconds} seconds`, onTimeout: () => new Hang() })

/** Loads through the store service's `load`. */
const loadWithStore = async (content: string | Uint8Array, seconds = 10): Promise<Loaded> => {
  const { dir, file } = writeCheckpoint(content)
  logs.length = 0
  const exit = await runtime.runPromiseExit(
    withTimeout(
      Effect.gen(function*() {
        const store = yield* CheckpointStore
        const entries: Array<CheckpointEntry> = []
        yield* store.load(dir, (e) => {
          entries.push(e)
        })
        return entries as ReadonlyArray<CheckpointEntry>
      }),
      seconds
    )
  )
  fs.rmSync(path.dirname(dir), { recursive: true, force: true })
  return { exit, file, warnings: logs.filter((l) => l.level === "WARN").map((l) => l.message) }
}

/** Loads through a kernel: `Dfk.layer` with `CheckpointFiles.layer([dir])`. */
const loadWithKernel = async (content: string | Uint8Array): Promise<Loaded> => {
  const { dir, file } = writeCheckpoint(content)
  const runDir = path.join(path.dirname(dir), "runs")
  logs.length = 0
  const layer = Dfk.layer({ runDir }).pipe(Layer.provide(CheckpointFiles.layer([dir])))
  const exit = await runtime.runPromiseExit(
    withTimeout(Effect.scoped(Effect.as(Layer.build(layer), [] as ReadonlyArray<CheckpointEntry>)), 10)
  )
  fs.rmSync(path.dirname(dir), { recursive: true, force: true })
  return { exit, file, warnings: logs.filter((l) => l.level === "WARN").map((l) => l.message) }
}

/**
 * The failure must be exactly one typed `BadCheckpoint` naming the file, with a line number
 * in range; anything else (a defect, a hang, another error) fails the test.
 */
const badCheckpointOf = (loaded: Loaded, maxLine: number): BadCheckpoint | undefined => {
  const { exit, file } = loaded
  assertPrototypeClean()
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure) || Cause.isDie(exit.cause) || Cause.isInterrupted(exit.cause)) {
    assert.fail(`with ${file}, the run ended with an untyped failure: ${Cause.pretty(exit.cause)}`)
  }
  const error = failure.value
  if (error instanceof Hang) assert.fail(`with ${file}, the run did not finish`)
  assert.instanceOf(error, BadCheckpoint, `loading failed with something else than BadCheckpoint: ${String(error)}`)
  assert.strictEqual(error._tag, "BadCheckpoint")
  assert.strictEqual(error.path, file)
  assert.isTrue(
    Number.isInteger(error.line) && error.line >= 1 && error.line <= maxLine,
    `line ${error.line} of ${maxLine}`
  )
  assert.isString(error.reason)
  assert.isAbove(error.reason.length, 0)
  return error
}

/** The file loaded; returns the entries handed over. */
const entriesOf = (loaded: Loaded): ReadonlyArray<CheckpointEntry> => {
  const bad = badCheckpointOf(loaded, Number.MAX_SAFE_INTEGER)
  assert.isUndefined(bad, `expected ${loaded.file} to load, got ${bad?.message}`)
  return (loaded.exit as Exit.Success<ReadonlyArray<CheckpointEntry>, never>).value
}

// ---------------------------------------------------------------------------------------
// An independent reading of DESIGN §4: what a valid entry is.

const isEntry = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const o = value as Record<string, unknown>
  return Object.hasOwn(o, "v") && o.v === 1 &&
    typeof o.hash === "string" && /^[0-9a-f]{64}$/.test(o.hash) &&
    typeof o.app === "string" &&
    (o.version === null || typeof o.version === "string") &&
    Object.hasOwn(o, "input") && Object.hasOwn(o, "result") &&
    typeof o.time === "string"
}

/** Same JSON data, whatever the order of object keys. */
const sameJson = (a: unknown, b: unknown, what: string) =>
  assert.strictEqual(
    Either.getOrThrow(Memo.canonicalJson(a)),
    Either.getOrThrow(Memo.canonicalJson(b)),
    what
  )

const parses = (line: string): boolean => {
  try {
    JSON.parse(line)
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------
// Generators.

const hashArb = fc.stringMatching(/^[0-9a-f]{64}$/)
const jsonArb = fc.jsonValue({ maxDepth: 3 })

const entryArb: fc.Arbitrary<CheckpointEntry> = fc.record({
  hash: hashArb,
  app: fc.string({ maxLength: 12 }),
  version: fc.option(fc.string({ maxLength: 4 }), { nil: null }),
  input: jsonArb,
  result: jsonArb,
  time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
})

const lineOf = (e: CheckpointEntry): string =>
  JSON.stringify({ v: 1, hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time })

/** Valid JSON that is not an entry: another type, a field missing or of the wrong type. */
const wrongShapeArb: fc.Arbitrary<string> = fc.oneof(
  jsonArb.filter((v) => !isEntry(v)).map((v) => JSON.stringify(v)),
  fc.tuple(
    entryArb,
    fc.constantFrom(
      "no v",
      "no hash",
      "no app",
      "no version",
      "no input",
      "no result",
      "no time",
      "hash number",
      "hash short",
      "hash not hex",
      "app number",
      "app null",
      "version number",
      "version object",
      "time number",
      "time null"
    )
  ).map(([e, how]) => {
    const o: Record<string, unknown> = { v: 1, ...e }
    const [verb, field] = how.startsWith("no ") ? ["delete", how.slice(3)] : how.split(" ")
    if (verb === "delete") delete o[field!]
    else {
      const replacement: Record<string, unknown> = {
        "hash number": 12345,
        "hash short": e.hash.slice(1),
        "hash not hex": "z" + e.hash.slice(1),
        "app number": 1,
        "app null": null,
        "version number": 2,
        "version object": {},
        "time number": 0,
        "time null": null
      }
      o[verb!] = replacement[how]
    }
    return JSON.stringify(o)
  }),
  fc.constantFrom("[]", "null", "0", "true", "\"v\"", "{}", "[{\"v\":1}]")
)

/** A valid entry with any "v" but 1. */
const unknownVersionArb: fc.Arbitrary<string> = fc.tuple(
  entryArb,
  fc.oneof(jsonArb.filter((v) => v !== 1), fc.constantFrom(2, 0, -1, 1.5, "1", null, true, [1], { v: 1 }))
).map(([e, v]) =>
  JSON.stringify({ v, hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time })
)

/** A proper prefix of a valid line (a write cut short). */
const truncatedLineArb: fc.Arbitrary<string> = fc.tuple(entryArb, fc.double({ min: 0, max: 1, noNaN: true })).map(
  ([e, f]) => {
    const line = lineOf(e)
    return line.slice(0, 1 + Math.floor(f * (line.length - 2)))
  }
)

/** A line of text without a newline that is neither blank nor a valid entry. */
const garbageLineArb: fc.Arbitrary<string> = fc.string({ maxLength: 80, unit: "binary" })
  .map((s) => s.replace(/[\n]/g, ""))
  .filter((s) => s.trim() !== "" && !(parses(s) && isEntry(JSON.parse(s))))

/** Any kind of bad line. */
const badLineArb = fc.oneof(wrongShapeArb, unknownVersionArb, truncatedLineArb, garbageLineArb)

// ---------------------------------------------------------------------------------------
// JSON text with hostile keys, written by hand so that `__proto__` stays an own key.

const HOSTILE_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "polluted", "v"]

type Tree = { readonly leaf: unknown } | { readonly members: ReadonlyArray<readonly [string, Tree]> } | {
  readonly items: ReadonlyArray<Tree>
}

const treeArb: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    jsonArb.map((leaf) => ({ leaf })),
    fc.array(fc.tuple(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 4 })), tie("tree")), {
      maxLength: 4
    }).map((members) => ({ members })),
    fc.array(tie("tree"), { maxLength: 3 }).map((items) => ({ items }))
  )
})).tree

const treeText = (t: Tree): string =>
  "leaf" in t
    ? JSON.stringify(t.leaf)
    : "items" in t
    ? "[" + t.items.map(treeText).join(",") + "]"
    : "{" + t.members.map(([k, v]) => JSON.stringify(k) + ":" + treeText(v)).join(",") + "}"

/** A hostile object at the top: always holds at least one `__proto__` or `constructor` key. */
const hostileObjectArb: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom("__proto__", "constructor"),
  treeArb,
  treeArb
).map(([k, a, b]) => `{${JSON.stringify(k)}:${treeText(a)},"polluted":${treeText(b)}}`)

// ---------------------------------------------------------------------------------------

describe("hostile checkpoint files", () => {
  it("an unterminated last line is a torn write only if it can start an entry", () => {
    for (const line of ["{", "{\"v\":1,\"ha", "  {\"v\"", "\t\r{", "\ufeff{\"v\":1"]) {
      assert.isTrue(mayBeTorn(line), JSON.stringify(line))
    }
    for (const line of ["", " ", "this is not a checkpoint", "[1,2", "\u0080\u0000", "x{", " \ufeff{", "\n{"]) {
      assert.isFalse(mayBeTorn(line), JSON.stringify(line))
    }
  })

  it("random bytes: a BadCheckpoint with path and line, or a load; never a defect or a hang", async () => {
    const fragment = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom("\n", "{", "}", "\"v\":1", "\r\n", ",", "\"", "\u0000", "\uffff").map((s) =>
        new TextEncoder().encode(s)
      ),
      entryArb.map((e) => new TextEncoder().encode(lineOf(e) + "\n"))
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fragment, { maxLength: 12 }), async (parts) => {
        const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
        let at = 0
        for (const p of parts) {
          bytes.set(p, at)
          at += p.length
        }
        const lines = new TextDecoder().decode(bytes).split("\n").length
        const loaded = await loadWithStore(bytes)
        const bad = badCheckpointOf(loaded, lines)
        if (bad === undefined) {
          for (const e of entriesOf(loaded)) {
            assert.isTrue(isEntry(e), `a bad entry was handed over: ${JSON.stringify(e)}`)
          }
        }
      }),
      { numRuns: 300 }
    )
  })

  it("a file cut anywhere: the complete lines load and a torn last line is skipped with a warning", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { minLength: 1, maxLength: 12 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (entries, f) => {
          const lines = entries.map(lineOf)
          const text = lines.map((l) => l + "\n").join("")
          const bytes = new TextEncoder().encode(text)
          const cut = bytes.subarray(0, Math.floor(f * bytes.length))
          const kept = new TextDecoder().decode(cut)
          const parts = kept.split("\n")
          const tail = parts.pop()!
          const complete = parts.length + (tail !== "" && tail === lines[parts.length] ? 1 : 0)
          const torn = tail !== "" && tail !== lines[parts.length]

          const loaded = await loadWithStore(cut)
          const got = entriesOf(loaded)
          assert.strictEqual(got.length, complete)
          got.forEach((e, n) => {
            const want = JSON.parse(lines[n]!)
            assert.strictEqual(e.hash, want.hash)
            sameJson(e.input, want.input, "input")
            sameJson(e.result, want.result, "result")
          })
          if (torn) {
            assert.isTrue(
              loaded.warnings.some((w) => w.includes(loaded.file) && w.includes(`line ${parts.length + 1}`)),
              `no warning names the torn line: ${JSON.stringify(loaded.warnings)}`
            )
          } else {
            assert.deepStrictEqual(loaded.warnings, [])
          }
        }
      ),
      { numRuns: 250 }
    )
  })

  it("a bad line (wrong shape, unknown v, cut short, garbage) is a BadCheckpoint at that line", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 4 }),
        badLineArb,
        fc.array(entryArb, { maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        async (before, bad, after, terminated, viaKernel) => {
          const last = after.length === 0
          const text = [...before.map(lineOf), bad, ...after.map(lineOf)].join("\n") +
            (last && !terminated ? "" : "\n")
          const badLine = before.length + 1
          const loaded = await (viaKernel ? loadWithKernel(text) : loadWithStore(text))
          const error = badCheckpointOf(loaded, badLine)
          if (last && !terminated && !parses(bad) && bad.replace(/^[ \t\r]*/, "").startsWith("{")) {
            // A torn last line (the start of an entry): skipped with a warning. Unterminated
            // text that cannot start an entry is a file that is not a checkpoint: an error.
            assert.isUndefined(error, `an unparsable unterminated last line is a torn write: ${error?.message}`)
            if (!viaKernel) assert.strictEqual(entriesOf(loaded).length, before.length)
            assert.isTrue(loaded.warnings.some((w) => w.includes(loaded.file)), "no warning for the torn line")
          } else {
            assert.isDefined(error, `line ${badLine} ${JSON.stringify(bad)} was accepted`)
            assert.strictEqual(error!.line, badLine)
          }
        }
      ),
      { numRuns: 300 }
    )
  })

  it("__proto__ and constructor keys in input, result or at the top level load as data", async () => {
    await fc.assert(
      fc.asyncProperty(
        entryArb,
        hostileObjectArb,
        hostileObjectArb,
        fc.option(hostileObjectArb, { nil: undefined }),
        fc.boolean(),
        async (e, input, result, top, topFirst) => {
          const fields = `"v":1,"hash":"${e.hash}","app":${
            JSON.stringify(e.app)
          },"version":null,"input":${input},"result":${result},"time":"${e.time}"`
          const extra = top === undefined ? "" : `"__proto__":${top},"constructor":${top}`
          const line = "{" + (extra === "" ? fields : topFirst ? `${extra},${fields}` : `${fields},${extra}`) + "}"
          const loaded = await loadWithStore(line + "\n")
          const got = entriesOf(loaded)
          assert.strictEqual(got.length, 1)
          const entry = got[0]!
          assert.strictEqual(entry.hash, e.hash)
          sameJson(entry.input, JSON.parse(input), "input")
          sameJson(entry.result, JSON.parse(result), "result")
        }
      ),
      { numRuns: 150 }
    )
  })

  it("an entry hidden under a top-level __proto__ key is no entry", async () => {
    await fc.assert(
      fc.asyncProperty(entryArb, fc.constantFrom("__proto__", "constructor", "prototype"), async (e, key) => {
        const text = `{${JSON.stringify(key)}:${lineOf(e)}}\n`
        const error = badCheckpointOf(await loadWithStore(text), 1)
        assert.isDefined(error)
        assert.strictEqual(error!.line, 1)
      }),
      { numRuns: 30 }
    )
  })

  it("hostile results (and times with quotes and newlines) served by a kernel and carried forward stay data", async () => {
    // A "time" is only a string to the loader: whatever it holds must not break the line it is written to again.
    const timeArb = fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.constantFrom("\"\n{\"v\":2}\n", "\\", "\u2028\u0000")
    )
    const hostile = App.make(
      { name: "hostile", input: Schema.Unknown, output: Schema.Unknown, cache: true },
      () => Effect.dieMessage("the body must not run: the result is in the checkpoint")
    )
    await fc.assert(
      fc.asyncProperty(hostileObjectArb, hostileObjectArb, timeArb, async (inputText, resultText, time) => {
        const input: unknown = JSON.parse(inputText)
        const hash = Effect.runSync(Memo.key({ name: "hostile", input }))
        const { dir } = writeCheckpoint(
          `{"v":1,"hash":"${hash}","app":"hostile","version":null,"input":${inputText},"result":${resultText},"time":${
            JSON.stringify(time)
          }}\n`
        )
        const runDir = path.join(path.dirname(dir), "runs")
        const exit = await runtime.runPromiseExit(
          withTimeout(
            Effect.gen(function*() {
              const value = yield* hostile(JSON.parse(inputText))
              const out = yield* Dfk.checkpoint
              const stats = yield* Dfk.detailedStats
              return { value, out, stats }
            }).pipe(
              Effect.provide(Dfk.layer({ runDir, checkpointMode: "manual" })),
              Effect.provide(CheckpointFiles.layer([dir]))
            ),
            10
          )
        )
        assertPrototypeClean()
        if (Exit.isFailure(exit)) assert.fail(Cause.pretty(exit.cause))
        const { out, stats, value } = exit.value
        sameJson(value, JSON.parse(resultText), "the value served")
        assert.strictEqual(stats.misses, 0)
        assert.strictEqual(stats.fromCheckpoint, 1)
        const written = fs.readFileSync(path.join(out, "tasks.jsonl"), "utf8").split("\n")
        assert.strictEqual(written.length, 2)
        const again = JSON.parse(written[0]!)
        assert.strictEqual(again.hash, hash)
        assert.strictEqual(again.time, time)
        sameJson(again.input, JSON.parse(inputText), "the input carried forward")
        sameJson(again.result, JSON.parse(resultText), "the result carried forward")
        fs.rmSync(path.dirname(dir), { recursive: true, force: true })
      }),
      { numRuns: 100 }
    )
  })

  describe("deeply nested values (JSON.parse takes them, JSON.stringify overflows)", () => {
    const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
    const deepApp = App.make(
      { name: "deep", input: Schema.Number, output: Schema.Unknown, cache: true },
      (x) => Effect.succeed([x])
    )
    const cases = [
      { where: "result", mode: "task_exit" },
      { where: "result", mode: "manual" },
      { where: "input", mode: "task_exit" },
      { where: "input", mode: "manual" }
    ] as const
    for (const { mode, where } of cases) {
      it(`a deep ${where} is a BadCheckpoint or served and written again; never a defect (${mode})`, async () => {
        const hash = Effect.runSync(Memo.key({ name: "deep", input: 1 }))
        const input = where === "input" ? deep(200_000) : "1"
        const result = where === "result" ? deep(200_000) : "[1]"
        const { dir, file } = writeCheckpoint(
          `{"v":1,"hash":"${hash}","app":"deep","version":null,"input":${input},"result":${result},"time":"t"}\n`
        )
        const runDir = path.join(path.dirname(dir), "runs")
        const exit = await runtime.runPromiseExit(
          withTimeout(
            Effect.gen(function*() {
              const value = yield* deepApp(1)
              const written = yield* Effect.either(Dfk.checkpoint)
              return { value, written, stats: yield* Dfk.detailedStats }
            }).pipe(
              Effect.provide(Dfk.layer({ runDir, checkpointMode: mode })),
              Effect.provide(CheckpointFiles.layer([dir]))
            ),
            20
          )
        )
        assertPrototypeClean()
        if (Exit.isFailure(exit)) {
          // Refusing the file is fine: a BadCheckpoint at line 1.
          const error = badCheckpointOf({ exit: exit as unknown as Loaded["exit"], file, warnings: [] }, 1)
          assert.isDefined(error)
          return
        }
        const { stats, written } = exit.value
        assert.isTrue(written._tag === "Right", `Dfk.checkpoint failed: ${String(written)}`)
        // Whatever was served, what stays pending is nothing, and what was written loads.
        assert.strictEqual(stats.pending, 0)
        const lines = fs.readFileSync(path.join(runDir, "000", "checkpoint", "tasks.jsonl"), "utf8")
        const again = await loadWithStore(lines)
        assert.strictEqual(entriesOf(again).length, stats.checkpointed)
      })
    }
  })

  describe("a 50 MB line", () => {
    const big = 50 * 1024 * 1024

    it("a valid 50 MB entry loads", async () => {
      const e = { v: 1, hash: "a".repeat(64), app: "big", version: null, input: 1, result: "x".repeat(big), time: "t" }
      const loaded = await loadWithStore(JSON.stringify(e) + "\n" + lineOf({ ...e, result: 2 }) + "\n", 30)
      const got = entriesOf(loaded)
      assert.strictEqual(got.length, 2)
      assert.strictEqual((got[0]!.result as string).length, big)
      assert.strictEqual(got[1]!.result, 2)
    })

    it("a 50 MB garbage line is a BadCheckpoint at line 2; unterminated at the end, it is skipped", async () => {
      const good = lineOf({ hash: "b".repeat(64), app: "big", version: null, input: 1, result: 1, time: "t" })
      const garbage = "{\"v\":1," + "z".repeat(big)
      const error = badCheckpointOf(await loadWithStore(`${good}\n${garbage}\n${good}\n`, 30), 3)
      assert.isDefined(error)
      assert.strictEqual(error!.line, 2)

      const torn = await loadWithStore(`${good}\n${garbage}`, 30)
      assert.strictEqual(entriesOf(torn).length, 1)
      assert.isTrue(torn.warnings.some((w) => w.includes("line 2")))
    })
  })
})
