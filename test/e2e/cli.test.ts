/**
 * The `dfk` command, run as a child process on real run dirs written by the library: every
 * command's output, exit statuses 0/1/2, `--json` output, explain's differing key and
 * value, compact's result loaded back by the library, verify's line numbers.
 *
 * Also: `repair`, the one integrity rule (`Memo.checkEntry`) in verify and compact, control
 * characters in stored text escaped by every command, the README's command table against
 * `--help`, and help without ANSI colours when piped.
 *
 * Most calls run `cli/main.ts` bundled once with esbuild (what tsx uses underneath): under
 * tsx every start costs about 3 s of CPU (its loader hooks each of the ~1000 modules), the
 * bundle about 0.3 s. A few calls go through `tsx cli/main.ts`, as `npm run dfk` does.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, CheckpointStore, Dfk, getAllCheckpoints, Memo } from "effect-dfk"
import type { CheckpointEntry, DfkConfig } from "effect-dfk"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { build } from "esbuild"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { colorAllowed, plainConsole } from "../../cli/common.ts"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const tsx = path.join(repo, "node_modules", ".bin", "tsx")
const main = path.join(repo, "cli", "main.ts")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const spawn = (command: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<Run> =>
  new Promise((resolve) => {
    const options = { cwd: repo, encoding: "utf8" as const, ...(env === undefined ? {} : { env }) }
    execFile(command, [...args], options, (error, stdout, stderr) => {
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

const runKernel = <A, E>(
  config: DfkConfig,
  effect: Effect.Effect<A, E, Dfk>,
  files: Layer.Layer<CheckpointFiles, never, NodeContext.NodeContext> = CheckpointFiles.none
) =>
  Effect.runPromise(
    effect.pipe(
      Effect.provide(
        Dfk.layer(config).pipe(Layer.provide(Layer.provide(files, NodeContext.layer)), Layer.provide(NodeContext.layer))
      ),
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
  await runKernel(
    { runDir: root, checkpointMode: "task_exit" },
    Effect.all([doubleChanged({ x: 1 }), doubleChanged({ x: 4 })])
  )
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
    assert.deepStrictEqual(JSON.parse(viaRunDir.stdout).map((e: any) => [e.input, e.result]), [[{ x: 1 }, 10], [{
      x: 4
    }, 40]])

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
    const [
      hit,
      changed,
      version,
      versionHit,
      lang,
      missingKey,
      extra,
      ignored,
      unknownApp,
      badJson,
      badDir,
      noApp,
      single
    ] = await dfkAll(calls)

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
        Effect.provide(
          Dfk.layer({ runDir: dir }).pipe(Layer.provide(CheckpointFiles.last(dir)), Layer.provide(NodeContext.layer))
        ),
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
    fs.writeFileSync(
      file0,
      [lines0[0], "{\"v\":1,\"hash\":", lines0[1], JSON.stringify(tampered), lines0[2], ""].join("\n")
    )
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
    assert.include(bad.stdout, `${file0}: 3 entries, 2 corrupt lines (refused by the library)`)

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

  it("invalidate: tombstones for the matching live entries, in the checkpoints holding them; a later run misses", async () => {
    const dir = copyRuns("invalidate")
    const before0 = fs.readFileSync(tasksFile(dir, "000"), "utf8")
    const [dry, none, badDuration, badJson, noApp] = await dfkAll([
      ["invalidate", dir, "--app", "double", "--input", "{\"x\":1}", "--dry-run"],
      ["invalidate", dir, "--app", "double", "--older-than", "1h"],
      ["invalidate", dir, "--app", "double", "--older-than", "soon"],
      ["invalidate", dir, "--app", "double", "--input", "{x:1"],
      ["invalidate", dir, "--input", "{}"]
    ])
    assert.strictEqual(dry.code, 0, dry.stderr)
    assert.include(dry.stdout, "Would invalidate 2 entries in 2 checkpoints (dry run: nothing written)")
    assert.include(dry.stdout, `in ${path.join(dir, "000", "checkpoint")}`)
    assert.include(dry.stdout, `in ${path.join(dir, "001", "checkpoint")}`)
    assert.strictEqual(fs.readFileSync(tasksFile(dir, "000"), "utf8"), before0)
    assert.strictEqual(none.code, 1)
    assert.include(none.stdout, "No live entry of app \"double\"")
    assertUsageError(badDuration, "Invalid --older-than duration \"soon\"")
    assertUsageError(badJson, "Invalid --input JSON")
    assert.strictEqual(noApp.code, 2)

    // x=1 in both runs, by input; then every greet entry of version 2, by version and age.
    const [byInput, byVersion] = [
      await dfk("invalidate", dir, "--app", "double", "--input", "{\"x\":1,\"sleepMs\":7}", "--ignore", "sleepMs"),
      await dfk("invalidate", dir, "--app", "greet", "--version", "2", "--older-than", "0s")
    ]
    assert.strictEqual(byInput.code, 0, byInput.stderr)
    assert.include(byInput.stdout, "Invalidated 2 entries in 2 checkpoints:")
    assert.strictEqual(byVersion.code, 0, byVersion.stderr)
    assert.include(byVersion.stdout, "Invalidated 1 entry in 1 checkpoint:")
    const last = fs.readFileSync(tasksFile(dir, "000"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    const tombstones = last.filter((e) => e.deleted === true)
    assert.deepStrictEqual(tombstones.map((e) => [e.app, e.input]), [["double", { x: 1 }], ["greet", {
      name: "ada",
      lang: "en"
    }]])
    for (const t of tombstones) assert.notProperty(t, "result")
    // Already invalidated: nothing left to match.
    const again = await dfk("invalidate", dir, "--app", "double", "--input", "{\"x\":1}")
    assert.strictEqual(again.code, 1)

    // The other commands read tombstones: verify passes, show marks them, explain says why.
    const [verify, show, showJson, runs, explain] = await dfkAll([
      ["verify", path.join(dir, "000"), path.join(dir, "001"), "--strict"],
      ["show", path.join(dir, "000")],
      ["show", path.join(dir, "000"), "--json"],
      ["runs", dir, "--json"],
      ["explain", dir, "--app", "double", "--input", "{\"x\":1}"]
    ])
    assert.strictEqual(verify.code, 0, verify.stdout + verify.stderr)
    assert.include(show.stdout, "(tombstone)")
    assert.deepStrictEqual(JSON.parse(showJson.stdout).filter((e: any) => e.deleted).length, 2)
    assert.deepStrictEqual(JSON.parse(runs.stdout).map((r: any) => r.entries), [6, 3, 0])
    assert.strictEqual(explain.code, 1)
    assert.include(explain.stdout, `invalidated by a tombstone in ${path.join(dir, "001", "checkpoint")}`)

    // A kernel resuming from every checkpoint misses x=1 and greet, serves the others.
    let bodies = 0
    const counted = App.make(
      { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
      ({ x }) => Effect.sync(() => (bodies++, -x))
    )
    const results = await runKernel(
      { runDir: dir },
      Effect.all([1, 2, 3, 4].map((x) => counted({ x }))),
      CheckpointFiles.all(dir)
    )
    assert.deepStrictEqual(results, [-1, 4, 6, 40])
    assert.strictEqual(bodies, 1)
  })

  it("compact drops invalidated keys; --prune deletes the merged run dirs, refusing recent ones unless --force", async () => {
    const dir = copyRuns("compact-prune")
    const invalidated = await dfk("invalidate", dir, "--app", "greet")
    assert.strictEqual(invalidated.code, 0, invalidated.stderr)
    const refused = await dfk("compact", dir, "--prune")
    assertUsageError(refused, `Refusing to prune ${path.join(dir, "000")}: written to`, 1)
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["000", "001", "002"]) // nothing written or deleted
    const inside = await dfk("compact", dir, "--prune", "--force", "--out", path.join(dir, "001", "merged"))
    assertUsageError(inside, "which --prune deletes")

    const pruned = await dfk("compact", dir, "--prune", "--force")
    assert.strictEqual(pruned.code, 0, pruned.stderr)
    assert.include(pruned.stdout, "Dropped 1 invalidated key (last entry a tombstone)")
    const target = path.join(dir, "003", "checkpoint")
    assert.include(pruned.stdout, `After: 4 entries (one per key, last entry wins) in ${target}`)
    assert.include(pruned.stdout, `Pruned 2 run dirs: ${path.join(dir, "000")}, ${path.join(dir, "001")}`)
    // 002 had no checkpoint: it was not merged, so it stays.
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["002", "003"])
    const entries = await loadEntries(target)
    assert.deepStrictEqual(entries.map((e) => e.app).sort(), ["double", "double", "double", "double"])
    assert.isTrue(entries.every((e) => e.deleted !== true))
  })

  it("dfk explain --json gives what Dfk.explain gives on the same checkpoints: a hit, a miss, a tombstone", async () => {
    const dir = copyRuns("explain-same")
    await dfk("invalidate", dir, "--app", "double", "--input", "{\"x\":2}")
    const asked: Array<[string, Record<string, unknown>]> = [
      ["{\"x\":1}", { x: 1 }],
      ["{\"x\":7}", { x: 7 }],
      ["{\"x\":2}", { x: 2 }],
      ["{\"x\":3,\"sleepMs\":1}", { x: 3, sleepMs: 1 }]
    ]
    const cli = await dfkAll(
      asked.map(([json]) => ["explain", dir, "--app", "double", "--input", json, "--ignore", "sleepMs", "--json"])
    )
    // Default resume (a mode, no CheckpointFiles): the kernel sees every checkpoint under dir.
    const lib = await runKernel(
      { runDir: dir, checkpointMode: "manual" },
      Effect.forEach(asked, ([, input]) => Dfk.explain(double, input as { x: number })),
      Layer.empty as unknown as Layer.Layer<CheckpointFiles>
    )
    assert.deepStrictEqual(cli.map((r) => r.code), [0, 1, 1, 0])
    assert.deepStrictEqual(lib.map((x) => x._tag), ["Hit", "Miss", "Miss", "Hit"])
    cli.forEach((r, i) =>
      assert.deepStrictEqual(JSON.parse(r.stdout), JSON.parse(JSON.stringify(lib[i])), asked[i]![0])
    )
  })

  it("--help on every command; no or an unknown command is exit status 2", async () => {
    const commands = ["runs", "show", "explain", "invalidate", "compact", "verify", "repair", "demo"]
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

  it("verify applies Memo.checkEntry: an entry whose input has no JSON form is corrupt, like a bad hash", async () => {
    const dir = copyRuns("verify-rule")
    const file = tasksFile(dir, "000")
    const lines = fs.readFileSync(file, "utf8").trim().split("\n")
    // 1e400 parses as Infinity: no memo key can be computed for it, so the library never serves it.
    const infinite = lines[0]!.replace(/"input":\{"x":1\}/, "\"input\":{\"x\":1e400}")
    assert.notStrictEqual(infinite, lines[0])
    fs.writeFileSync(file, [lines[1], infinite, lines[2], ""].join("\n"))
    const entry = JSON.parse(infinite)
    assert.isTrue(Option.isSome(Memo.checkEntry(entry)))
    const r = await dfk("verify", path.join(dir, "000"))
    assert.strictEqual(r.code, 1, r.stdout + r.stderr)
    assert.include(r.stdout, `${file}:2: corrupt: ${Option.getOrThrow(Memo.checkEntry(entry))}`)
    assert.include(r.stdout, `${file}: 2 entries, 1 corrupt line (refused by the library)`)
  })

  it("compact drops the entries the library would refuse (Memo.checkEntry) and says how many", async () => {
    const dir = copyRuns("compact-refused")
    const file0 = tasksFile(dir, "000")
    const lines0 = fs.readFileSync(file0, "utf8").trim().split("\n")
    // greet's only entry gets an input its hash is not the key of; run 001 gets a bad entry
    // under the key of double x=2, which shadows the good one of run 000 (the last entry wins).
    const greetLine = JSON.parse(lines0[3]!)
    greetLine.input = { name: "bob", lang: "en" }
    fs.writeFileSync(file0, [...lines0.slice(0, 3), JSON.stringify(greetLine), ""].join("\n"))
    const x2 = JSON.parse(lines0[1]!)
    assert.deepStrictEqual(x2.input, { x: 2 })
    fs.appendFileSync(tasksFile(dir, "001"), JSON.stringify({ ...x2, input: { x: 99 }, result: 198 }) + "\n")

    const r = await dfk("compact", dir)
    assert.strictEqual(r.code, 0, r.stdout + r.stderr)
    assert.include(r.stdout, "Before: 7 entries in 2 checkpoints")
    assert.include(r.stdout, "Dropped 2 entries whose hash is not the memo key of their app, version and input")
    const target = path.join(dir, "003", "checkpoint")
    assert.include(r.stdout, `After: 3 entries (one per key, last entry wins) in ${target}`)
    const entries = await loadEntries(target)
    assert.deepStrictEqual(entries.map((e) => [e.app, e.input]), [["double", { x: 3 }], ["double", { x: 1 }], [
      "double",
      { x: 4 }
    ]])
    for (const e of entries) assert.isTrue(Option.isNone(Memo.checkEntry(e)))

    // The compacted checkpoint serves exactly what the uncompacted ones serve.
    const bodiesRun = async (files: Layer.Layer<CheckpointFiles>) => {
      const ran: Array<number> = []
      const counted = App.make(
        { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
        ({ x }) => Effect.sync(() => (ran.push(x), x * 2))
      )
      await Effect.runPromise(
        Effect.all([1, 2, 3, 4].map((x) => counted({ x }))).pipe(
          Effect.provide(
            Dfk.layer({ runDir: path.join(tmp, "scratch") }).pipe(
              Layer.provide(files),
              Layer.provide(NodeContext.layer)
            )
          ),
          Logger.withMinimumLogLevel(LogLevel.None)
        )
      )
      return ran
    }
    const before = await bodiesRun(
      CheckpointFiles.layer([path.join(dir, "000", "checkpoint"), path.join(dir, "001", "checkpoint")])
    )
    const after = await bodiesRun(CheckpointFiles.layer([target]))
    assert.deepStrictEqual(before, [2])
    assert.deepStrictEqual(after, before)
  })

  it("repair: moves corrupt, bad-hash and torn lines to tasks.jsonl.bad, keeps the good ones; atomic, 0/1/2", async () => {
    const dir = copyRuns("repair")
    const checkpoint = path.join(dir, "000", "checkpoint")
    const file = tasksFile(dir, "000")
    const bad = file + ".bad"
    const lines0 = fs.readFileSync(file, "utf8").trim().split("\n")
    const tampered = JSON.parse(lines0[3]!)
    tampered.input = { name: "bob", lang: "en" }
    const corrupt = "{\"v\":1,\"hash\":"
    const torn = "{\"v\":1,\"hash\":\"ab"
    fs.writeFileSync(file, [lines0[0], corrupt, JSON.stringify(tampered), lines0[1], torn].join("\n"))

    const r = await dfk("repair", path.join(dir, "000"))
    assert.strictEqual(r.code, 0, r.stdout + r.stderr)
    assert.strictEqual(r.stderr, "")
    assert.deepStrictEqual(r.stdout.trim().split("\n"), [
      `${file}:2: corrupt: the line is not valid JSON`,
      `${file}:3: corrupt: the hash is not the memo key of the entry's app, version and input (the line was edited or damaged)`,
      `${file}:5: torn: a torn last line (an interrupted write); loadable: the library skips it with a warning`,
      `Moved 3 lines to ${bad}; 2 entries kept in ${file}`
    ])
    assert.strictEqual(fs.readFileSync(file, "utf8"), [lines0[0], lines0[1], ""].join("\n"))
    assert.strictEqual(fs.readFileSync(bad, "utf8"), [corrupt, JSON.stringify(tampered), torn, ""].join("\n"))
    assert.deepStrictEqual(fs.readdirSync(checkpoint).sort(), ["tasks.jsonl", "tasks.jsonl.bad"])
    const [verified, again] = await dfkAll([["verify", checkpoint], ["repair", file]])
    assert.strictEqual(verified.code, 0, verified.stdout)
    assert.include(verified.stdout, "Checked 1 checkpoint, 2 entries: all good")
    assert.deepStrictEqual((await loadEntries(checkpoint)).map((e) => e.input), [{ x: 1 }, { x: 2 }])
    // Nothing left to repair: nothing changes.
    assert.strictEqual(again.code, 0, again.stderr)
    assert.strictEqual(again.stdout, `Nothing to repair in ${file}: 2 entries, no corrupt or torn lines\n`)
    assert.strictEqual(fs.readFileSync(bad, "utf8").split("\n").length, 4)

    // An existing .bad file is appended to.
    fs.appendFileSync(file, "not json\n" + lines0[2] + "\n")
    const appended = await dfk("repair", checkpoint)
    assert.strictEqual(appended.code, 0, appended.stderr)
    assert.include(appended.stdout, `Moved 1 line to ${bad}; 3 entries kept in ${file}`)
    assert.strictEqual(
      fs.readFileSync(bad, "utf8"),
      [corrupt, JSON.stringify(tampered), torn, "not json", ""].join("\n")
    )
    assert.strictEqual(fs.readFileSync(file, "utf8"), [lines0[0], lines0[1], lines0[2], ""].join("\n"))

    // A good checkpoint: nothing is written, no .bad file.
    const clean = copyRuns("repair-clean")
    const cleanFile = tasksFile(clean, "001")
    const cleanBefore = fs.readFileSync(cleanFile, "utf8")
    // A failed write (the .bad path is a directory): status 1, tasks.jsonl as it was, no temporary file.
    const failing = copyRuns("repair-failing")
    const failingFile = tasksFile(failing, "000")
    fs.appendFileSync(failingFile, "oops\n")
    const failingBefore = fs.readFileSync(failingFile, "utf8")
    fs.mkdirSync(failingFile + ".bad")

    const [good, failed, missing, noCheckpoint, noArg] = await dfkAll([
      ["repair", path.join(clean, "001")],
      ["repair", failingFile],
      ["repair", path.join(tmp, "nope")],
      ["repair", path.join(root, "002")],
      ["repair"]
    ])
    assert.strictEqual(good.code, 0, good.stderr)
    assert.include(good.stdout, "Nothing to repair")
    assert.strictEqual(fs.readFileSync(cleanFile, "utf8"), cleanBefore)
    assert.deepStrictEqual(fs.readdirSync(path.dirname(cleanFile)), ["tasks.jsonl"])

    assertUsageError(failed, `Cannot write ${failingFile}.bad`, 1)
    assert.strictEqual(fs.readFileSync(failingFile, "utf8"), failingBefore)
    assert.deepStrictEqual(fs.readdirSync(path.dirname(failingFile)).sort(), ["tasks.jsonl", "tasks.jsonl.bad"])

    assertUsageError(missing, "does not exist")
    assertUsageError(noCheckpoint, "holds no checkpoint")
    assert.strictEqual(noArg.code, 2)
  })

  it("every command escapes control characters of stored text: one line per row, nothing raw on the terminal", async () => {
    // Newline, ESC [31m, NUL, CSI (U+009B), RLO (U+202E), U+2028, BEL, DEL, an isolate, CR, tab.
    const nasty = "\n\u001b[31m\u0000\u009b\u202e\u2028\u0007\u007f\u2066\r\t"
    const argSafe = nasty.replace("\u0000", "") // a command line cannot hold NUL
    // eslint-disable-next-line no-control-regex -- control characters are what it matches
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
    const line = async (e: Omit<CheckpointEntry, "hash">, hash?: string) =>
      JSON.stringify({
        v: 1,
        hash: hash ?? await Effect.runPromise(Memo.key({ name: e.app, version: e.version, input: e.input })),
        ...e
      })
    const red = {
      app: "red" + argSafe,
      version: "v" + argSafe,
      input: { ["k" + nasty]: "val" + nasty, x: 1 },
      result: { ["r" + nasty]: "res" + nasty },
      time: "2026-01-01T00:00:00.000Z"
    }
    const nul = { app: "nul" + nasty, version: null, input: "in" + nasty, result: "out" + nasty, time: "t" + nasty }
    const forged = { ...red, input: { ["k" + nasty]: "forged" + nasty, x: 2 } }
    // The run dir's own path holds them too (every path printed comes from it).
    const nastyRoot = path.join(tmp, "nasty" + argSafe)
    const cp0 = path.join(nastyRoot, "000", "checkpoint")
    const cp1 = path.join(nastyRoot, "001", "checkpoint")
    fs.mkdirSync(cp0, { recursive: true })
    fs.mkdirSync(cp1, { recursive: true })
    fs.writeFileSync(
      path.join(cp0, "tasks.jsonl"),
      [await line(red), await line(nul), await line(forged, "0".repeat(64)), "{\"v\":1,\"app\":\"\u001b[31m\u009b"]
        .join("\n")
    )
    // Run 001 is not loadable: its reason quotes the stored format version.
    fs.writeFileSync(path.join(cp1, "tasks.jsonl"), JSON.stringify({ v: "\u009b" + nasty, hash: "x" }) + "\n")
    const forCompact = path.join(tmp, "nasty-compact" + argSafe)
    fs.cpSync(nastyRoot, forCompact, { recursive: true })
    fs.rmSync(path.join(forCompact, "001"), { recursive: true })
    const forRepair = path.join(tmp, "nasty-repair" + argSafe)
    fs.cpSync(nastyRoot, forRepair, { recursive: true })

    const calls: Array<Array<string>> = [
      ["runs", nastyRoot],
      ["runs", nastyRoot, "--json"],
      ["show", cp0],
      ["show", cp0, "--json"],
      ["show", cp0, "--app", red.app],
      ["show", cp1],
      ["explain", cp0, "--app", red.app, "--app-version", red.version, "--input", JSON.stringify(red.input)],
      [
        "explain",
        cp0,
        "--app",
        red.app,
        "--version",
        argSafe,
        "--input",
        JSON.stringify({ ["k" + nasty]: "asked" + argSafe, ["new" + argSafe]: 1 }),
        "--ignore",
        "i" + argSafe
      ],
      ["explain", cp0, "--app", "nobody" + argSafe, "--input", "1"],
      ["explain", path.join(tmp, "nope" + argSafe), "--app", "a", "--input", "1"],
      ["compact", forCompact],
      ["verify", nastyRoot],
      ["repair", path.join(forRepair, "000")],
      ["repair", path.join(forRepair, "001")]
    ]
    const results = await dfkAll(calls)
    results.forEach((r, i) => {
      const what = JSON.stringify(calls[i]!.slice(0, 1))
      assert.notMatch(r.stdout, raw, `stdout of ${what}: ${JSON.stringify(r.stdout)}`)
      assert.notMatch(r.stderr, raw, `stderr of ${what}: ${JSON.stringify(r.stderr)}`)
      // Every message on stderr is one line.
      for (const l of r.stderr.split("\n")) if (l !== "") assert.match(l, /^(dfk|warn): /, `stderr of ${what}`)
    })
    const [
      runs,
      runsJson,
      show,
      showJson,
      showApp,
      showBad,
      hit,
      miss,
      noApp,
      badDir,
      compacted,
      verified,
      repaired0,
      repaired1
    ] = results

    // Tables: a header and one line per row.
    assert.strictEqual(runs.code, 0, runs.stderr)
    assert.strictEqual(runs.stdout.trimEnd().split("\n").length, 1 + 2)
    assert.include(runs.stdout, "red\\n\\u001b[31m\\u009b\\u202e\\u2028\\u0007\\u007f\\u2066\\r\\t (2)")
    assert.include(runs.stdout, "unreadable checkpoint: Bad checkpoint")
    assert.include(runs.stdout, "unsupported entry format version \"\\u009b\\n\\u001b[31m\\u0000")
    assert.strictEqual(show.code, 0, show.stderr)
    assert.strictEqual(show.stdout.trimEnd().split("\n").length, 1 + 3 + 1)
    assert.include(show.stdout, "nul\\n\\u001b[31m\\u0000\\u009b")
    assert.include(show.stdout, "t\\n\\u001b[31m\\u0000\\u009b\\u202e\\u2028")
    assert.include(show.stderr, "warn: Skipped a torn last line (line 4)")
    assert.strictEqual(showApp.code, 0, showApp.stderr)
    assert.strictEqual(showApp.stdout.trimEnd().split("\n").length, 1 + 2 + 1)

    // --json: valid JSON holding the stored text exactly.
    assert.strictEqual(runsJson.code, 0, runsJson.stderr)
    const rows = JSON.parse(runsJson.stdout)
    assert.deepStrictEqual(rows[0].apps, { [red.app]: 2, [nul.app]: 1 })
    assert.include(rows[1].error, "unsupported entry format version \"\u009b\\n\\u001b[31m\\u0000\u009b\u202e")
    assert.strictEqual(showJson.code, 0, showJson.stderr)
    assert.deepStrictEqual(
      JSON.parse(showJson.stdout).map((e: any) => [e.app, e.version, e.input, e.result, e.time]),
      [
        red,
        nul,
        forged
      ].map((e) => [e.app, e.version, e.input, e.result, e.time])
    )

    assertUsageError(showBad, "unsupported entry format version", 1)
    assert.strictEqual(hit.code, 0, hit.stdout + hit.stderr)
    assert.include(hit.stdout, "Hit: stored in run 000")
    assert.strictEqual(miss.code, 1, miss.stdout + miss.stderr)
    assert.include(miss.stdout, "input[\"k\\n\\u001b[31m\\u0000\\u009b")
    assert.strictEqual(noApp.code, 1, noApp.stdout + noApp.stderr)
    assert.include(noApp.stdout, "stored apps: red\\n\\u001b[31m")
    assertUsageError(badDir, "does not exist")
    assert.strictEqual(compacted.code, 0, compacted.stdout + compacted.stderr)
    assert.include(compacted.stdout, "Dropped 1 entry whose hash is not the memo key")
    assert.strictEqual(verified.code, 1, verified.stdout + verified.stderr)
    assert.include(verified.stdout, "unsupported entry format version \"\\u009b\\n\\u001b[31m\\u0000")
    assert.strictEqual(repaired0.code, 0, repaired0.stdout + repaired0.stderr)
    assert.include(repaired0.stdout, "Moved 2 lines to")
    assert.strictEqual(repaired1.code, 0, repaired1.stdout + repaired1.stderr)
    assert.include(repaired1.stdout, "unsupported entry format version \"\\u009b\\n")
  })

  it("the README's dfk table names exactly the arguments and options --help shows, optional where help says so", async () => {
    const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8")
    const start = readme.indexOf("## Inspecting checkpoints: the `dfk` command")
    assert.isAtLeast(start, 0)
    const end = readme.indexOf("\n## ", start + 1)
    const rows = readme.slice(start, end === -1 ? undefined : end).split("\n")
      .filter((l) => l.startsWith("| `dfk "))
      .map((l) => /^\| `dfk ([^`]*)`/.exec(l)![1]!)
    const builtIns = new Set(["--help", "--wizard", "--completions", "--log-level", "--version"])
    /** Options and arguments of a usage line, each with whether it is optional (inside brackets). */
    const parseUsage = (usage: string) => {
      const out = new Map<string, boolean>()
      let depth = 0
      for (let i = 0; i < usage.length; i++) {
        const c = usage[i]!
        if (c === "[") depth++
        else if (c === "]") depth--
        else if (c === "<") {
          const close = usage.indexOf(">", i)
          out.set(`<${usage.slice(i + 1, close)}>`, depth > 0)
          i = close
        } else if (usage.startsWith("--", i) && (i === 0 || /[\s[]/.test(usage[i - 1]!))) {
          const name = /^--[a-z][a-z-]*/.exec(usage.slice(i))![0]
          if (!builtIns.has(name)) out.set(name, depth > 0)
          i += name.length - 1
        }
      }
      return out
    }
    const commands = rows.map((r) => r.split(" ")[0]!)
    const [top, ...helps] = await dfkAll([["--help"], ...commands.map((c) => [c, "--help"])])
    // The README lists every command help lists.
    const listed = [...top!.stdout.matchAll(/^ {2}- ([a-z]+) /gm)].map((m) => m[1])
    assert.deepStrictEqual(commands, listed)
    rows.forEach((row, i) => {
      const help = helps[i]!
      assert.strictEqual(help.code, 0, help.stderr)
      const usage = help.stdout.split("\n").find((l) => l.startsWith(`$ ${commands[i]}`))
      assert.isDefined(usage, `a usage line in ${commands[i]} --help`)
      // The README writes an optional argument as [name], help as [<name>].
      const readmeUsage = parseUsage(row.slice(commands[i]!.length).replace(/\[([A-Za-z][A-Za-z ]*)\]/g, "[<$1>]"))
      const helpUsage = parseUsage(usage!.slice(2 + commands[i]!.length))
      assert.deepStrictEqual(
        [...readmeUsage].sort(),
        [...helpUsage].sort(),
        `dfk ${commands[i]}: README \`${row}\`, help \`${usage}\``
      )
    })
  })

  it("help and usage errors carry no ANSI colour escapes when piped or with NO_COLOR set", async () => {
    const [top, explain, unknown, noColor] = await Promise.all([
      dfk("--help"),
      dfk("explain", "--help"),
      dfk("show", "--bogus"),
      spawn(process.execPath, [bundle, "repair", "--help"], { ...process.env, NO_COLOR: "1" })
    ])
    for (const r of [top, explain, unknown, noColor]) {
      assert.notInclude(r.stdout + r.stderr, "\u001b[")
    }
    assert.strictEqual(top.code, 0)
    assert.include(top.stdout, "USAGE")
    assert.include(explain.stdout, "--app-version")
    assert.strictEqual(unknown.code, 2)
    assert.include(noColor.stdout, "$ repair <checkpoint dir>")
  })

  it.effect("colour only on a terminal without NO_COLOR; otherwise the console strips ANSI escapes", () =>
    Effect.gen(function*() {
      assert.isTrue(colorAllowed({ isTTY: true }, {}))
      assert.isTrue(colorAllowed({ isTTY: true }, { NO_COLOR: "" }))
      assert.isFalse(colorAllowed({ isTTY: true }, { NO_COLOR: "1" }))
      assert.isFalse(colorAllowed({ isTTY: false }, {}))
      assert.isFalse(colorAllowed({}, {}))
      const printed: Array<[string, unknown]> = []
      const base = yield* Console.consoleWith(Effect.succeed)
      const recording: Console.Console = {
        ...base,
        log: (...args) => Effect.sync(() => void printed.push(["log", args[0]])),
        error: (...args) => Effect.sync(() => void printed.push(["error", args[0]]))
      }
      const styled = "\u001b[0;1m\u001b[0;37;1mdfk\u001b[0;1m\u001b[0m USAGE"
      yield* Effect.withConsole(
        Effect.all([Console.log(styled), Console.error(styled)]),
        plainConsole(recording, { colorStdout: false, colorStderr: true })
      )
      assert.deepStrictEqual(printed, [["log", "dfk USAGE"], ["error", styled]])
    }))
})

describe("dfk's built-in options (@effect/cli)", () => {
  it("--version prints package.json's version, alone", async () => {
    const version = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")).version
    const r = await dfk("--version")
    assert.strictEqual(r.code, 0, r.stderr)
    // @effect/cli prints the version and a blank line.
    assert.strictEqual(r.stdout.trimEnd(), version)
    assert.strictEqual(r.stderr, "")
  })

  it("--completions prints a script for bash, zsh, fish and sh; bash's completes the commands and their options", async () => {
    const [bash, zsh, fish, sh, bad] = await dfkAll([
      ["--completions", "bash"],
      ["--completions", "zsh"],
      ["--completions", "fish"],
      ["--completions", "sh"],
      ["--completions", "powershell"]
    ])
    for (const r of [bash, zsh, fish, sh]) assert.strictEqual(r!.code, 0, r!.stderr)
    assert.include(bash!.stdout, "complete -F _dfk_bash_completions")
    assert.isTrue(zsh!.stdout.startsWith("#compdef dfk"), zsh!.stdout.slice(0, 80))
    assert.include(fish!.stdout, "complete -c dfk")
    assert.include(sh!.stdout, "_dfk_bash_completions")
    assert.strictEqual(bad!.code, 2)
    // Load the bash script and ask it what `dfk <TAB>` and `dfk show --<TAB>` offer.
    const script = path.join(tmp, "dfk-completion.bash")
    fs.writeFileSync(script, bash!.stdout)
    const probe = [
      `source ${JSON.stringify(script)}`,
      `COMP_WORDS=(dfk ""); COMP_CWORD=1; _dfk_bash_completions dfk "" dfk; echo "\${COMPREPLY[*]}"`,
      `COMP_WORDS=(dfk show --); COMP_CWORD=2; _dfk_bash_completions dfk -- show; echo "\${COMPREPLY[*]}"`
    ].join("\n")
    const completed = await spawn("bash", ["-c", probe])
    assert.strictEqual(completed.code, 0, completed.stderr)
    const [commands, showOptions] = completed.stdout.trim().split("\n").map((l) => l.split(" "))
    assert.includeMembers(commands!, ["runs", "show", "explain", "compact", "verify", "repair", "demo", "--store"])
    assert.includeMembers(showOptions!, ["--app", "--json", "--help"])
    assert.notInclude(showOptions!, "runs")
  })

  it("--log-level sets the minimum level of the log lines on stderr, before or after the command", async () => {
    // A torn last line is skipped with a warning (on stderr; stdout keeps the table).
    const runDir = path.join(tmp, "torn-log-level")
    fs.mkdirSync(path.join(runDir, "000", "checkpoint"), { recursive: true })
    fs.writeFileSync(path.join(runDir, "000", "checkpoint", "tasks.jsonl"), "{\"v\":1,\"hash\":\"")
    const [plain, warning, error, errorAfter, none, bad] = await dfkAll([
      ["runs", runDir],
      ["--log-level", "warning", "runs", runDir],
      ["--log-level", "error", "runs", runDir],
      ["runs", runDir, "--log-level=error"],
      ["--log-level", "none", "runs", runDir],
      ["--log-level", "loud", "runs", runDir]
    ])
    for (const r of [plain, warning, error, errorAfter, none]) {
      assert.strictEqual(r!.code, 0, r!.stderr)
      assert.match(r!.stdout, /^RUN\s+STARTED/)
    }
    assert.match(plain!.stderr, /^warn: Skipped a torn last line \(line 1\) in /)
    assert.strictEqual(warning!.stderr, plain!.stderr)
    for (const r of [error, errorAfter, none]) assert.strictEqual(r!.stderr, "")
    assert.strictEqual(bad!.code, 2)
    assert.strictEqual(bad!.stdout, "")
  })
})
