/**
 * The demo's `--workers N` (`npm run demo -- --workers N`): N processes of the demo script on
 * one SQL store split the tasks between them. Whatever the number of workers, the results
 * digest is the one of a run in one process, and every task body runs exactly once in all
 * (counted by each worker in its bodies, and reported per task); a second run serves every
 * result from the store. On SQLite (`<run-dir>/dfk.db`, under Node) and on PostgreSQL
 * (`--store postgres://…`, whose password the demo never prints). No timings are asserted:
 * the speed-up is measured by hand (see the report of the change and bench/README.md).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { pgDatabase, sqliteAvailable, sqliteSuite } from "./sqlHarness.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object"
const demo = path.join(root, "examples", "demo.ts")
// Under Node the demo runs as `npm run demo` (and `npm run dfk`) run it: compiled once to cached
// JavaScript by scripts/run.mjs, on plain node; Deno runs TypeScript itself (and its workers are
// started by the same runtime).
const runner = isDeno ? process.execPath : "node"
const runnerArgs: ReadonlyArray<string> = isDeno ? [] : [path.join(root, "scripts", "run.mjs")]
const TASKS = 12
const ARGS = ["--size", "small", "--progress", "steps"]

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (script: ReadonlyArray<string>, args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve) => {
    const env = { ...process.env }
    for (const key of Object.keys(env)) if (key.startsWith("DEMO_") || key.startsWith("DFK_")) delete env[key]
    execFile(
      runner,
      [...runnerArgs, ...script, ...args],
      { cwd: root, env, encoding: "utf8", maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })
      }
    )
  })

/** `npm run demo -- <the small size> args…`. */
const runDemo = (args: ReadonlyArray<string>): Promise<Run> => run([demo, ...ARGS], args)

interface Summary {
  readonly tasks: number
  readonly fromCheckpoint: number
  readonly computed: number
  readonly digest: string
  /** Bodies each worker ran (none for a run without --workers). */
  readonly bodies: ReadonlyArray<number>
  /** Tasks reported computed, each with the worker that ran it. */
  readonly computedSteps: ReadonlyArray<{ readonly task: string; readonly worker: number }>
  readonly fromCheckpointSteps: number
}

const parse = (run: Run): Summary => {
  assert.strictEqual(run.code, 0, `the demo failed:\n${run.stdout}\n${run.stderr}`)
  const done = /^Done: (\d+) tasks, (\d+) results from checkpoint, (\d+) computed now, in [\d.]+ s(.*)\.$/m.exec(
    run.stdout
  )
  const digest = /^results digest: ([0-9a-f]{16})$/m.exec(run.stdout)
  assert.isNotNull(done, `no Done line in:\n${run.stdout}`)
  assert.isNotNull(digest, `no digest line in:\n${run.stdout}`)
  const workers = /; \d+ workers? ran ([\d + ]+) bodies/.exec(done![4]!)
  const steps = [
    ...run.stdout.matchAll(/^step \d+\/\d+ done: (.+) \((?:computed in [\d,]+ ms, worker (\d+)|(from checkpoint))\)$/gm)
  ]
  return {
    tasks: Number(done![1]),
    fromCheckpoint: Number(done![2]),
    computed: Number(done![3]),
    digest: digest![1]!,
    bodies: workers === null ? [] : workers[1]!.split(" + ").map(Number),
    computedSteps: steps.filter((m) => m[2] !== undefined).map((m) => ({ task: m[1]!, worker: Number(m[2]) })),
    fromCheckpointSteps: steps.filter((m) => m[3] !== undefined).length
  }
}

/** Asserts a fresh `--workers` run: every task computed once, by one of the workers, in all. */
const assertEveryBodyOnce = (s: Summary, workers: number) => {
  assert.deepStrictEqual([s.tasks, s.fromCheckpoint, s.computed], [TASKS, 0, TASKS])
  assert.strictEqual(s.bodies.length, workers)
  assert.strictEqual(s.bodies.reduce((a, b) => a + b, 0), TASKS, `bodies per worker: ${s.bodies.join(" + ")}`)
  assert.strictEqual(s.computedSteps.length, TASKS)
  assert.strictEqual(new Set(s.computedSteps.map((c) => c.task)).size, TASKS)
  for (let w = 1; w <= workers; w++) {
    assert.strictEqual(s.computedSteps.filter((c) => c.worker === w).length, s.bodies[w - 1], `worker ${w}`)
  }
}

let work = ""
/** The digest of a run of the same tasks in one process, on the JSON Lines files. */
let reference: Promise<string> | undefined
const referenceDigest =
  () => (reference ??= runDemo(["--run-dir", path.join(work, "files")]).then((r) => parse(r).digest))

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-demo-sql-"))
})
afterAll(() => {
  if (work !== "") fs.rmSync(work, { recursive: true, force: true })
})

describe.skipIf(!sqliteAvailable)(sqliteSuite("Demo --workers on SQLite (<run-dir>/dfk.db)"), () => {
  it(
    "--workers 2 and --workers 1: the digest of one process; every body runs once in all; a rerun computes nothing",
    async () => {
      const two = path.join(work, "two")
      const one = path.join(work, "one")
      const [first, single, digest] = await Promise.all([
        runDemo(["--workers", "2", "--run-dir", two]),
        runDemo(["--workers", "1", "--run-dir", one]),
        referenceDigest()
      ])
      const a = parse(first)
      assertEveryBodyOnce(a, 2)
      assert.strictEqual(a.digest, digest)
      assert.match(
        first.stdout,
        /^effect-dfk demo: 12 tasks \(scale 0\.5\), 2 worker processes, one task at a time each, sharing the store sqlite:.*two\/dfk\.db$/m
      )
      assert.isTrue(fs.existsSync(path.join(two, "dfk.db")))
      // No run folders: the runs live in the store.
      assert.deepStrictEqual(fs.readdirSync(two).filter((f) => /^\d+$/.test(f)), [])
      const b = parse(single)
      assertEveryBodyOnce(b, 1)
      assert.strictEqual(b.digest, digest)

      const again = parse(await runDemo(["--workers", "2", "--run-dir", two]))
      assert.deepStrictEqual([again.tasks, again.fromCheckpoint, again.computed], [TASKS, TASKS, 0])
      assert.deepStrictEqual(again.bodies, [0, 0])
      assert.strictEqual(again.fromCheckpointSteps, TASKS)
      assert.strictEqual(again.digest, digest)
    },
    180_000
  )

  it(
    "--store sqlite:PATH without --workers: one process on that store, the same digest, resumed by --workers 2",
    async () => {
      const file = path.join(work, "shared.db")
      const inProcess = await runDemo(["--store", `sqlite:${file}`, "--run-dir", "shared"])
      const s = parse(inProcess)
      assert.deepStrictEqual([s.tasks, s.fromCheckpoint, s.computed], [TASKS, 0, TASKS])
      assert.strictEqual(s.digest, await referenceDigest())
      assert.match(inProcess.stdout, new RegExp(`^checkpoint: shared/000/checkpoint in the store sqlite:${file}$`, "m"))
      const resumed = parse(await runDemo(["--workers", "2", "--store", `sqlite:${file}`, "--run-dir", "shared"]))
      assert.deepStrictEqual([resumed.fromCheckpoint, resumed.computed], [TASKS, 0])
      assert.strictEqual(resumed.digest, s.digest)
    },
    180_000
  )
})

describe.skipIf(!sqliteAvailable)(sqliteSuite("dfk demo --workers"), () => {
  it(
    "dfk --store sqlite:NEW demo --workers 2: makes the store; its workers are dfk demo processes; same digest, bodies once",
    async () => {
      const dir = path.join(work, "dfk")
      fs.mkdirSync(dir)
      const file = path.join(dir, "dfk.db")
      const r = await run([path.join(root, "cli", "main.ts")], [
        "--store",
        `sqlite:${file}`,
        "demo",
        ...ARGS,
        "--workers",
        "2",
        "--run-dir",
        dir
      ])
      const s = parse(r)
      assertEveryBodyOnce(s, 2)
      assert.strictEqual(s.digest, await referenceDigest())
      assert.isTrue(fs.existsSync(file))
    },
    180_000
  )
})

describe.runIf(!sqliteAvailable)("Demo --workers where better-sqlite3 cannot load (Deno)", () => {
  it("fails at once with one line saying why, and starts no worker", async () => {
    const r = await runDemo(["--workers", "2", "--run-dir", path.join(work, "deno")])
    assert.strictEqual(r.code, 1, r.stdout + r.stderr)
    assert.notMatch(r.stdout, /^step /m)
    assert.include(r.stderr, "demo: Cannot open the store sqlite:")
    assert.include(r.stderr, "Deno cannot load")
  }, 60_000)
})

describe("Demo --workers on PostgreSQL (--store postgres://…)", () => {
  let scope: Scope.CloseableScope | undefined
  let url = ""
  beforeAll(async () => {
    scope = Effect.runSync(Scope.make())
    url = await Effect.runPromise(Scope.extend(pgDatabase, scope))
  })
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it(
    "--workers 2: the digest of one process, every body once in all, a rerun computes nothing; the password is never printed",
    async () => {
      const [first, digest] = await Promise.all([
        runDemo(["--workers", "2", "--store", url, "--run-dir", "nightly"]),
        referenceDigest()
      ])
      const a = parse(first)
      assertEveryBodyOnce(a, 2)
      assert.strictEqual(a.digest, digest)
      const u = new URL(url)
      assert.include(first.stdout, `sharing the store postgres://${u.hostname}:${u.port}${u.pathname}`)
      const again = await runDemo(["--workers", "2", "--store", url, "--run-dir", "nightly"])
      const b = parse(again)
      assert.deepStrictEqual([b.fromCheckpoint, b.computed, ...b.bodies], [TASKS, 0, 0, 0])
      assert.strictEqual(b.digest, digest)
      const password = decodeURIComponent(u.password)
      assert.isAbove(password.length, 8)
      for (const r of [first, again]) assert.notInclude(r.stdout + r.stderr, password)
    },
    180_000
  )
})
