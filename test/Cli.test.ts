/**
 * The `dfk` command, run as a child process on real run dirs written by the library: every
 * command's output, exit statuses 0/1/2, `--json` output, explain's differing key and
 * value, compact's result loaded back by the library, verify's line numbers.
 *
 * Most calls run `cli/main.ts` bundled once with esbuild (what tsx uses underneath): under
 * tsx every start costs about 3 s of CPU (its loader hooks each of the ~1000 modules), the
 * bundle about 0.3 s. A few calls go through `tsx cli/main.ts`, as `npm run dfk` does.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { build } from "esbuild"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { App, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, Memo } from "effect-dfk"
import type { CheckpointEntry, DfkConfig } from "effect-dfk"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const tsx = path.join(repo, "node_modules", ".bin", "tsx")
const main = path.join(repo, "cli", "main.ts")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const spawn = (command: string, args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve) => {
    execFile(command, [...args], { cwd: repo, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resolve({ code, stdout, stderr })
    })
  })

/** The bundled `cli/main.ts`, built in `beforeAll`. */
let bundle: string

/** Runs `dfk args…` as a child process (the bundle under node). */
const dfk = (...args: ReadonlyArray<string>): Promise<Run> => spawn(process.execPath, [bundle, ...args])

/** Runs `dfk args…` as `npm run dfk` does: `tsx cli/main.ts args…`. */
const dfkTsx = (...args: ReadonlyArray<string>): Promise<Run> => spawn(tsx, [main, ...args])

/** Runs several `dfk` invocations, two at a time (the machine may have only two cores). */
const dfkAll = async (calls: ReadonlyArray<ReadonlyArray<string>>): Promise<Array<Run>> => {
  const out: Array<Run> = new Array(calls.length)
  let next = 0
  const worker = async () => {
    while (next < calls.length) {
      const i = next++
      out[i] = await dfk(...calls[i]!)
    }
  }
  await Promise.all([worker(), worker()])
  return out
}

/** Asserts an error exit: the status, nothing on stdout, one line on stderr containing `text`. */
const assertUsageError = (r: Run, text: string, code = 2) => {
  assert.strictEqual(r.code, code, `exit status of ${JSON.stringify(r)}`)
  const lines = r.stderr.trim().split("\n")
  assert.strictEqual(lines.length, 1, `one line on stderr: ${r.stderr}`)
  assert.include(lines[0], text)
}

const Input = Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) })

/** `double` as first written: x * 2. */
const double = App.make(
  { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
  ({ x }) => Effect.succeed(x * 2)
)
/** The same app (same name, no version bump) after its body changed: x * 10. */
const doubleChanged = App.make(
  { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
  ({ x }) => Effect.succeed(x * 10)
)
const greet = App.make(
  {
    name: "greet",
    input: Schema.Struct({ name: Schema.String, lang: Schema.String }),
    output: Schema.String,
    cache: true,
    version: "2"
  },
  ({ lang, name }) => Effect.succeed(lang === "en" ? `hello ${name}` : `salut ${name}`)
)

const runKernel = <A, E>(config: DfkConfig, effect: Effect.Effect<A, E, Dfk>) =>
  Effect.runPromise(
    effect.pipe(
      Effect.provide(Dfk.layer(config).pipe(Layer.provide(CheckpointFiles.none), Layer.provide(NodeContext.layer))),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  )

/**
 * A run dir with three runs: 000 (4 entries: double x=1,2,3 and greet), 001 (2 entries:
 * double x=1 again, with a different result, and x=4), 002 (no checkpoint).
 */
const makeRuns = async (root: string) => {
  await runKernel(
    { runDir: root, checkpointMode: "task_exit" },
    Effect.all([double({ x: 1 }), double({ x: 2 }), double({ x: 3, sleepMs: 5 }), greet({ name: "ada", lang: "en" })])
  )
  await runKernel({ runDir: root, checkpointMode: "task_exit" }, Effect.all([doubleChanged({ x: 1 }), doubleChanged({ x: 4 })]))
  await runKernel({ runDir: root }, double({ x: 5 }))
}

const loadEntries = (dir: string): Promise<Array<CheckpointEntry>> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* CheckpointStore
      const out: Array<CheckpointEntry> = []
      yield* store.load(dir, (e) => out.push(e))
      return out
    }).pipe(Effect.provide(CheckpointStore.layerFileSystem), Effect.provide(NodeContext.layer))
  )

const tasksFile = (root: string, run: string) => path.join(root, run, "checkpoint", "tasks.jsonl")

let tmp: string
let root: string

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-cli-"))
  root = path.join(tmp, "runinfo")
  const outdir = path.join(tmp, "bundle")
  // Splitting keeps the demo (loaded on demand) in its own module, as it is in the package.
  await build({
    entryPoints: [main],
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outdir,
    logLevel: "warning"
  })
  bundle = path.join(outdir, "main.js")
  await makeRuns(root)
})

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true })
})

/** A private copy of the fixture runs, for commands that write. */
const copyRuns = (name: string): string => {
  const dir = path.join(tmp, name)
  fs.cpSync(root, dir, { recursive: true })
  return dir
}

describe("dfk", () => {
  it("runs: one row per run, as text and as JSON; a bad run dir is exit status 2", async () => {
    const [text, json, missing, none] = await dfkAll([
      ["runs", root],
      ["runs", root, "--json"],
      ["runs", path.join(tmp, "nope")],
      ["runs", tasksFile(root, "000")]
    ])
    assert.strictEqual(text.code, 0, text.stderr)
    const lines = text.stdout.trim().split("\n")
    assert.match(lines[0]!, /^RUN\s+STARTED\s+ENTRIES\s+BYTES\s+APPS$/)
    assert.match(lines[1]!, /^000\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+4\s+\d+ B\s+double \(3\), greet \(1\)$/)
    assert.match(lines[2]!, /^001\s+\S+\s+2\s+\d+ B\s+double \(2\)$/)
    assert.match(lines[3]!, /^002\s+\S+\s+-\s+-\s+\(no checkpoint\)$/)
    assert.strictEqual(lines.length, 4)

    assert.strictEqual(json.code, 0, json.stderr)
    const rows = JSON.parse(json.stdout)
    assert.deepStrictEqual(rows.map((r: any) => [r.id, r.entries, r.apps]), [
      ["000", 4, { double: 3, greet: 1 }],
      ["001", 2, { double: 2 }],
      ["002", 0, {}]
    ])
    assert.strictEqual(rows[0].bytes, fs.statSync(tasksFile(root, "000")).size)
    assert.strictEqual(rows[2].checkpoint, null)
    assert.isFalse(Number.isNaN(Date.parse(rows[0].start)))

    assertUsageError(missing, "does not exist")
    assertUsageError(none, "is not a directory")
  })

  it("show: the entries of a checkpoint, filtered by app, as text and as JSON; bad paths are 2", async () => {
    const [text, byApp, json, viaRunDir, missing, notCheckpoint, noArg] = await dfkAll([
      ["show", path.join(root, "000", "checkpoint")],
      ["show", path.join(root, "000", "checkpoint"), "--app", "greet"],
      ["show", "--json", tasksFile(root, "000")],
      ["show", path.join(root, "001"), "--json"],
      ["show", path.join(tmp, "nope")],
      ["show", path.join(root, "002")],
      ["show"]
    ])
    const stored = fs.readFileSync(tasksFile(root, "000"), "utf8").trim().split("\n").map((l) => JSON.parse(l))

    assert.strictEqual(text.code, 0, text.stderr)
    const lines = text.stdout.trim().split("\n")
    assert.match(lines[0]!, /^HASH\s+APP\s+VERSION\s+INPUT\s+RESULT\s+TIME$/)
    assert.strictEqual(lines.length, 1 + 4 + 1)
    for (const e of stored) {
      const row = lines.find((l) => l.startsWith(e.hash.slice(0, 12)))
      assert.isDefined(row, `a row for ${e.hash}`)
      assert.include(row, JSON.stringify(e.input))
      assert.include(row, JSON.stringify(e.result))
      assert.include(row, e.time)
    }
    assert.include(text.stdout, "4 entries in")

    assert.strictEqual(byApp.code, 0, byApp.stderr)
    assert.include(byApp.stdout, "\"hello ada\"")
    assert.notInclude(byApp.stdout, "double")
    assert.include(byApp.stdout, "1 entry of app greet (4 in all)")

    assert.strictEqual(json.code, 0, json.stderr)
    assert.deepStrictEqual(JSON.parse(json.stdout), stored.map(({ v: _v, ...e }) => e))
    assert.deepStrictEqual(JSON.parse(viaRunDir.stdout).map((e: any) => [e.input, e.result]), [[{ x: 1 }, 10], [{ x: 4 }, 40]])

    assertUsageError(missing, "does not exist")
    assertUsageError(notCheckpoint, "holds no checkpoint")
    assert.strictEqual(noArg.code, 2)
  })

  it("explain: a hit names the run; a miss names the differing version, key and values", async () => {
    const calls: Array<Array<string>> = [
      ["explain", root, "--app", "double", "--input", "{\"x\":1}"],
      ["explain", root, "--app", "double", "--input", "{\"x\":7}"],
      ["explain", root, "--app", "greet", "--input", "{\"name\":\"ada\",\"lang\":\"en\"}", "--version", "3"],
      ["explain", root, "--app", "greet", "--input", "{\"name\":\"ada\",\"lang\":\"en\"}", "--version", "2"],
      ["explain", root, "--app", "greet", "--version=2", "--input", "{\"name\":\"ada\",\"lang\":\"fr\"}"],
      ["explain", root, "--app", "greet", "--version", "2", "--input", "{\"name\":\"ada\"}"],
      ["explain", root, "--app", "double", "--input", "{\"x\":3,\"sleepMs\":9}"],
      ["explain", root, "--app", "double", "--input", "{\"x\":3,\"sleepMs\":9}", "--ignore", "sleepMs"],
      ["explain", root, "--app", "nobody", "--input", "1"],
      ["explain", root, "--app", "double", "--input", "{x:1"],
      ["explain", path.join(tmp, "nope"), "--app", "double", "--input", "{}"],
      ["explain", root, "--input", "{}"],
      ["explain", path.join(root, "000", "checkpoint"), "--app", "double", "--input", "{\"x\":1}"]
    ]
    const [hit, changed, version, versionHit, lang, missingKey, extra, ignored, unknownApp, badJson, badDir, noApp, single] =
      await dfkAll(calls)

    const key = await Effect.runPromise(Memo.key({ name: "double", input: { x: 1 } }))
    assert.strictEqual(hit.code, 0, hit.stdout + hit.stderr)
    assert.include(hit.stdout, `Key ${key}`)
    assert.match(hit.stdout, /Hit: stored in run 001 .*result 10/)
    assert.include(hit.stdout, "also stored in run 000")

    assert.strictEqual(changed.code, 1, changed.stderr)
    assert.include(changed.stdout, "Miss")
    assert.include(changed.stdout, "input.x: changed: stored 4, asked 7")
    assert.notInclude(changed.stdout, "version:")

    assert.strictEqual(version.code, 1)
    assert.include(version.stdout, "version: stored \"2\", asked \"3\"")
    assert.include(version.stdout, "1 difference")
    assert.notInclude(version.stdout, "input.")

    assert.strictEqual(versionHit.code, 0, versionHit.stdout + versionHit.stderr)
    assert.match(versionHit.stdout, /Hit: stored in run 000 .*"hello ada"/)

    assert.strictEqual(lang.code, 1)
    assert.include(lang.stdout, "input.lang: changed: stored \"en\", asked \"fr\"")
    assert.notInclude(lang.stdout, "input.name")

    assert.strictEqual(missingKey.code, 1)
    assert.include(missingKey.stdout, "input.lang: missing from the asked input (stored \"en\")")

    assert.strictEqual(extra.code, 1)
    assert.include(extra.stdout, "input.sleepMs: extra in the asked input (asked 9")
    assert.include(extra.stdout, "pass --ignore sleepMs")
    assert.strictEqual(ignored.code, 0, ignored.stdout)
    assert.match(ignored.stdout, /Hit: stored in run 000 .*result 6/)

    assert.strictEqual(unknownApp.code, 1)
    assert.include(unknownApp.stdout, "No stored entries of app \"nobody\"; stored apps: double (5), greet (1)")

    assertUsageError(badJson, "Invalid --input JSON")
    assertUsageError(badDir, "does not exist")
    assert.strictEqual(noApp.code, 2)
    assert.include(noApp.stderr, "--app")

    // A single checkpoint dir instead of a run dir: only its entries count.
    assert.strictEqual(single.code, 0, single.stdout + single.stderr)
    assert.match(single.stdout, /Hit: stored in run 000 .*result 2,/)
    assert.notInclude(single.stdout, "also stored")
  })

  it("compact: merges every checkpoint into a new run, last entry wins, loadable by the library", async () => {
    const dir = copyRuns("compact")
    const out = path.join(tmp, "compact-out", "merged")
    const [first, explicit] = await dfkAll([["compact", dir], ["compact", dir, "--out", out]])
    assert.strictEqual(first.code, 0, first.stderr)
    assert.include(first.stdout, "Before: 6 entries in 2 checkpoints")
    const target = path.join(dir, "003", "checkpoint")
    assert.include(first.stdout, `After: 5 entries (one per key, last entry wins) in ${target}`)

    // The library picks it up as the last checkpoint, and it holds one entry per key.
    const all = await Effect.runPromise(getAllCheckpoints(dir).pipe(Effect.provide(NodeContext.layer)))
    assert.strictEqual(all[all.length - 1], target)
    const entries = await loadEntries(target)
    assert.strictEqual(entries.length, 5)
    assert.strictEqual(new Set(entries.map((e) => e.hash)).size, 5)
    const x1 = entries.filter((e) => e.app === "double" && (e.input as any).x === 1)
    assert.deepStrictEqual(x1.map((e) => e.result), [10])
    // No temporary directory left behind.
    assert.deepStrictEqual(fs.readdirSync(path.join(dir, "003")), ["checkpoint"])

    // A kernel resuming from it serves every key without running a body.
    let bodies = 0
    const counted = App.make(
      { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
      ({ x }) => Effect.sync(() => (bodies++, -x))
    )
    const results = await Effect.runPromise(
      Effect.all([1, 2, 3, 4].map((x) => counted({ x }))).pipe(
        Effect.provide(Dfk.layer({ runDir: dir }).pipe(Layer.provide(CheckpointFiles.last(dir)), Layer.provide(NodeContext.layer))),
        Effect.provide(NodeContext.layer)
      )
    )
    assert.deepStrictEqual(results, [10, 4, 6, 40])
    assert.strictEqual(bodies, 0)

    // --out: the given dir (the compacted run counts as one more checkpoint: 11 entries before).
    assert.strictEqual(explicit.code, 0, explicit.stderr)
    assert.match(explicit.stdout, /Before: (6|11) entries/)
    assert.include(explicit.stdout, `After: 5 entries`)
    assert.strictEqual((await loadEntries(out)).length, 5)
    assert.deepStrictEqual(fs.readdirSync(path.dirname(out)), ["merged"])

    const [exists, missing, empty] = await dfkAll([
      ["compact", dir, "--out", out],
      ["compact", path.join(tmp, "nope")],
      ["compact", fs.mkdtempSync(path.join(tmp, "empty-"))]
    ])
    assertUsageError(exists, "already exists")
    assertUsageError(missing, "does not exist")
    assert.strictEqual(empty.code, 0)
    assert.include(empty.stdout, "Nothing to compact")
  })

  it("verify: good checkpoints pass; corrupt lines are 1 with file and line; a torn last line is loadable", async () => {
    const dir = copyRuns("verify")
    const file0 = tasksFile(dir, "000")
    const file1 = tasksFile(dir, "001")
    const lines0 = fs.readFileSync(file0, "utf8").split("\n")
    // Line 2 is not JSON; line 4 has a hash that is not the key of its input.
    const tampered = JSON.parse(lines0[3]!)
    tampered.input = { name: "bob", lang: "en" }
    fs.writeFileSync(file0, [lines0[0], "{\"v\":1,\"hash\":", lines0[1], JSON.stringify(tampered), lines0[2], ""].join("\n"))
    // Run 001 ends with a torn line.
    fs.appendFileSync(file1, "{\"v\":1,\"hash\":\"ab")

    const [good, bad, torn, strict, whole, missing, noCheckpoint] = await dfkAll([
      ["verify", path.join(root, "000", "checkpoint"), path.join(root, "001", "checkpoint")],
      ["verify", path.join(dir, "000", "checkpoint")],
      ["verify", path.join(dir, "001", "checkpoint")],
      ["verify", "--strict", path.join(dir, "001", "checkpoint")],
      ["verify", dir],
      ["verify", path.join(root, "000", "checkpoint"), path.join(tmp, "nope")],
      ["verify", path.join(root, "002")]
    ])
    assert.strictEqual(good.code, 0, good.stdout + good.stderr)
    assert.include(good.stdout, "Checked 2 checkpoints, 6 entries: all good")

    assert.strictEqual(bad.code, 1, bad.stdout + bad.stderr)
    assert.include(bad.stdout, `${file0}:2: corrupt: the line is not valid JSON`)
    assert.include(bad.stdout, `${file0}:4: corrupt: the hash is not the memo key`)
    assert.include(bad.stdout, `${file0}: 3 entries, 2 corrupt lines (not loadable)`)

    assert.strictEqual(torn.code, 0, torn.stdout + torn.stderr)
    assert.include(torn.stdout, `${file1}:3: torn:`)
    assert.include(torn.stdout, "loadable")
    assert.strictEqual(strict.code, 1)
    assert.include(strict.stdout, `${file1}:3: torn:`)

    // A run directory means every checkpoint under it.
    assert.strictEqual(whole.code, 1)
    assert.include(whole.stdout, "Checked 2 checkpoints, 5 entries: 2 corrupt lines, 1 torn last line")

    assertUsageError(missing, "does not exist")
    assert.strictEqual(missing.stdout, "")
    assertUsageError(noCheckpoint, "holds no checkpoint")

    // The library agrees: the corrupt checkpoint fails to load, at line 2; show says so (status 1).
    const [show, showTorn] = await dfkAll([["show", path.join(dir, "000")], ["show", path.join(dir, "001"), "--json"]])
    assertUsageError(show, "at line 2", 1)
    assert.strictEqual(showTorn.code, 0)
    assert.strictEqual(JSON.parse(showTorn.stdout).length, 2)
    assert.include(showTorn.stderr, "torn last line")
  })

  it("--help on every command; no or an unknown command is exit status 2", async () => {
    const commands = ["runs", "show", "explain", "compact", "verify", "demo"]
    const results = await dfkAll([["--help"], ...commands.map((c) => [c, "--help"]), [], ["frobnicate"]])
    const [top, ...rest] = results
    assert.strictEqual(top!.code, 0)
    for (const c of commands) assert.include(top!.stdout, c)
    commands.forEach((c, i) => {
      const r = rest[i]!
      assert.strictEqual(r.code, 0, `${c} --help: ${r.stderr}`)
      assert.include(r.stdout, `$ ${c}`)
    })
    assertUsageError(rest[commands.length]!, "Missing command")
    assert.strictEqual(rest[commands.length + 1]!.code, 2)
  })

  it("runs through tsx, as npm run dfk does", async () => {
    const [help, runs, missing] = await Promise.all([
      dfkTsx("--help"),
      dfkTsx("runs", root, "--json"),
      dfkTsx("show", path.join(tmp, "nope"))
    ])
    assert.strictEqual(help.code, 0, help.stderr)
    assert.include(help.stdout, "explain")
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.deepStrictEqual(JSON.parse(runs.stdout).map((r: any) => r.entries), [4, 2, 0])
    assertUsageError(missing, "does not exist")
  })

  it("demo: runs the demo workflow, then resumes it from the checkpoint", async () => {
    const runDir = path.join(tmp, "demo")
    const args = ["demo", "--tasks", "6", "--scale", "0.01", "--progress", "none", "--run-dir", runDir]
    const first = await dfk(...args)
    assert.strictEqual(first.code, 0, first.stdout + first.stderr)
    assert.include(first.stdout, "Done: 6 tasks, 0 results from checkpoint, 6 computed now")
    const [second, bad] = await dfkAll([args, ["demo", "--tasks", "2"]])
    assert.strictEqual(second.code, 0, second.stdout + second.stderr)
    assert.include(second.stdout, "Done: 6 tasks, 6 results from checkpoint, 0 computed now")
    assertUsageError(bad, "--tasks")
  })
})
