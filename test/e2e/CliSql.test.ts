/**
 * `dfk --store`: the `dfk` command, run as a child process, on SQL stores (SQLite and a real
 * PostgreSQL server) written in-process by the library (`Dfk.layer` + `SqlStore.layer`).
 *
 * The same runs are written to the JSON Lines files too, and every command (`runs`, `show`,
 * `explain`, `verify`, `compact`) prints the same thing on both, times aside: same names
 * (`nightly/003/checkpoint`), same rows, same sizes. What only a SQL store has is checked on
 * its own: entries tampered with in the database, errors that name the store, and, on
 * PostgreSQL, that the URL's password never appears in anything `dfk` prints.
 *
 * The command runs as `cli/main.ts` bundled once with esbuild, its packages left out of the
 * bundle (imported from `node_modules`, as in the npm package: the SQL clients are loaded only
 * when `--store` asks for one).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { App, CheckpointFiles, CheckpointStore, Dfk } from "effect-dfk"
import type { CheckpointEntry, DfkConfig } from "effect-dfk"
import { SqlStore } from "effect-dfk/sql"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { build } from "esbuild"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { pgDatabase, sqliteAvailable, sqliteSuite } from "./sqlHarness.ts"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

let bundle = ""
let work = ""

/** Everything any `dfk` call of this file printed, to check that no secret is in it. */
const printed: Array<string> = []

/** Runs `dfk args…` (the bundle, under this runtime) in `cwd`. */
const dfk = (cwd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], {
      cwd,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1", ...env }
    }, (error, stdout, stderr) => {
      printed.push(stdout, stderr)
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })
    })
  })

/** Runs several `dfk` calls two at a time (the machine may have two cores). */
const dfkAll = async (cwd: string, calls: ReadonlyArray<ReadonlyArray<string>>): Promise<Array<Run>> => {
  const out: Array<Run> = new Array(calls.length)
  let next = 0
  const worker = async () => {
    while (next < calls.length) {
      const i = next++
      out[i] = await dfk(cwd, calls[i]!)
    }
  }
  await Promise.all([worker(), worker()])
  return out
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-clisql-"))
  // Inside the repository, so that the packages left out of the bundle resolve from node_modules.
  const outdir = fs.mkdtempSync(path.join(repo, ".tmp-clisql-"))
  await build({
    entryPoints: [path.join(repo, "cli", "main.ts")],
    bundle: true,
    splitting: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    outdir,
    logLevel: "warning"
  })
  bundle = path.join(outdir, "main.js")
}, 120_000)

afterAll(() => {
  if (bundle !== "") fs.rmSync(path.dirname(bundle), { recursive: true, force: true })
  if (work !== "") fs.rmSync(work, { recursive: true, force: true })
})

// ---- the runs ------------------------------------------------------------------------

const Input = Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) })
const double = App.make(
  { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
  ({ x }) => Effect.succeed(x * 2)
)
/** The same app after its body changed (no version bump). */
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

/** Calls one after the other, a few milliseconds apart (distinct times: `explain` orders by them). */
const oneByOne = (calls: ReadonlyArray<Effect.Effect<unknown, unknown, Dfk>>) =>
  Effect.forEach(calls, (call) => Effect.zipLeft(call, Effect.sleep("3 millis")), { discard: true })

const runKernel = (
  store: Layer.Layer<CheckpointStore, unknown>,
  config: DfkConfig,
  calls: ReadonlyArray<Effect.Effect<unknown, unknown, Dfk>>
) =>
  oneByOne(calls).pipe(
    Effect.provide(Dfk.layer(config).pipe(Layer.provide(CheckpointFiles.none))),
    Effect.provide(store),
    Effect.provide(NodeContext.layer),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

/**
 * The runs of test/e2e/cli.test.ts under `runDir`, on `store`: 000 (double x=1,2,3 and greet),
 * 001 (double x=1 again with a different result, and x=4), 002 (no checkpoint).
 */
const makeRuns = (store: Layer.Layer<CheckpointStore, unknown>, runDir: string) =>
  Effect.gen(function*() {
    yield* runKernel(store, { runDir, checkpointMode: "task_exit" }, [
      double({ x: 1 }),
      double({ x: 2 }),
      double({ x: 3, sleepMs: 5 }),
      greet({ name: "ada", lang: "en" })
    ])
    yield* runKernel(store, { runDir, checkpointMode: "task_exit" }, [doubleChanged({ x: 1 }), doubleChanged({ x: 4 })])
    yield* runKernel(store, { runDir }, [double({ x: 5 })])
  })

const loadEntries = (store: Layer.Layer<CheckpointStore, unknown>, dir: string) =>
  Effect.gen(function*() {
    const s = yield* CheckpointStore
    const out: Array<CheckpointEntry> = []
    yield* s.load(dir, (e) => out.push(e))
    return out
  }).pipe(Effect.provide(store))

/** What a time looks like in any output: the times of two stores' runs differ, nothing else. */
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/g
const normalize = (text: string): string => text.replace(TIME, "<time>").replaceAll("/tasks.jsonl", "")

/** A JSON Lines file's line of an entry, as the file store writes it. */
const lineBytes = (e: CheckpointEntry): number =>
  Buffer.byteLength(
    JSON.stringify({
      v: 1,
      hash: e.hash,
      app: e.app,
      version: e.version,
      input: e.input,
      result: e.result,
      time: e.time
    })
  ) + 1

// ---- the suite, over one SQL store -----------------------------------------------------

interface StoreCase {
  /** The `--store` value. */
  readonly spec: string
  /** How the store names itself in messages. */
  readonly name: string
  /** The store, for the in-process kernel. */
  readonly layer: Layer.Layer<CheckpointStore, unknown>
  /** Runs a statement on the store's database. */
  readonly exec: (statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) => Promise<void>
}

const storeSuite = (setup: () => Promise<StoreCase>) => {
  let store: StoreCase
  /** Where the files go: `<files>/nightly`; the CLI runs there, so both speak of `nightly/…`. */
  let files = ""
  const filesLayer = CheckpointStore.layerFileSystem.pipe(Layer.provide(NodeContext.layer))

  beforeAll(async () => {
    store = await setup()
    files = fs.mkdtempSync(path.join(work, "files-"))
    await Effect.runPromise(makeRuns(filesLayer, path.join(files, "nightly")))
    await Effect.runPromise(makeRuns(store.layer, "nightly"))
  }, 120_000)

  /** The same call on the files and on the SQL store. */
  const both = async (...args: ReadonlyArray<string>): Promise<[Run, Run]> => {
    const [onFiles, onSql] = await Promise.all([dfk(files, args), dfk(files, ["--store", store.spec, ...args])])
    return [onFiles!, onSql!]
  }

  it("runs: the same rows as on files: ids, entries, apps, sizes; a run with no checkpoint; text and --json", async () => {
    const [[filesText, sqlText], [filesJson, sqlJson]] = await Promise.all([
      both("runs", "nightly"),
      both("runs", "nightly", "--json")
    ])
    assert.strictEqual(sqlText.code, 0, sqlText.stderr)
    assert.strictEqual(sqlText.stderr, "")
    const lines = sqlText.stdout.trim().split("\n")
    assert.match(lines[0]!, /^RUN\s+STARTED\s+ENTRIES\s+BYTES\s+APPS$/)
    assert.match(lines[1]!, /^000\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+4\s+\d+ B\s+double \(3\), greet \(1\)$/)
    assert.match(lines[2]!, /^001\s+\S+\s+2\s+\d+ B\s+double \(2\)$/)
    // A SQL run has no folder: with no entries it has no start time to show.
    assert.match(lines[3]!, /^002\s+-\s+-\s+-\s+\(no checkpoint\)$/)
    assert.strictEqual(lines.length, 4)
    const columns = (text: string) =>
      text.trim().split("\n").map((line) => line.split(/\s{2,}/).filter((_, i) => i !== 1).join(" | "))
    assert.deepStrictEqual(columns(sqlText.stdout), columns(filesText.stdout))

    assert.strictEqual(sqlJson.code, 0, sqlJson.stderr)
    const rows = JSON.parse(sqlJson.stdout)
    assert.deepStrictEqual(rows.map((r: any) => [r.id, r.path, r.checkpoint, r.entries, r.apps]), [
      ["000", "nightly/000", "nightly/000/checkpoint", 4, { double: 3, greet: 1 }],
      ["001", "nightly/001", "nightly/001/checkpoint", 2, { double: 2 }],
      ["002", "nightly/002", null, 0, {}]
    ])
    // The size is the size the entries have as tasks.jsonl: the same bytes as the file's.
    const entries = await Effect.runPromise(loadEntries(store.layer, "nightly/000/checkpoint"))
    assert.strictEqual(rows[0].bytes, entries.reduce((n, e) => n + lineBytes(e), 0))
    const fileRows = JSON.parse(filesJson.stdout)
    assert.deepStrictEqual(rows.map((r: any) => r.bytes), fileRows.map((r: any) => r.bytes))
    assert.strictEqual(rows[0].start, entries.map((e) => e.time).sort()[0]!.replace(/\.\d{3}Z$/, "Z"))
    assert.isNull(rows[2].start)
    const withoutStart = (rs: Array<any>) => rs.map(({ start: _start, ...r }) => r)
    assert.deepStrictEqual(withoutStart(rows), withoutStart(fileRows))
  })

  it("show: a checkpoint by its name, its run, or …/tasks.jsonl; --app, --json; the same as on files", async () => {
    const calls = [
      ["show", "nightly/000/checkpoint"],
      ["show", "nightly/000/checkpoint", "--app", "greet"],
      ["show", "--json", "nightly/000/checkpoint/tasks.jsonl"],
      ["show", "./nightly/001/", "--json"]
    ]
    const results = await Promise.all(calls.map((c) => both(...c)))
    for (const [i, [onFiles, onSql]] of results.entries()) {
      assert.strictEqual(onSql.code, 0, `${calls[i]!.join(" ")}: ${onSql.stderr}`)
      assert.strictEqual(normalize(onSql.stdout), normalize(onFiles.stdout), calls[i]!.join(" "))
    }
    const [[, text], [, byApp], [, json], [, viaRun]] = results
    const stored = await Effect.runPromise(loadEntries(store.layer, "nightly/000/checkpoint"))
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
    assert.strictEqual(lines[5], "4 entries in nightly/000/checkpoint")
    assert.include(byApp.stdout, "\"hello ada\"")
    assert.include(byApp.stdout, "1 entry of app greet (4 in all) in nightly/000/checkpoint")
    assert.deepStrictEqual(JSON.parse(json.stdout), stored)
    assert.deepStrictEqual(JSON.parse(viaRun.stdout).map((e: any) => [e.input, e.result]), [[{ x: 1 }, 10], [
      { x: 4 },
      40
    ]])
  })

  it("show, runs, explain: names the store has not are exit status 2, naming the store", async () => {
    const s = ["--store", store.spec]
    const [noCheckpoint, noRun, noRunDir, explainNoRunDir] = await dfkAll(files, [
      [...s, "show", "nightly/002"],
      [...s, "show", "nightly/009/checkpoint"],
      [...s, "runs", "weekly"],
      [...s, "explain", "weekly", "--app", "double", "--input", "{\"x\":1}"]
    ])
    for (const r of [noCheckpoint, noRun, noRunDir, explainNoRunDir]) {
      assert.strictEqual(r.code, 2, r.stdout + r.stderr)
      assert.strictEqual(r.stdout, "")
      assert.strictEqual(r.stderr.trim().split("\n").length, 1, r.stderr)
      assert.include(r.stderr, `in the store ${store.name}`)
    }
    assert.include(noCheckpoint.stderr, "dfk: nightly/002 holds no checkpoint in the store")
    assert.include(noRun.stderr, "dfk: The checkpoint nightly/009/checkpoint does not exist in the store")
    assert.include(noRunDir.stderr, "dfk: The run directory weekly does not exist in the store")
  })

  it("explain: hits name the run, misses the differing version, key and value: the same as on files", async () => {
    const calls = [
      ["explain", "nightly", "--app", "double", "--input", "{\"x\":1}"],
      ["explain", "nightly", "--app", "double", "--input", "{\"x\":7}"],
      ["explain", "nightly", "--app", "greet", "--input", "{\"name\":\"ada\",\"lang\":\"en\"}", "--version", "3"],
      ["explain", "nightly", "--app", "double", "--input", "{\"x\":3,\"sleepMs\":9}"],
      ["explain", "nightly", "--app", "double", "--input", "{\"x\":3,\"sleepMs\":9}", "--ignore", "sleepMs"],
      ["explain", "nightly", "--app", "nobody", "--input", "1"],
      ["explain", "nightly/000/checkpoint", "--app", "double", "--input", "{\"x\":1}"],
      ["explain", "nightly/000", "--app", "double", "--input", "{\"x\":1}"]
    ]
    const results = await Promise.all(calls.map((c) => both(...c)))
    for (const [i, [onFiles, onSql]] of results.entries()) {
      assert.strictEqual(onSql.code, onFiles.code, `${calls[i]!.join(" ")}: ${onSql.stdout}${onSql.stderr}`)
      assert.strictEqual(normalize(onSql.stdout), normalize(onFiles.stdout), calls[i]!.join(" "))
    }
    const [[, hit], [, changed], [, version], [, extra], [, ignored], [, unknown], [, single], [, run]] = results
    assert.strictEqual(hit.code, 0)
    assert.match(hit.stdout, /Hit: stored in run 001 \(nightly\/001\/checkpoint\), result 10/)
    assert.include(hit.stdout, "also stored in run 000")
    assert.strictEqual(changed.code, 1)
    assert.include(changed.stdout, "input.x: changed: stored 4, asked 7")
    assert.include(version.stdout, "version: stored \"2\", asked \"3\"")
    assert.include(extra.stdout, "pass --ignore sleepMs")
    assert.strictEqual(ignored.code, 0)
    assert.include(unknown.stdout, "No stored entries of app \"nobody\"; stored apps: double (5), greet (1)")
    // One checkpoint, by its name or its run's: only its entries count.
    for (const r of [single, run]) {
      assert.strictEqual(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /Hit: stored in run 000 .*result 2,/)
      assert.notInclude(r.stdout, "also stored")
    }
  })

  it("verify: every entry by the library's rule; an entry changed in the database is corrupt, with its position", async () => {
    const [[onFiles, onSql], [filesOne, sqlOne]] = await Promise.all([
      both("verify", "nightly"),
      both("verify", "nightly/001")
    ])
    for (const r of [onSql, sqlOne]) assert.strictEqual(r.code, 0, r.stdout + r.stderr)
    assert.strictEqual(
      onSql.stdout,
      "nightly/000/checkpoint: 4 entries, ok\nnightly/001/checkpoint: 2 entries, ok\nChecked 2 checkpoints, 6 entries: all good\n"
    )
    assert.strictEqual(normalize(onSql.stdout), normalize(onFiles.stdout))
    assert.strictEqual(normalize(sqlOne.stdout), normalize(filesOne.stdout))

    // Runs of their own, then changed behind the library's back: an input that no longer
    // matches its hash, and a result that is not JSON.
    await Effect.runPromise(runKernel(store.layer, { runDir: "tampered", checkpointMode: "task_exit" }, [
      double({ x: 1 }),
      double({ x: 2 }),
      double({ x: 3 })
    ]))
    await Effect.runPromise(
      runKernel(store.layer, { runDir: "broken", checkpointMode: "task_exit" }, [double({ x: 1 }), double({ x: 2 })])
    )
    await store.exec((sql) =>
      sql`UPDATE dfk_entries SET input = ${"{\"x\":20}"} WHERE dir = ${"tampered/000/checkpoint"} AND input = ${"{\"x\":2}"}`
    )
    await store.exec((sql) =>
      sql`UPDATE dfk_entries SET result = ${"{not json"} WHERE dir = ${"broken/000/checkpoint"} AND input = ${"{\"x\":2}"}`
    )
    const s = ["--store", store.spec]
    const [tampered, broken, compacted] = await dfkAll(files, [
      [...s, "verify", "tampered/000/checkpoint"],
      [...s, "verify", "broken"],
      [...s, "compact", "tampered"]
    ])
    assert.strictEqual(tampered.code, 1, tampered.stdout + tampered.stderr)
    const lines = tampered.stdout.trim().split("\n")
    assert.match(lines[0]!, /^tampered\/000\/checkpoint:2: corrupt: .*hash/)
    assert.strictEqual(lines[1], "tampered/000/checkpoint: 2 entries, 1 corrupt line (refused by the library)")
    assert.strictEqual(lines[2], "Checked 1 checkpoint, 2 entries: 1 corrupt line, 0 torn last lines")
    assert.strictEqual(broken.code, 1, broken.stdout + broken.stderr)
    assert.match(broken.stdout, /^broken\/000\/checkpoint:2: corrupt: .*not valid JSON/m)
    // compact drops the entry the library would refuse, as it does with files.
    assert.strictEqual(compacted.code, 0, compacted.stdout + compacted.stderr)
    assert.include(compacted.stdout, "Dropped 1 entry whose hash is not the memo key")
    assert.include(compacted.stdout, "After: 2 entries (one per key, last entry wins) in tampered/001/checkpoint")
  })

  it("invalidate: tombstones go into the store, the same matches as on files; explain, compact and a kernel see them", async () => {
    const filesRoot = fs.mkdtempSync(path.join(work, "invalidate-"))
    await Effect.runPromise(makeRuns(filesLayer, path.join(filesRoot, "inval")))
    await Effect.runPromise(makeRuns(store.layer, "inval"))
    const sqlCwd = fs.mkdtempSync(path.join(work, "invalidate-sql-"))
    const args = ["invalidate", "inval", "--app", "double", "--input", "{\"x\":1}"]
    const [dryFiles, drySql] = await Promise.all([
      dfk(filesRoot, [...args, "--dry-run"]),
      dfk(sqlCwd, ["--store", store.spec, ...args, "--dry-run"])
    ])
    assert.strictEqual(drySql.code, 0, drySql.stdout + drySql.stderr)
    assert.strictEqual(normalize(drySql.stdout), normalize(dryFiles.stdout))
    assert.include(drySql.stdout, "Would invalidate 2 entries in 2 checkpoints")
    const onFiles = await dfk(filesRoot, args)
    const onSql = await dfk(sqlCwd, ["--store", store.spec, ...args])
    assert.strictEqual(onSql.code, 0, onSql.stdout + onSql.stderr)
    assert.strictEqual(normalize(onSql.stdout), normalize(onFiles.stdout))
    const tombstones = (await Effect.runPromise(loadEntries(store.layer, "inval/001/checkpoint"))).filter((e) =>
      e.deleted === true
    )
    assert.deepStrictEqual(tombstones.map((e) => e.input), [{ x: 1 }])

    const explain = ["explain", "inval", "--app", "double", "--input", "{\"x\":1}"]
    const [explainFiles, explainSql] = await Promise.all([
      dfk(filesRoot, explain),
      dfk(sqlCwd, ["--store", store.spec, ...explain])
    ])
    const compacted = await dfk(sqlCwd, ["--store", store.spec, "compact", "inval"])
    assert.strictEqual(explainSql.code, 1)
    assert.strictEqual(normalize(explainSql.stdout), normalize(explainFiles.stdout))
    assert.include(explainSql.stdout, "invalidated by a tombstone in inval/001/checkpoint")
    assert.include(compacted.stdout, "Dropped 1 invalidated key (last entry a tombstone)")

    // A kernel on the store under default resume (lookups) misses x=1 and serves x=2.
    let bodies = 0
    const counted = App.make(
      { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
      ({ x }) => Effect.sync(() => (bodies++, -x))
    )
    const results = await Effect.runPromise(
      Effect.forEach([1, 2], (x) => counted({ x })).pipe(
        Effect.provide(Dfk.layer({ runDir: "inval", checkpointMode: "task_exit" })),
        Effect.provide(store.layer),
        Effect.provide(NodeContext.layer),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    )
    assert.deepStrictEqual(results, [-1, 4])
    assert.strictEqual(bodies, 1)
  })

  it("compact: a new run in the store, last entry wins, the same as on files; a kernel resumes from it", async () => {
    // A run dir of their own (compact writes): the same runs, under another name.
    const filesRoot = fs.mkdtempSync(path.join(work, "compact-"))
    await Effect.runPromise(makeRuns(filesLayer, path.join(filesRoot, "merge")))
    await Effect.runPromise(makeRuns(store.layer, "merge"))
    // The SQL store's command runs in an empty directory of its own, which it leaves empty.
    const sqlCwd = fs.mkdtempSync(path.join(work, "compact-sql-"))
    const onFiles = await dfk(filesRoot, ["compact", "merge"])
    const onSql = await dfk(sqlCwd, ["--store", store.spec, "compact", "merge"])
    assert.strictEqual(onSql.code, 0, onSql.stdout + onSql.stderr)
    assert.strictEqual(normalize(onSql.stdout), normalize(onFiles.stdout))
    assert.include(
      onSql.stdout,
      "Before: 6 entries in 2 checkpoints\n  merge/000/checkpoint: 4\n  merge/001/checkpoint: 2\n"
    )
    assert.match(onSql.stdout, /After: 5 entries \(one per key, last entry wins\) in merge\/003\/checkpoint \(\d+ B\)/)
    const entries = await Effect.runPromise(loadEntries(store.layer, "merge/003/checkpoint"))
    assert.strictEqual(entries.length, 5)
    assert.strictEqual(new Set(entries.map((e) => e.hash)).size, 5)
    assert.deepStrictEqual(entries.filter((e) => (e.input as any).x === 1).map((e) => e.result), [10])

    // --out: a name of its own, refused when taken.
    const out = await dfk(sqlCwd, ["--store", store.spec, "compact", "merge", "--out", "merged/all"])
    const [again, runs] = await dfkAll(sqlCwd, [
      ["--store", store.spec, "compact", "merge", "--out", "merged/all"],
      ["--store", store.spec, "runs", "merge", "--json"]
    ])
    assert.strictEqual(out.code, 0, out.stdout + out.stderr)
    assert.include(out.stdout, "in merged/all (")
    assert.strictEqual(again.code, 2)
    assert.include(again.stderr, `The output merged/all already exists in the store ${store.name}`)
    assert.include(JSON.parse(runs.stdout).map((r: any) => r.id), "003")
    assert.deepStrictEqual(fs.readdirSync(sqlCwd), [])

    // --prune deletes run dirs of the files: refused with a SQL store (exit status 2), nothing written.
    const pruned = await dfk(sqlCwd, ["--store", store.spec, "compact", "merge", "--prune"])
    assert.strictEqual(pruned.code, 2, pruned.stdout + pruned.stderr)
    assert.include(
      pruned.stderr,
      `Cannot prune runs of the store ${store.name}: --prune deletes run dirs of the JSON Lines files`
    )
    const after = await dfk(sqlCwd, ["--store", store.spec, "runs", "merge", "--json"])
    assert.deepStrictEqual(
      JSON.parse(after.stdout).map((r: any) => r.id),
      JSON.parse(runs.stdout).map((r: any) => r.id)
    )

    // A kernel resuming from the compacted checkpoint runs no body.
    let bodies = 0
    const counted = App.make(
      { name: "double", input: Input, output: Schema.Number, cache: true, ignoreForCache: ["sleepMs"] },
      ({ x }) => Effect.sync(() => (bodies++, x * 2))
    )
    const results = await Effect.runPromise(
      Effect.forEach([1, 2, 3, 4], (x) => counted({ x })).pipe(
        Effect.provide(
          Dfk.layer({ runDir: "merge" }).pipe(Layer.provide(CheckpointFiles.layer(["merge/003/checkpoint"])))
        ),
        Effect.provide(store.layer),
        Effect.provide(NodeContext.layer),
        Logger.withMinimumLogLevel(LogLevel.Warning)
      )
    )
    assert.deepStrictEqual(results, [10, 4, 6, 40])
    assert.strictEqual(bodies, 0)
  })

  it("repair has no lines to move in a SQL store: exit status 2, pointing to verify", async () => {
    const r = await dfk(files, ["repair", "nightly/000", "--store", store.spec])
    assert.strictEqual(r.code, 2)
    assert.strictEqual(
      r.stderr.trim(),
      `dfk: dfk repair moves bad lines of tasks.jsonl files; the store ${store.name} has no lines to move (dfk verify checks its entries)`
    )
  })

  return () => store
}

// ---- SQLite ------------------------------------------------------------------------------

describe.skipIf(!sqliteAvailable)(sqliteSuite("dfk --store sqlite:"), () => {
  let file = ""
  storeSuite(async () => {
    file = path.join(fs.mkdtempSync(path.join(work, "sqlite-")), "dfk.db")
    const client = SqliteClient.layer({ filename: file })
    return {
      spec: `sqlite:${file}`,
      name: `sqlite:${file}`,
      layer: SqlStore.layer().pipe(Layer.provide(client)),
      exec: (statement) =>
        Effect.runPromise(
          Effect.flatMap(SqlClient.SqlClient, statement).pipe(Effect.provide(client), Effect.asVoid)
        ) as Promise<void>
    }
  })

  it("a file that does not exist is exit status 2, and nothing is created", async () => {
    const missing = path.join(work, "nope.db")
    const r = await dfk(work, ["--store", `sqlite:${missing}`, "runs"])
    assert.strictEqual(r.code, 2)
    assert.strictEqual(r.stderr.trim(), `dfk: The store sqlite:${missing} does not exist`)
    assert.isFalse(fs.existsSync(missing))
  })
})

describe.runIf(!sqliteAvailable)("dfk --store sqlite: where better-sqlite3 cannot load (Deno)", () => {
  it("says why the store cannot be opened, and what to do", async () => {
    const file = path.join(work, "deno.db")
    fs.writeFileSync(file, "")
    const r = await dfk(work, ["--store", `sqlite:${file}`, "runs"])
    assert.strictEqual(r.code, 1, r.stdout + r.stderr)
    assert.strictEqual(r.stdout, "")
    const lines = r.stderr.trim().split("\n")
    assert.strictEqual(lines.length, 1, r.stderr)
    assert.include(lines[0], `dfk: Cannot open the store sqlite:${file}: `)
    assert.include(lines[0], "Deno cannot load: run this under Node, or use a postgres:// store")
  })
})

// ---- PostgreSQL ----------------------------------------------------------------------------

describe("dfk --store postgres://", () => {
  let scope: Scope.CloseableScope | undefined
  let url = ""
  const current = storeSuite(async () => {
    scope = Effect.runSync(Scope.make())
    url = await Effect.runPromise(Scope.extend(pgDatabase, scope))
    const client = PgClient.layer({ url: Redacted.make(url) })
    const u = new URL(url)
    return {
      spec: url,
      name: `postgres://${u.hostname}:${u.port}${u.pathname}`,
      layer: SqlStore.layer().pipe(Layer.provide(client)),
      exec: (statement) =>
        Effect.runPromise(
          Effect.flatMap(SqlClient.SqlClient, statement).pipe(Effect.provide(client), Effect.asVoid)
        ) as Promise<void>
    }
  })
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("postgresql:// and DFK_STORE work too; a wrong password or database is exit status 1, naming the store", async () => {
    const u = new URL(url)
    const name = current().name
    const asPostgresql = url.replace(/^postgres:/, "postgresql:")
    const wrong = new URL(url)
    wrong.password = `wrong-${randomBytes(6).toString("hex")}`
    const noDb = new URL(url)
    noDb.pathname = "/no_such_db"
    const [viaScheme, viaEnv, badPassword, badDb] = await Promise.all([
      dfk(work, ["--store", asPostgresql, "runs", "nightly", "--json"]),
      dfk(work, ["runs", "nightly", "--json"], { DFK_STORE: url }),
      dfk(work, ["--store", wrong.toString(), "runs", "nightly"]),
      dfk(work, ["--store", noDb.toString(), "runs", "nightly"])
    ])
    for (const r of [viaScheme, viaEnv]) {
      assert.strictEqual(r.code, 0, r.stderr)
      assert.deepStrictEqual(JSON.parse(r.stdout).map((row: any) => row.id), ["000", "001", "002"])
    }
    assert.strictEqual(badPassword.code, 1)
    assert.match(
      badPassword.stderr,
      new RegExp(`^dfk: Cannot open the store postgres://${u.hostname}:${u.port}/[a-z0-9_]+: .*password`)
    )
    assert.notInclude(badPassword.stderr, wrong.password)
    assert.strictEqual(badDb.code, 1)
    assert.include(badDb.stderr, `dfk: Cannot open the store postgres://${u.hostname}:${u.port}/no_such_db: `)
    assert.include(badDb.stderr, "no_such_db")
    assert.notStrictEqual(name, "")
  })

  it("the URL's password appears in nothing dfk printed, in any test of this file", () => {
    const password = decodeURIComponent(new URL(url).password)
    assert.isAbove(password.length, 8)
    assert.isAbove(printed.length, 20)
    for (const text of printed) {
      assert.notInclude(text, password)
      assert.notInclude(text, url)
    }
  })
})
