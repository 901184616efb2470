/**
 * DESIGN.md §3 (semantics, Parsl parity), checked through the public API: the memo key
 * (recomputed with helpers.ts's own RFC 8785 serializer), AppCaching and the in-run memo,
 * in-flight dedup, stats, the checkpoint modes and their log lines, carried-forward results,
 * loading, default resume, run dirs, and names unique per kernel. (Ports of Parsl's own
 * tests: parsl.test.ts.)
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformPath from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import {
  App,
  AppCacheError,
  BadCheckpoint,
  CheckpointFiles,
  ConfigurationError,
  Dfk,
  getAllCheckpoints,
  getLastCheckpoint
} from "effect-dfk"
import type { DfkConfig } from "effect-dfk"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, eventually, exists, platform, tmpDir, withKernel } from "../util.ts"
import {
  Boom,
  entryLine,
  expectedKey,
  jcs,
  kernel,
  loadError,
  makeDouble,
  makePlain,
  modes,
  rawLines,
  sha256,
  stats,
  statsWhen,
  tasksFile,
  writeCheckpoint
} from "./helpers.ts"

// ---------------------------------------------------------------------------------------------
// §3 Memo key
// ---------------------------------------------------------------------------------------------

/** Calls `app` on each input under a manual kernel, checkpoints, returns the raw lines written. */
const linesFor = <I>(app: (i: I) => Effect.Effect<unknown, unknown, Dfk>, inputs: ReadonlyArray<I>) =>
  withKernel(
    { checkpointMode: "manual" },
    Effect.gen(function*() {
      for (const i of inputs) yield* app(i)
      yield* Dfk.checkpoint
    })
  ).pipe(Effect.map(({ runDir }) => rawLines(runDir)))

/** The text of a line's `"input"` (the canonical form the key was computed from). */
const inputText = (line: string): string => {
  const m =
    /^\{"v":1,"hash":"[0-9a-f]{64}","app":"[^"]*","version":(?:null|"[^"]*"),"input":(.*),"result":null,"time":"[^"]+"\}$/s
      .exec(line)
  if (m === null) throw new Error(`unexpected line ${line}`)
  return m[1]!
}

describe("§3 memo key", () => {
  const jcsApp = App.make(
    { name: "jcs", input: Schema.Unknown, output: Schema.Null, cache: true },
    () => Effect.succeed(null)
  )

  it("the independent serializer agrees with RFC 8785's own examples", () => {
    assert.strictEqual(
      // eslint-disable-next-line no-loss-of-precision -- RFC 8785's own example numbers
      jcs([333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001]),
      "[333333333.3333333,1e+30,4.5,0.002,1e-27]"
    )
    assert.strictEqual(
      jcs({
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
      }),
      "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\ud83d\ude00\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
    )
    assert.strictEqual(jcs([1e21, -0, 1.5e-7]), "[1e+21,0,1.5e-7]")
  })

  const bigObject = (() => {
    const o: Record<string, unknown> = {}
    const keys = Array.from({ length: 80 }, (_, i) => `k${(i * 37) % 80}\u00e9`)
    keys.push("\ud83d\ude00", "\ufb33", "Z", "a", "_", "\u007f")
    for (const k of keys) o[k] = { n: [1e21, -0, 1.5e-7, k], s: "x\u2028\"" }
    return o
  })()

  const vectors: Array<[string, unknown, string]> = [
    [
      "numbers",
      [
        1e21,
        -0,
        1.5e-7,
        1e-7,
        0.1,
        100,
        123e20,
        5e-324,
        1.7976931348623157e308,
        -1e-7,
        // eslint-disable-next-line no-loss-of-precision -- RFC 8785's own example numbers
        333333333.33333329,
        1e30,
        4.50,
        2e-3,
        1e-27,
        // eslint-disable-next-line no-loss-of-precision -- a number above 2^53 on purpose
        9007199254740993,
        -5,
        0.000001
      ],
      "[1e+21,0,1.5e-7,1e-7,0.1,100,1.23e+22,5e-324,1.7976931348623157e+308,-1e-7,333333333.3333333,1e+30,4.5,0.002,1e-27,9007199254740992,-5,0.000001]"
    ],
    [
      "rfc8785 key order",
      { "\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\ud83d\ude00": 5, "\u0080": 6, "\u00f6": 7 },
      "{\"\\r\":2,\"1\":4,\"\u0080\":6,\"\u00f6\":7,\"\u20ac\":1,\"\ud83d\ude00\":5,\"\ufb33\":3}"
    ],
    [
      "escapes",
      "\u0000\u001f\"\\/\b\f\n\r\t\u007f\u2028\u00e9\ud83d\ude00",
      "\"\\u0000\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\u007f\u2028\u00e9\ud83d\ude00\""
    ],
    ["integer-like keys", { "10": 1, "9": 2, a: 3, B: 4, "-1": 5 }, "{\"-1\":5,\"10\":1,\"9\":2,\"B\":4,\"a\":3}"],
    ["__proto__ key", JSON.parse("{\"z\":1,\"__proto__\":2,\"a\":3}"), "{\"__proto__\":2,\"a\":3,\"z\":1}"],
    [
      "nested",
      { b: [{ d: 1, c: [true, false, null] }], a: { y: "", x: {} } },
      "{\"a\":{\"x\":{},\"y\":\"\"},\"b\":[{\"c\":[true,false,null],\"d\":1}]}"
    ],
    ["big object", bigObject, jcs(bigObject)],
    [
      "big object with integer-like keys",
      Object.fromEntries(Array.from({ length: 60 }, (_, i) => [String((i * 7) % 60), -0])),
      jcs(Object.fromEntries(Array.from({ length: 60 }, (_, i) => [String((i * 7) % 60), 0])))
    ],
    [
      "big array",
      Array.from({ length: 100 }, (_, i) => i % 3 === 0 ? -0 : i * 1e20),
      jcs(Array.from({ length: 100 }, (_, i) => i % 3 === 0 ? 0 : i * 1e20))
    ],
    ["undefined object member omitted", { a: undefined, b: 1 }, "{\"b\":1}"],
    ["top-level string", "caf\u00e9", "\"caf\u00e9\""],
    ["empty", [[], {}, ""], "[[],{},\"\"]"]
  ]

  for (const [label, value, canonical] of vectors) {
    it.scoped(`key = sha256(JCS([name, null, input])), input written in JCS form: ${label}`, () =>
      Effect.gen(function*() {
        assert.strictEqual(jcs(value), canonical, "self-check of the independent serializer")
        const [line] = yield* linesFor(jcsApp, [value])
        assert.strictEqual(inputText(line!), canonical)
        assert.strictEqual(JSON.parse(line!).hash, sha256(`["jcs",null,${canonical}]`))
      }))
  }

  it.scoped("README's example: slow_double {x: 1} (sleepMs ignored) has the key 108f567c…", () =>
    Effect.gen(function*() {
      const slowDouble = App.make(
        {
          name: "slow_double",
          input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
          output: Schema.Number,
          cache: true,
          ignoreForCache: ["sleepMs"]
        },
        ({ x }) => Effect.succeed(x * 2)
      )
      const { runDir } = yield* withKernel({ checkpointMode: "task_exit" }, slowDouble({ x: 1, sleepMs: 5 }))
      const [e] = checkpointEntries(runDir)
      assert.strictEqual(e!.hash, expectedKey("slow_double", null, { x: 1 }))
      assert.strictEqual(e!.hash, "108f567c66d5bb9116ee84dee6a8429e9828b8f4eb1880ca0a6fe51c22420eb2")
      assert.deepStrictEqual(e!.input, { x: 1 })
    }))

  it.scoped("name and version enter the key as JCS strings (escaped); another version is another key", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const v1 = makeDouble(c, "n\u00e9\"me", "2\n")
      const v0 = makeDouble(c, "n\u00e9\"me")
      const { runDir } = yield* withKernel({ checkpointMode: "task_exit" }, Effect.zipRight(v1(3), v0(3)))
      assert.strictEqual(c.n, 2)
      const [a, b] = checkpointEntries(runDir)
      assert.strictEqual(a!.hash, sha256(jcs(["n\u00e9\"me", "2\n", 3])))
      assert.strictEqual(a!.version, "2\n")
      assert.strictEqual(b!.hash, sha256(jcs(["n\u00e9\"me", null, 3])))
      assert.strictEqual(b!.version, null)
    }))

  it.scoped("the key uses the *encoded* input, and ignoreForCache names encoded keys", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const app = App.make(
        {
          name: "enc",
          input: Schema.Struct({
            when: Schema.Date,
            n: Schema.NumberFromString,
            sleepMs: Schema.optional(Schema.Number).pipe(Schema.fromKey("sleep_ms"))
          }),
          output: Schema.Number,
          cache: true,
          ignoreForCache: ["sleep_ms"]
        },
        ({ n }) => Effect.sync(() => (c.n++, n))
      )
      const when = new Date("2020-01-02T03:04:05.006Z")
      const { runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          yield* app({ when, n: 5, sleepMs: 1 })
          yield* app({ when: new Date(when.getTime()), n: 5, sleepMs: 99 })
          yield* app({ when, n: 5 })
        })
      )
      assert.strictEqual(c.n, 1)
      const [e] = checkpointEntries(runDir)
      const encoded = { when: "2020-01-02T03:04:05.006Z", n: "5" }
      assert.deepStrictEqual(e!.input, encoded)
      assert.strictEqual(e!.hash, expectedKey("enc", null, encoded))
    }))

  it.scoped("ignoreForCache drops top-level keys only, not nested keys of the same name", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const make = (name: string, ignored: "a" | "b") =>
        App.make(
          {
            name,
            input: Schema.Struct({ a: Schema.Number, b: Schema.Struct({ a: Schema.Number, b: Schema.Number }) }),
            output: Schema.Number,
            cache: true,
            ignoreForCache: [ignored]
          },
          ({ a }) => Effect.sync(() => (c.n++, a))
        )
      const ignoresB = make("ign", "b")
      const ignoresA = make("ign2", "a")
      const lines = yield* linesFor(
        (i: number) => Effect.zipRight(ignoresB({ a: 1, b: { a: 7, b: i } }), ignoresA({ a: i, b: { a: 7, b: 7 } })),
        [1, 2]
      )
      assert.strictEqual(c.n, 2, "b ignored for ign; a ignored for ign2")
      const es = lines.map((l) => JSON.parse(l))
      assert.deepStrictEqual(es.map((e) => e.input), [{ a: 1 }, { b: { a: 7, b: 7 } }])
      assert.strictEqual(es[0].hash, expectedKey("ign", null, { a: 1 }))
      assert.strictEqual(es[1].hash, expectedKey("ign2", null, { b: { a: 7, b: 7 } }))
    }))

  it.scoped("0 and -0 are the same key; the same value gives the same key in every run", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      const hashes: Array<string> = []
      for (let run = 0; run < 2; run++) {
        const runDir = yield* Effect.zipRight(Effect.zipRight(d(0), d(-0)), Dfk.runDir).pipe(
          Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" }, CheckpointFiles.none))
        )
        const es = checkpointEntries(runDir)
        assert.strictEqual(es.length, 1)
        hashes.push(es[0]!.hash)
      }
      assert.strictEqual(c.n, 2)
      assert.deepStrictEqual(hashes, [expectedKey("double", null, 0), expectedKey("double", null, 0)])
    }))

  const notJson: Array<[string, unknown]> = (() => {
    const cyc: any = { a: 1 }
    cyc.self = cyc
    const cycArr: any = [1]
    cycArr.push([cycArr])
    const bigCyc: any = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]))
    bigCyc.k49 = { inner: bigCyc }
    const bigNaN: any = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]))
    bigNaN.k25 = [1, 2, { deep: NaN }]
    return [
      ["NaN", NaN],
      ["Infinity", Infinity],
      ["-Infinity", -Infinity],
      ["NaN in an object", { a: NaN }],
      ["undefined in an array", [1, undefined, 2]],
      ["undefined at the top", undefined],
      ["a cycle", cyc],
      ["a cycle through arrays", cycArr],
      ["a cycle in a big object", bigCyc],
      ["NaN deep in a big object", bigNaN],
      ["a bigint", 10n],
      ["a Date instance", new Date(0)],
      ["a Map", new Map([[1, 2]])],
      ["a function", () => 1],
      ["a symbol", Symbol("s")]
    ]
  })()

  for (const [label, value] of notJson) {
    it.scoped(`an input with no JSON form fails with AppCacheError and the body does not run: ${label}`, () =>
      Effect.gen(function*() {
        const c = { n: 0 }
        const app = App.make(
          { name: "any", input: Schema.Unknown, output: Schema.Number, cache: true },
          () => Effect.sync(() => ++c.n)
        )
        const { value: e, runDir } = yield* withKernel({ checkpointMode: "task_exit" }, Effect.flip(app(value)))
        assert.instanceOf(e, AppCacheError)
        assert.strictEqual(e._tag, "AppCacheError")
        assert.strictEqual(c.n, 0)
        assert.deepStrictEqual(checkpointEntries(runDir), [])
      }))
  }

  it.scoped("a schema-valid input that encodes to Infinity or -Infinity fails with AppCacheError", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const num = makeDouble(c, "num")
      const st = App.make(
        { name: "st", input: Schema.Struct({ x: Schema.Number }), output: Schema.Number, cache: true },
        ({ x }) => Effect.sync(() => (c.n++, x))
      )
      const { value } = yield* withKernel(
        {},
        Effect.all([Effect.flip(st({ x: Infinity })), Effect.flip(num(-Infinity))])
      )
      assert.deepStrictEqual(value.map((e) => e._tag), ["AppCacheError", "AppCacheError"])
      assert.strictEqual(c.n, 0)
    }))

  it.scoped("an input that fails to encode (sync or async transformation, wrong type) fails with AppCacheError", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const refuse = (s: string, ast: any) => ParseResult.fail(new ParseResult.Type(ast, s, "no"))
      const Picky = Schema.transformOrFail(Schema.String, Schema.String, {
        strict: true,
        decode: (s) => ParseResult.succeed(s),
        encode: (s, _, ast) => s === "bad" ? refuse(s, ast) : ParseResult.succeed(s)
      })
      const AsyncPicky = Schema.transformOrFail(Schema.String, Schema.String, {
        strict: true,
        decode: (s) => ParseResult.succeed(s),
        // A promise makes the encoding asynchronous without any timer.
        encode: (s, _, ast) =>
          Effect.promise(() => Promise.resolve()).pipe(
            Effect.zipRight(s === "bad" ? refuse(s, ast) : ParseResult.succeed(s + "!"))
          )
      })
      const a = App.make(
        { name: "picky", input: Picky, output: Schema.String, cache: true },
        (s) => Effect.sync(() => (c.n++, s))
      )
      const b = App.make(
        { name: "apicky", input: AsyncPicky, output: Schema.String, cache: true },
        (s) => Effect.sync(() => (c.n++, s))
      )
      const n = makeDouble(c, "n")
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const errors = [
            yield* Effect.flip(a("bad")),
            yield* Effect.flip(b("bad")),
            yield* Effect.flip(n("seven" as any))
          ]
          const before = c.n
          return { errors, before, ok: [yield* b("good"), yield* b("good")] }
        })
      )
      assert.deepStrictEqual(value.errors.map((e) => e._tag), ["AppCacheError", "AppCacheError", "AppCacheError"])
      assert.strictEqual(value.before, 0)
      assert.deepStrictEqual(value.ok, ["good", "good"])
      assert.strictEqual(c.n, 1, "an asynchronously encoded input is memoized")
      const [e] = checkpointEntries(runDir)
      assert.strictEqual(e!.input, "good!")
      assert.strictEqual(e!.hash, expectedKey("apicky", null, "good!"))
    }))
})

// ---------------------------------------------------------------------------------------------
// §3 AppCaching, in-run memo, in-flight dedup, stats
// ---------------------------------------------------------------------------------------------

describe("§3 AppCaching and in-run memo", () => {
  it.scoped("cache defaults to false: every call runs the body and is a miss; nothing is pending or written", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const plain = makePlain(c)
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          yield* plain(1)
          yield* plain(1)
          const s = yield* Dfk.stats
          yield* Dfk.checkpoint
          return s
        })
      )
      assert.strictEqual(c.n, 2)
      assert.deepStrictEqual(value, stats(2, 0, 2, 0, 0))
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("memoize: false, in every mode: nothing memoized, written or loaded", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      // A previous run with d(1) checkpointed, which default resume would load.
      yield* d(1).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      assert.strictEqual(c.n, 1)
      for (const mode of modes) {
        const out = yield* Effect.gen(function*() {
          yield* d(1)
          yield* d(1)
          const before = yield* Dfk.stats
          const dir = yield* Dfk.checkpoint
          return { before, after: yield* Dfk.stats, dir }
        }).pipe(
          Effect.provide(kernel({ runDir: root, memoize: false, checkpointMode: mode, checkpointPeriod: "1 hour" }))
        )
        assert.deepStrictEqual(out.before, stats(2, 0, 2, 0, 0), mode)
        assert.deepStrictEqual(out.after, stats(2, 0, 2, 0, 0), mode)
        const file = path.join(out.dir, "tasks.jsonl")
        assert.isTrue(!exists(file) || fs.readFileSync(file, "utf8") === "", `${mode}: no entry written`)
      }
      assert.strictEqual(c.n, 1 + modes.length * 2)
    }))

  it.scoped("a failure is memoized in-run (the same error value) and never checkpointed, in every mode and with none", () =>
    Effect.gen(function*() {
      for (const mode of [undefined, ...modes]) {
        const c = { n: 0 }
        const fails = App.make(
          { name: "fails", input: Schema.Number, output: Schema.Number, cache: true },
          (n) => Effect.suspend(() => Effect.fail(new Boom({ n: ++c.n + n })))
        )
        const config = { checkpointPeriod: "1 hour", ...(mode === undefined ? {} : { checkpointMode: mode }) }
        const { value, runDir, root } = yield* withKernel(
          config,
          Effect.gen(function*() {
            const first = yield* Effect.flip(fails(1))
            const second = yield* Effect.flip(fails(1))
            const s = yield* Dfk.stats
            yield* Dfk.checkpoint
            return { first, second, s }
          })
        )
        assert.strictEqual(value.first, value.second, String(mode))
        assert.strictEqual(c.n, 1)
        assert.deepStrictEqual(value.s, stats(2, 1, 1, 0, 0), String(mode))
        assert.deepStrictEqual(checkpointEntries(runDir), [], String(mode))
        // A later run (resuming by default) runs the body again.
        const again = yield* Effect.exit(fails(1)).pipe(
          Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" }))
        )
        assert.isTrue(Exit.isFailure(again))
        assert.strictEqual(c.n, 2, `${mode}: the body ran again in the next run`)
      }
    }))

  it.scoped("an interrupted call (by Fiber.interrupt or a timeout) is not memoized: not in-run, not pending, not written", () =>
    Effect.gen(function*() {
      const runs: Record<number, number> = {}
      const started = yield* Deferred.make<void>()
      const slow = App.make(
        { name: "slow", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => {
            runs[x] = (runs[x] ?? 0) + 1
            return runs[x] === 1
              ? Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
              : Effect.succeed(x)
          })
      )
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const interrupted = yield* Effect.fork(slow(5))
          yield* Deferred.await(started)
          yield* Fiber.interrupt(interrupted)
          const timed = yield* Effect.fork(Effect.timeout(slow(6), "1 second"))
          yield* TestClock.adjust("1 second")
          const timeout = yield* Fiber.await(timed)
          const afterInterrupts = yield* Dfk.stats
          const again = [yield* slow(5), yield* slow(5), yield* slow(6)]
          return { timeout, afterInterrupts, again, s: yield* Dfk.stats }
        })
      )
      assert.isTrue(Exit.isFailure(value.timeout))
      assert.deepStrictEqual(value.afterInterrupts, stats(2, 0, 2, 0, 0))
      assert.deepStrictEqual(value.again, [5, 5, 6])
      assert.deepStrictEqual(runs, { 5: 2, 6: 2 })
      assert.deepStrictEqual(value.s, stats(5, 1, 4, 2, 0))
      assert.deepStrictEqual(checkpointEntries(runDir).map((e) => e.input), [5, 6])
    }))
})

describe("§3 in-flight dedup", () => {
  it.scoped("concurrent calls with the same key share one execution, for a success and for a failure", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const gate = yield* Deferred.make<void>()
      const app = App.make(
        { name: "shared", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => (c.n++, Deferred.await(gate))).pipe(
            Effect.flatMap(() => x < 0 ? Effect.fail(new Boom({ n: x })) : Effect.succeed(x * 10))
          )
      )
      const { value } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.gen(function*() {
          const calls = yield* Effect.fork(
            Effect.all([app(1), app(1), app(1), Effect.flip(app(-1)), Effect.flip(app(-1))], {
              concurrency: "unbounded"
            })
          )
          const mid = yield* statsWhen((s) => s.tasks === 5)
          const bodiesWhileBlocked = c.n
          yield* Deferred.succeed(gate, undefined)
          return { results: yield* Fiber.join(calls), mid, bodiesWhileBlocked, s: yield* Dfk.stats }
        })
      )
      assert.strictEqual(value.mid.tasks, 5)
      assert.strictEqual(value.bodiesWhileBlocked, 2)
      assert.strictEqual(c.n, 2)
      assert.deepStrictEqual(value.results.slice(0, 3), [10, 10, 10])
      assert.strictEqual(value.results[3], value.results[4], "the same error value")
      assert.deepStrictEqual(value.s, stats(5, 3, 2, 0, 1))
    }))

  it.scoped("if the executing call is interrupted, its two waiters are not: one of them runs the body", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const firstStarted = yield* Deferred.make<void>()
      const app = App.make(
        { name: "relay", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() =>
            ++c.n === 1
              ? Effect.zipRight(Deferred.succeed(firstStarted, undefined), Effect.never)
              : Effect.succeed(x + 100)
          )
      )
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const runner = yield* Effect.fork(app(1))
          yield* Deferred.await(firstStarted)
          const waiters = yield* Effect.fork(Effect.all([app(1), app(1)], { concurrency: "unbounded" }))
          const mid = yield* statsWhen((s) => s.tasks === 3)
          yield* Fiber.interrupt(runner)
          return { mid, results: yield* Fiber.join(waiters), s: yield* Dfk.stats }
        })
      )
      assert.strictEqual(value.mid.tasks, 3)
      assert.deepStrictEqual(value.results, [101, 101])
      assert.strictEqual(c.n, 2)
      assert.deepStrictEqual(value.s, stats(3, 1, 2, 1, 0))
      assert.strictEqual(checkpointEntries(runDir).length, 1)
    }))

  it.scoped("an interrupted waiter does not disturb the execution it joined", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const app = App.make(
        { name: "w", input: Schema.Number, output: Schema.Number, cache: true },
        (x) =>
          Effect.suspend(() => (c.n++, Deferred.succeed(started, undefined))).pipe(
            Effect.zipRight(Deferred.await(gate)),
            Effect.as(x)
          )
      )
      const { value } = yield* withKernel(
        {},
        Effect.gen(function*() {
          const runner = yield* Effect.fork(app(7))
          yield* Deferred.await(started)
          const waiter = yield* Effect.fork(app(7))
          yield* statsWhen((s) => s.tasks === 2)
          yield* Fiber.interrupt(waiter)
          yield* Deferred.succeed(gate, undefined)
          return { result: yield* Fiber.join(runner), again: yield* app(7) }
        })
      )
      assert.deepStrictEqual(value, { result: 7, again: 7 })
      assert.strictEqual(c.n, 1)
    }))
})

describe("§3 stats", () => {
  it.scoped("start at zero; hits from the memo and from loaded checkpoints; misses include cache: false", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const plain = makePlain(c)
      const root = yield* tmpDir
      // run 000: d(1), d(2) checkpointed
      const first = yield* Effect.gen(function*() {
        const zero = yield* Dfk.stats
        yield* d(1)
        yield* d(2)
        return { zero, s: yield* Dfk.stats }
      }).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      assert.deepStrictEqual(first.zero, stats(0, 0, 0, 0, 0))
      assert.deepStrictEqual(first.s, stats(2, 0, 2, 2, 0))
      // run 001 (manual): d(1) from the checkpoint (a hit, pending), d(1) from the memo, d(3) a miss, plain twice
      const second = yield* Effect.gen(function*() {
        yield* d(1)
        const a = yield* Dfk.stats
        yield* d(1)
        yield* d(3)
        yield* plain(1)
        yield* plain(1)
        const b = yield* Dfk.stats
        yield* Dfk.checkpoint
        return { a, b, after: yield* Dfk.stats }
      }).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "manual" })))
      assert.deepStrictEqual(second.a, stats(1, 1, 0, 0, 1))
      assert.deepStrictEqual(second.b, stats(5, 2, 3, 0, 2))
      assert.deepStrictEqual(second.after, stats(5, 2, 3, 2, 0))
      assert.strictEqual(c.n, 2 + 1 + 2)
    }))
})

// ---------------------------------------------------------------------------------------------
// §3 checkpoint modes
// ---------------------------------------------------------------------------------------------

// A cached `x * 2` app and a kernel layer (CheckpointFiles.none unless told), for the mode tests that use them.
const double = App.make(
  { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.succeed(x * 2)
)

const kernelLayer = (config: DfkConfig, files: Layer.Layer<CheckpointFiles> = CheckpointFiles.none) =>
  Dfk.layer(config).pipe(Layer.provide(files), Layer.provide(platform))

describe("§3 checkpoint modes", () => {
  it.scoped("task_exit: the entry is on disk before the caller sees the result", () =>
    Effect.gen(function*() {
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const runDir = yield* Dfk.runDir
          const seen: Array<number> = []
          for (const x of [1, 2, 3]) {
            yield* double(x)
            seen.push(checkpointEntries(runDir).length)
          }
          return { seen, stats: yield* Dfk.stats }
        })
      )
      assert.deepStrictEqual(value.seen, [1, 2, 3])
      assert.strictEqual(value.stats.checkpointed, 3)
      assert.strictEqual(value.stats.pending, 0)
      const entries = checkpointEntries(runDir)
      assert.deepStrictEqual(entries.map((e) => [e.app, e.input, e.result]), [["double", 1, 2], ["double", 2, 4], [
        "double",
        3,
        6
      ]])
      for (const e of entries) {
        assert.strictEqual(e.v, 1)
        assert.match(e.hash, /^[0-9a-f]{64}$/)
        assert.strictEqual(e.version, null)
        assert.isFalse(Number.isNaN(Date.parse(e.time)))
      }
    }))

  it.scoped("task_exit: concurrent completions are all on disk when each caller resumes", () =>
    Effect.gen(function*() {
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const runDir = yield* Dfk.runDir
          const seen = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (x) =>
            double(x).pipe(Effect.map((y) =>
              checkpointEntries(runDir).some((e) => e.input === x && e.result === y)
            )), {
            concurrency: "unbounded"
          })
          return seen
        })
      )
      assert.isTrue(value.every((x) =>
        x
      ))
    }))

  it.scoped("task_exit: every caller that joined an in-flight call also sees the result only after its entry is written", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const gate = yield* Deferred.make<void>()
      const app = App.make(
        { name: "te", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.suspend(() => (c.n++, x === 0 ? Deferred.await(gate) : Effect.void)).pipe(Effect.as(x + 1))
      )
      const { value } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.gen(function*() {
          const runDir = yield* Dfk.runDir
          const written = (x: number) => (y: number) =>
            Effect.sync(() =>
              exists(tasksFile(runDir)) && checkpointEntries(runDir).some((e) => e.input === x && e.result === y)
            )
          const alone = yield* Effect.forEach([1, 2, 3], (x) => Effect.flatMap(app(x), written(x)), {
            concurrency: "unbounded"
          })
          const joined = yield* Effect.fork(
            Effect.all([0, 0, 0].map((x) => Effect.flatMap(app(x), written(x))), { concurrency: "unbounded" })
          )
          yield* statsWhen((s) => s.tasks === 6)
          yield* Deferred.succeed(gate, undefined)
          return { seen: [...alone, ...(yield* Fiber.join(joined))], s: yield* Dfk.stats }
        })
      )
      assert.deepStrictEqual(value.seen, [true, true, true, true, true, true])
      assert.deepStrictEqual(value.s, stats(6, 2, 4, 4, 0))
    }))

  it.scoped("task_exit: a fresh result is on disk before its caller sees it; one served from a loaded checkpoint is not waited for, and is in this run's checkpoint after the close", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      yield* d(4).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      const onDisk = (runDir: string) =>
        exists(tasksFile(runDir)) ? checkpointEntries(runDir).map((e) => [e.input, e.result]) : []
      const out = yield* Effect.gen(function*() {
        const runDir = yield* Dfk.runDir
        const carried = yield* d(4)
        const afterCarried = { disk: onDisk(runDir), s: yield* Dfk.stats }
        const fresh = yield* d(5)
        const afterFresh = { disk: onDisk(runDir), s: yield* Dfk.stats }
        return { carried, afterCarried, fresh, afterFresh, runDir }
      }).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      assert.strictEqual(out.carried, 8)
      assert.strictEqual(out.fresh, 10)
      assert.strictEqual(c.n, 2)
      // The carried-forward entry waits in the queue; the caller did not wait for it.
      assert.deepStrictEqual(out.afterCarried.disk, [])
      assert.deepStrictEqual(out.afterCarried.s, stats(1, 1, 0, 0, 1))
      // The fresh result's pass wrote it, with the carried one queued before it.
      assert.deepStrictEqual(out.afterFresh.disk, [[4, 8], [5, 10]])
      assert.deepStrictEqual(out.afterFresh.s, stats(2, 1, 1, 2, 0))
    }))

  it.scoped("task_exit: a carried-forward result no fresh pass writes is written at the close", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      yield* d(4).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      const runDir = yield* Effect.zipLeft(Dfk.runDir, d(4)).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" }))
      )
      assert.strictEqual(c.n, 1)
      assert.deepStrictEqual(checkpointEntries(runDir).map((e) => [e.input, e.result]), [[4, 8]])
    }))

  it.scoped("periodic: writes every period on Schedule.spaced, under the TestClock", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const root = yield* tmpDir
      const runDir = path.join(root, "000")
      const passLines = () =>
        logs.lines.filter((l) =>
          l.message.startsWith("Done checkpointing") || l.message === "No tasks checkpointed in this pass"
        ).map((l) => l.message)
      const passes = (n: number) => eventually(() => passLines().length >= n, `${n} passes`)
      const counts = yield* Effect.gen(function*() {
        const counts: Array<number> = []
        const read = () =>
          exists(path.join(runDir, "checkpoint", "tasks.jsonl")) ? checkpointEntries(runDir).length : -1
        yield* double(1)
        yield* double(2)
        yield* TestClock.adjust("1999 millis")
        counts.push(read()) // no pass before the first period
        yield* TestClock.adjust("1 millis")
        yield* passes(1)
        counts.push(read())
        yield* double(3)
        yield* TestClock.adjust("1 second")
        counts.push(read())
        yield* TestClock.adjust("1 second")
        yield* passes(2)
        counts.push(read())
        yield* TestClock.adjust("2 seconds")
        yield* passes(3)
        counts.push(read())
        return counts
      }).pipe(
        Effect.provide(kernelLayer({ runDir: root, checkpointMode: "periodic", checkpointPeriod: "00:00:02" })),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(counts, [-1, 2, 2, 3, 3])
      assert.deepStrictEqual(passLines(), [
        "Done checkpointing 2 tasks",
        "Done checkpointing 1 tasks",
        "No tasks checkpointed in this pass",
        "No tasks checkpointed in this pass" // the pass at scope close
      ])
    }))

  it.scoped("periodic: a Duration, a Duration string and a number of millis are periods (TestClock)", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      const periods: Array<Duration.DurationInput> = [Duration.seconds(5), "5 seconds", 5000]
      for (const [i, checkpointPeriod] of periods.entries()) {
        const runDir = path.join(root, String(i), "000")
        const count = () => exists(tasksFile(runDir)) ? checkpointEntries(runDir).length : 0
        yield* Effect.gen(function*() {
          yield* d(i)
          yield* TestClock.adjust("5 seconds")
          yield* eventually(() => count() === 1, `a periodic write with ${String(checkpointPeriod)}`)
        }).pipe(
          Effect.provide(
            kernel(
              { runDir: path.join(root, String(i)), checkpointMode: "periodic", checkpointPeriod },
              CheckpointFiles.none
            )
          )
        )
        assert.strictEqual(count(), 1)
      }
    }))

  it.scoped("a missing or malformed period is a ConfigurationError, in any mode, and no run dir is made", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const fail = (config: DfkConfig) =>
        Effect.flip(Dfk.runDir.pipe(Effect.provide(kernel({ runDir: root, ...config }))))
      const missing = yield* fail({ checkpointMode: "periodic" })
      assert.instanceOf(missing, ConfigurationError)
      const malformed = [
        "1:2",
        "00:60:00",
        "00:00:60",
        "aa:bb:cc",
        "12",
        "-00:00:01",
        "00:00:00",
        "1::2",
        "00:00:1.5",
        ""
      ]
      for (const checkpointPeriod of malformed) {
        const e = yield* fail({ checkpointMode: "periodic", checkpointPeriod })
        assert.strictEqual(e._tag, "ConfigurationError", `accepted ${JSON.stringify(checkpointPeriod)}`)
      }
      const outsidePeriodic = yield* fail({ checkpointMode: "manual", checkpointPeriod: "xx:yy" })
      assert.strictEqual(outsidePeriodic._tag, "ConfigurationError")
      assert.deepStrictEqual(fs.readdirSync(root), [])
    }))

  it.scoped("dfk_exit: writes on success, on failure and on interruption", () =>
    Effect.gen(function*() {
      const ok = yield* withKernel(
        { checkpointMode: "dfk_exit" },
        Effect.gen(function*() {
          yield* double(1)
          yield* double(2)
          return exists(path.join(yield* Dfk.runDir, "checkpoint"))
        })
      )
      assert.isFalse(ok.value)
      assert.strictEqual(checkpointEntries(ok.runDir).length, 2)

      const root = yield* tmpDir
      const failed = yield* Effect.gen(function*() {
        yield* double(3)
        return yield* Effect.fail("workflow failed" as const)
      }).pipe(Effect.provide(kernelLayer({ runDir: root, checkpointMode: "dfk_exit" })), Effect.exit)
      assert.isTrue(Exit.isFailure(failed))
      assert.deepStrictEqual(checkpointEntries(path.join(root, "000")).map((e) => e.result), [6])

      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.gen(function*() {
        yield* double(4)
        yield* Deferred.succeed(started, undefined)
        return yield* Effect.never
      }).pipe(Effect.provide(kernelLayer({ runDir: root, checkpointMode: "dfk_exit" })), Effect.fork)
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(checkpointEntries(path.join(root, "001")).map((e) => e.result), [8])
    }))

  it.scoped("dfk_exit: entries stay pending until the scope's finalizer, which also runs after a defect", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      const config = { runDir: root, checkpointMode: "dfk_exit" } as const
      const ok = yield* Effect.gen(function*() {
        yield* d(1)
        yield* d(2)
        return { before: exists(tasksFile(yield* Dfk.runDir)), s: yield* Dfk.stats }
      }).pipe(Effect.provide(kernel(config, CheckpointFiles.none)))
      assert.isFalse(ok.before)
      assert.deepStrictEqual(ok.s, stats(2, 0, 2, 0, 2))
      assert.deepStrictEqual(checkpointEntries(path.join(root, "000")).map((e) => e.result), [2, 4])
      const died = yield* Effect.exit(Effect.zipRight(d(5), Effect.die("defect"))).pipe(
        Effect.provide(kernel(config, CheckpointFiles.none))
      )
      assert.isTrue(Exit.isFailure(died) && Cause.isDie(died.cause))
      assert.deepStrictEqual(checkpointEntries(path.join(root, "001")).map((e) => e.result), [10])
    }))

  it.scoped("manual: nothing is written until Dfk.checkpoint, which returns the checkpoint dir", () =>
    Effect.gen(function*() {
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.gen(function*() {
          const runDir = yield* Dfk.runDir
          yield* double(1)
          const before = exists(path.join(runDir, "checkpoint", "tasks.jsonl"))
          const dir = yield* Dfk.checkpoint
          const after = checkpointEntries(runDir).length
          yield* double(2)
          yield* double(1)
          yield* Dfk.checkpoint
          const incremental = checkpointEntries(runDir).length
          return { before, dir, after, incremental, runDir }
        })
      )
      assert.isFalse(value.before)
      assert.strictEqual(value.dir, path.join(runDir, "checkpoint"))
      assert.strictEqual(value.after, 1)
      assert.strictEqual(value.incremental, 2)
    }))

  it.scoped("manual: each Dfk.checkpoint appends only what is new; what is pending at close is written then", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "manual" },
        Effect.gen(function*() {
          const file = tasksFile(yield* Dfk.runDir)
          yield* d(1)
          yield* d(2)
          const dirs = [yield* Dfk.checkpoint]
          const first = fs.readFileSync(file, "utf8")
          const s1 = yield* Dfk.stats
          yield* d(3)
          yield* d(1)
          dirs.push(yield* Dfk.checkpoint)
          const second = fs.readFileSync(file, "utf8")
          dirs.push(yield* Dfk.checkpoint)
          const third = fs.readFileSync(file, "utf8")
          yield* d(4)
          return { dirs, first, second, third, s1, s: yield* Dfk.stats }
        })
      )
      assert.deepStrictEqual(value.dirs, [1, 2, 3].map(() => path.join(runDir, "checkpoint")))
      assert.strictEqual(value.first.split("\n").length - 1, 2)
      assert.isTrue(value.second.startsWith(value.first), "appended, not rewritten")
      assert.strictEqual(value.second.split("\n").length - 1, 3)
      assert.strictEqual(value.third, value.second)
      assert.deepStrictEqual(value.s1, stats(2, 0, 2, 2, 0))
      assert.deepStrictEqual(value.s, stats(5, 1, 4, 3, 1))
      assert.deepStrictEqual(
        checkpointEntries(runDir).map((e) => e.input),
        [1, 2, 3, 4],
        "the pending entry is written at close"
      )
    }))

  it.scoped("Dfk.checkpoint works in every mode and with none, and nothing is written twice at close", () =>
    Effect.gen(function*() {
      for (const mode of [...modes, undefined]) {
        const d = makeDouble({ n: 0 })
        const config = { checkpointPeriod: "10 hours", ...(mode === undefined ? {} : { checkpointMode: mode }) }
        const { value, runDir } = yield* withKernel(
          config,
          Effect.gen(function*() {
            yield* d(1)
            const dir = yield* Dfk.checkpoint
            return { dir, lines: checkpointEntries(path.dirname(dir)).length, s: yield* Dfk.stats }
          })
        )
        assert.strictEqual(value.dir, path.join(runDir, "checkpoint"), String(mode))
        assert.strictEqual(value.lines, 1, String(mode))
        assert.deepStrictEqual(value.s, stats(1, 0, 1, 1, 0), String(mode))
        assert.strictEqual(checkpointEntries(runDir).length, 1, `${mode}: no duplicate at close`)
      }
    }))

  it.scoped("no mode: nothing is written unless Dfk.checkpoint is called", () =>
    Effect.gen(function*() {
      const { runDir } = yield* withKernel({}, double(1))
      assert.isFalse(exists(path.join(runDir, "checkpoint")))
      const second = yield* withKernel({}, Effect.zipRight(double(1), Dfk.checkpoint))
      assert.strictEqual(checkpointEntries(second.runDir).length, 1)
    }))

  it.scoped("no mode: each Dfk.checkpoint writes every result not yet written; nothing is written at close", () =>
    Effect.gen(function*() {
      const d = makeDouble({ n: 0 })
      const { value, runDir } = yield* withKernel(
        {},
        Effect.gen(function*() {
          yield* d(1)
          yield* d(2)
          yield* Dfk.checkpoint
          yield* d(3)
          yield* Dfk.checkpoint
          yield* d(4)
          return yield* Dfk.stats
        })
      )
      assert.deepStrictEqual(value, stats(4, 0, 4, 3, 1))
      assert.deepStrictEqual(checkpointEntries(runDir).map((e) => e.input), [1, 2, 3])
    }))

  it.scoped("every mode writes what is pending when the scope closes", () =>
    Effect.gen(function*() {
      for (const mode of ["manual", "periodic", "dfk_exit", "task_exit"] as const) {
        const { runDir } = yield* withKernel(
          { checkpointMode: mode, checkpointPeriod: "1 hour" },
          Effect.zipRight(double(1), double(2))
        )
        assert.strictEqual(checkpointEntries(runDir).length, 2, mode)
      }
    }))

  it.scoped("an empty pass still creates tasks.jsonl and logs it", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const { value } = yield* withKernel({ checkpointMode: "manual" }, Dfk.checkpoint).pipe(Effect.provide(logs.layer))
      assert.strictEqual(fs.readFileSync(path.join(value, "tasks.jsonl"), "utf8"), "")
      assert.isTrue(logs.lines.some((l) => l.message === "No tasks checkpointed in this pass"))
    }))

  it.scoped("an empty pass's tasks.jsonl can be loaded and is listed by getAllCheckpoints", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const dir = yield* Dfk.checkpoint.pipe(Effect.provide(kernel({ runDir: root }, CheckpointFiles.none)))
      assert.strictEqual(fs.readFileSync(path.join(dir, "tasks.jsonl"), "utf8"), "")
      const loaded = yield* Effect.either(
        Dfk.runDir.pipe(Effect.provide(kernel({ runDir: root }, CheckpointFiles.layer([dir]))))
      )
      assert.strictEqual(loaded._tag, "Right")
      assert.deepStrictEqual(yield* getAllCheckpoints(root).pipe(Effect.provide(platform)), [dir])
    }))

  it.scoped("manual and dfk_exit passes log `Done checkpointing N tasks` / `No tasks checkpointed in this pass`", () =>
    Effect.gen(function*() {
      const d = makeDouble({ n: 0 })
      const root = yield* tmpDir
      const manual = captureLogs()
      yield* Effect.gen(function*() {
        yield* d(1)
        yield* d(2)
        yield* Dfk.checkpoint
        yield* Dfk.checkpoint
        yield* d(3)
      }).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "manual" }, CheckpointFiles.none)),
        Effect.provide(manual.layer)
      )
      const passes = (logs: ReturnType<typeof captureLogs>) =>
        logs.lines.map((l) => l.message).filter((m) =>
          m.startsWith("Done checkpointing") || m.startsWith("No tasks checkpointed")
        )
      assert.deepStrictEqual(passes(manual), [
        "Done checkpointing 2 tasks",
        "No tasks checkpointed in this pass",
        "Done checkpointing 1 tasks" // the pass at scope close
      ])
      const dfkExit = captureLogs()
      yield* d(9).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "dfk_exit" }, CheckpointFiles.none)),
        Effect.provide(dfkExit.layer)
      )
      assert.deepStrictEqual(passes(dfkExit), ["Done checkpointing 1 tasks"])
    }))

  it.scoped("task_exit: pass lines are debug level (a line per task would flood the console); one info summary at the close", () =>
    Effect.gen(function*() {
      const atInfo = captureLogs()
      yield* withKernel({ checkpointMode: "task_exit" }, Effect.forEach([1, 2], double)).pipe(
        Effect.provide(atInfo.layer)
      )
      assert.deepStrictEqual(atInfo.lines.filter((l) => l.level !== "DEBUG"), [
        { level: "INFO", message: "Checkpointed 2 tasks in this run (0 from checkpoint, 0 failed, not checkpointed)" }
      ])
      const atDebug = captureLogs()
      yield* withKernel({ checkpointMode: "task_exit" }, Effect.forEach([1, 2], double)).pipe(
        Effect.provide(atDebug.layer),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      const passes = atDebug.lines.filter((l) =>
        l.message.startsWith("Done checkpointing") || l.message === "No tasks checkpointed in this pass"
      )
      assert.deepStrictEqual(passes, [
        { level: "DEBUG", message: "Done checkpointing 1 tasks" },
        { level: "DEBUG", message: "Done checkpointing 1 tasks" },
        { level: "DEBUG", message: "No tasks checkpointed in this pass" } // the pass at scope close
      ])
    }))

  it.scoped("other modes: each pass logs Done checkpointing N tasks at info level, as Parsl does, then the summary", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      yield* withKernel({ checkpointMode: "manual" }, Effect.zipRight(Effect.forEach([1, 2], double), Dfk.checkpoint))
        .pipe(
          Effect.provide(logs.layer)
        )
      assert.deepStrictEqual(logs.lines, [
        { level: "INFO", message: "Done checkpointing 2 tasks" },
        { level: "INFO", message: "No tasks checkpointed in this pass" },
        { level: "INFO", message: "Checkpointed 2 tasks in this run (0 from checkpoint, 0 failed, not checkpointed)" }
      ])
    }))
})

// ---------------------------------------------------------------------------------------------
// §3 carried forward, loading, default resume
// ---------------------------------------------------------------------------------------------

describe("§3 carried forward", () => {
  it.scoped("a result served from a loaded checkpoint is written again, same hash, app and version; last() alone then suffices", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      const config = { runDir: root, checkpointMode: "dfk_exit" } as const
      const last = CheckpointFiles.last(root)
      const r0 = yield* Effect.zipRight(Effect.all([d(1), d(2)]), Dfk.runDir).pipe(Effect.provide(kernel(config, last)))
      const r1 = yield* Effect.gen(function*() {
        const v = yield* d(1)
        yield* d(3)
        return { v, runDir: yield* Dfk.runDir, s: yield* Dfk.stats }
      }).pipe(Effect.provide(kernel(config, last)))
      assert.strictEqual(r1.v, 2)
      assert.strictEqual(c.n, 3)
      assert.deepStrictEqual(r1.s, stats(2, 1, 1, 0, 2))
      const [old] = checkpointEntries(r0)
      const carried = checkpointEntries(r1.runDir)
      assert.deepStrictEqual(carried.map((e) => [e.input, e.result]), [[1, 2], [3, 6]])
      assert.deepInclude(carried[0]!, { hash: old!.hash, app: "double", version: null })
      const r2 = yield* Effect.all([d(1), d(3)]).pipe(Effect.provide(kernel(config, last)))
      assert.deepStrictEqual(r2, [2, 6])
      assert.strictEqual(c.n, 3)
    }))
})

describe("§3 loading", () => {
  it.scoped("all entries of all listed dirs load, in list order; for a repeated key the last entry read wins", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const a = path.join(root, "a")
      const b = path.join(root, "b")
      writeCheckpoint(a, [
        entryLine("double", null, 1, 100),
        entryLine("double", null, 2, 200),
        entryLine("double", null, 1, 111)
      ])
      writeCheckpoint(b, [entryLine("double", null, 1, 300), entryLine("double", null, 3, 600)])
      const c = { n: 0 }
      const d = makeDouble(c)
      const call = (dirs: ReadonlyArray<string>) =>
        Effect.all([d(1), d(2), d(3)]).pipe(
          Effect.provide(kernel({ runDir: path.join(root, "r") }, CheckpointFiles.layer(dirs)))
        )
      assert.deepStrictEqual(yield* call([a, b]), [300, 200, 600])
      assert.deepStrictEqual(yield* call([b, a]), [111, 200, 600])
      assert.deepStrictEqual(yield* call([a]), [111, 200, 6])
      assert.strictEqual(c.n, 1)
    }))

  it.scoped("a listed dir that does not exist fails the layer with BadCheckpoint naming the path", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const missing = path.join(root, "nope", "checkpoint")
      const e = yield* loadError(root, [missing])
      assert.instanceOf(e, BadCheckpoint)
      assert.include((e as BadCheckpoint).path, missing)
      assert.isString((e as BadCheckpoint).reason)
    }))

  const notCheckpoints: Array<[string, string | Uint8Array, number]> = [
    ["plain text lines", "hello\nworld\n", 1],
    ["a JSON object that is not an entry", "{\"foo\":1}\n", 1],
    ["an array", "[1,2]\n", 1],
    ["an entry with v:2", entryLine("double", null, 1, 2).replace("\"v\":1", "\"v\":2") + "\n", 1],
    [
      "an entry without hash",
      JSON.stringify({ v: 1, app: "double", version: null, input: 1, result: 2, time: "t" }) + "\n",
      1
    ],
    [
      "a bad line in the middle",
      entryLine("double", null, 1, 2) + "\n{oops\n" + entryLine("double", null, 2, 4) + "\n",
      2
    ],
    ["a bad last line that is terminated", entryLine("double", null, 1, 2) + "\n{\"v\":1,\"hash\n", 2],
    ["binary bytes with a newline", new Uint8Array([0x80, 0x00, 0xff, 0x10, 0x0a, 0x01, 0x02]), 1]
  ]
  for (const [label, content, line] of notCheckpoints) {
    it.scoped(`a file that is not a checkpoint fails with BadCheckpoint (path, line, reason): ${label}`, () =>
      Effect.gen(function*() {
        const root = yield* tmpDir
        const dir = path.join(root, "cp")
        fs.mkdirSync(dir)
        fs.writeFileSync(path.join(dir, "tasks.jsonl"), content)
        const e = yield* loadError(root, [dir], { checkpointMode: "manual" })
        assert.instanceOf(e, BadCheckpoint)
        const bc = e as BadCheckpoint
        assert.include(bc.path, dir)
        assert.strictEqual(bc.line, line)
        assert.isAbove(bc.reason.length, 0)
      }))
  }

  it.scoped("an entry that no longer decodes is a miss with a warning; the fresh result is written", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const dir = path.join(root, "cp")
      writeCheckpoint(dir, [entryLine("double", null, 1, "not a number"), entryLine("double", null, 2, 4)])
      const logs = captureLogs()
      const c = { n: 0 }
      const d = makeDouble(c)
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.zip(Effect.all([d(1), d(2)]), Dfk.stats),
        CheckpointFiles.layer([dir])
      ).pipe(Effect.provide(logs.layer))
      // d(1) ran (its entry is written before it returns); d(2)'s carried-forward entry is
      // not waited for: pending until a pass or the close.
      assert.deepStrictEqual(value, [[2, 4], stats(2, 1, 1, 1, 1)])
      assert.strictEqual(c.n, 1)
      assert.isTrue(logs.lines.some((l) => l.level === "WARN"))
      assert.deepStrictEqual(checkpointEntries(runDir).map((e) => [e.input, e.result]), [[1, 2], [2, 4]])
    }))

  it.scoped("entries are decoded with the output schema (a transformation) when the app is called", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const app = App.make(
        {
          name: "dated",
          input: Schema.Number,
          output: Schema.Struct({ at: Schema.Date, n: Schema.NumberFromString }),
          cache: true
        },
        (x) => Effect.sync(() => (c.n++, { at: new Date(x), n: x }))
      )
      const config = { runDir: root, checkpointMode: "task_exit" } as const
      const r0 = yield* Effect.zipRight(app(1000), Dfk.runDir).pipe(Effect.provide(kernel(config)))
      assert.deepStrictEqual(checkpointEntries(r0)[0]!.result, { at: new Date(1000).toISOString(), n: "1000" })
      const v = yield* app(1000).pipe(Effect.provide(kernel(config)))
      assert.instanceOf(v.at, Date)
      assert.strictEqual(v.at.getTime(), 1000)
      assert.strictEqual(v.n, 1000)
      assert.strictEqual(c.n, 1)
    }))
})

describe("§3 default resume", () => {
  it.scoped("in every mode with no CheckpointFiles, every checkpoint under runDir loads; other entries are ignored", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const d = makeDouble(c)
      yield* d(1).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" }, CheckpointFiles.none)))
      yield* d(2).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "manual" }, CheckpointFiles.none)))
      fs.mkdirSync(path.join(root, "notes"))
      fs.mkdirSync(path.join(root, "007")) // a run dir without a checkpoint
      assert.strictEqual(c.n, 2)
      for (const mode of modes) {
        const v = yield* Effect.all([d(1), d(2)]).pipe(
          Effect.provide(kernel({ runDir: root, checkpointMode: mode, checkpointPeriod: "1 hour" }))
        )
        assert.deepStrictEqual(v, [2, 4])
        assert.strictEqual(c.n, 2, mode)
      }
    }))

  it.scoped("run dirs load in numeric order, so the numerically newest entry wins (9 before 010)", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      writeCheckpoint(path.join(root, "010", "checkpoint"), [entryLine("double", null, 1, 1010)])
      writeCheckpoint(path.join(root, "9", "checkpoint"), [entryLine("double", null, 1, 99)])
      writeCheckpoint(path.join(root, "000", "checkpoint"), [entryLine("double", null, 1, 0)])
      writeCheckpoint(path.join(root, "notnumeric", "checkpoint"), [entryLine("double", null, 1, -1)])
      const [value, runDir] = yield* Effect.zip(makeDouble({ n: 0 })(1), Dfk.runDir).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "manual" }))
      )
      assert.strictEqual(value, 1010)
      assert.strictEqual(runDir, path.join(root, "011"))
      const all = yield* getAllCheckpoints(root).pipe(Effect.provide(platform))
      assert.deepStrictEqual(all, ["000", "9", "010", "011"].map((n) => path.join(root, n, "checkpoint")))
    }))

  it.scoped("CheckpointFiles.all() and .last() load with no mode set", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const d = makeDouble(c)
      yield* d(1).pipe(Effect.provide(kernel({ runDir: root, checkpointMode: "task_exit" })))
      yield* d(1).pipe(Effect.provide(kernel({ runDir: root }, CheckpointFiles.all(root))))
      yield* d(1).pipe(Effect.provide(kernel({ runDir: root }, CheckpointFiles.last(root))))
      assert.strictEqual(c.n, 1)
    }))
})

// ---------------------------------------------------------------------------------------------
// §3 run dirs and checkpoint listing
// ---------------------------------------------------------------------------------------------

describe("§3 run dirs", () => {
  it.scoped("the next run dir follows the highest numeric name; names that are not plain numbers are ignored", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const next = () => Dfk.runDir.pipe(Effect.provide(kernel({ runDir: root })))
      assert.strictEqual(yield* next(), path.join(root, "000"))
      for (const n of ["abc", "1a", "x999", "5000x", "1e5", "-7", "0x10"]) fs.mkdirSync(path.join(root, n))
      fs.writeFileSync(path.join(root, "zz"), "")
      assert.strictEqual(yield* next(), path.join(root, "001"))
      fs.mkdirSync(path.join(root, "010"))
      assert.strictEqual(yield* next(), path.join(root, "011"))
    }))

  it.scoped("a runDir that does not exist is created", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const deep = path.join(root, "a", "b", "c")
      assert.strictEqual(yield* Dfk.runDir.pipe(Effect.provide(kernel({ runDir: deep }))), path.join(deep, "000"))
      assert.isTrue(fs.statSync(path.join(deep, "000")).isDirectory())
    }))

  it.scoped("getAll/LastCheckpoint list only dirs holding a tasks.jsonl file; CheckpointFiles.all/.last list the same", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const make = (name: string, file: "file" | "dir" | "none") => {
        const cp = path.join(root, name, "checkpoint")
        fs.mkdirSync(cp, { recursive: true })
        if (file === "file") fs.writeFileSync(path.join(cp, "tasks.jsonl"), "")
        if (file === "dir") fs.mkdirSync(path.join(cp, "tasks.jsonl"))
      }
      make("000", "file")
      make("001", "none")
      make("002", "dir")
      make("1000", "file")
      make("999", "file")
      make("010", "file")
      make("abc", "file")
      make("12x", "file")
      fs.mkdirSync(path.join(root, "005"))
      const run = <A>(e: Effect.Effect<A, never, FileSystem.FileSystem | PlatformPath.Path>) =>
        Effect.provide(e, platform)
      const all = yield* run(getAllCheckpoints(root))
      const last = yield* run(getLastCheckpoint(root))
      assert.deepStrictEqual(all, ["000", "010", "999", "1000"].map((n) => path.join(root, n, "checkpoint")))
      assert.deepStrictEqual(last, [path.join(root, "1000", "checkpoint")])
      assert.deepStrictEqual(yield* run(getAllCheckpoints(path.join(root, "abc"))), [])
      assert.deepStrictEqual(yield* run(getLastCheckpoint(path.join(root, "abc"))), [])
      assert.deepStrictEqual([...yield* run(Effect.provide(CheckpointFiles, CheckpointFiles.all(root)))], all)
      assert.deepStrictEqual([...yield* run(Effect.provide(CheckpointFiles, CheckpointFiles.last(root)))], last)
    }))

  it.scoped("the default runDir is \"runinfo\", relative to the working directory, for Dfk.layer and the listings", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const cwd = process.cwd()
      yield* Effect.acquireRelease(Effect.sync(() => process.chdir(root)), () => Effect.sync(() => process.chdir(cwd)))
      const c = { n: 0 }
      const d = makeDouble(c)
      const runDir = yield* Effect.zipRight(d(1), Dfk.runDir).pipe(
        Effect.provide(Dfk.layer({ checkpointMode: "task_exit" })),
        Effect.provide(platform)
      )
      assert.strictEqual(path.normalize(runDir), path.join("runinfo", "000"))
      assert.isTrue(exists(path.join(root, "runinfo", "000", "checkpoint", "tasks.jsonl")))
      const expected = [path.join("runinfo", "000", "checkpoint")]
      const all = yield* getAllCheckpoints().pipe(Effect.provide(platform))
      const last = yield* getLastCheckpoint().pipe(Effect.provide(platform))
      assert.deepStrictEqual(all.map((p) => path.normalize(p)), expected)
      assert.deepStrictEqual(last.map((p) => path.normalize(p)), expected)
      yield* d(1).pipe(Effect.provide(Dfk.layer({})), Effect.provide(CheckpointFiles.last()), Effect.provide(platform))
      assert.strictEqual(c.n, 1)
    }))
})

describe("§3 names are unique per kernel", () => {
  it.scoped("§3 names are unique per kernel: a second app with the same name and version is refused, not served the first's entries", () =>
    Effect.gen(function*() {
      const a = App.make(
        { name: "same", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.succeed(x + 1)
      )
      const b = App.make(
        { name: "same", input: Schema.Number, output: Schema.Number, cache: true },
        (x) => Effect.succeed(x + 1000)
      )
      const { value } = yield* withKernel({}, Effect.all([a(1), Effect.flip(b(1)), a(1)]))
      assert.strictEqual(value[0], 2)
      assert.strictEqual(value[1]._tag, "AppCacheError")
      assert.strictEqual(value[2], 2)
    }))
})
