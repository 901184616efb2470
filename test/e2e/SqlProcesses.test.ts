/**
 * The same workflow (test/fixtures/sql-worker.ts) started as several processes against one SQL
 * store (DESIGN §7): `task_exit`, `maxConcurrency: 2`, K keys whose bodies sleep 20 ms and
 * record each run in a shared file. On PostgreSQL and on SQLite:
 *
 * - they split the work: exactly K bodies in all, each key one entry (of the run that ran its
 *   body; a shared store copies nothing forward under default resume), no claim left;
 * - one of them SIGKILLed after ~30% of the bodies: the others finish; every key has an
 *   entry; a key runs twice only when the killed one had started it and not written it; a
 *   rerun runs nothing. PostgreSQL, with a 60 s lease: the survivors are done well before it,
 *   since the killed holder's claims are taken over as soon as its connection's advisory lock
 *   is gone. SQLite can tell only by the lease (5 s here);
 * - PostgreSQL: one of them SIGSTOPped (alive, its connections and lock held) and SIGCONTed
 *   after more than the lease: the others take over its keys after the lease; once it resumes
 *   its bodies end and write a second entry for those keys, and everything still has one
 *   answer.
 *
 * Under Deno the children are Deno processes too (PostgreSQL only: better-sqlite3 does not
 * load there, and the SQLite cases are skipped).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, afterEach } from "vitest"
import { Memo } from "../../mod.ts"
import { fixturePath, makeTempDir, nodeBin, repoRoot } from "../fixtures/child.ts"
import { pgDatabase, sqliteAvailable, sqliteSuite } from "./sqlHarness.ts"

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno === "object"
const KEYS = 1000

const temps: Array<string> = []
afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})
const tempDir = () => {
  const dir = makeTempDir("effect-dfk-sqlprocs-")
  temps.push(dir)
  return dir
}

// ---- the worker processes -------------------------------------------------------------

interface Worker {
  readonly process: ChildProcess
  readonly lines: Array<string>
  readonly stderr: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly waitFor: (predicate: (lines: ReadonlyArray<string>) => boolean, what: string) => Promise<void>
  readonly signal: (signal: NodeJS.Signals) => void
  /** What it printed as `<prefix> <value>`. */
  readonly value: (prefix: string) => string | undefined
}

// Every worker started, so that a test that fails or times out leaves none running (and says
// what they were doing).
const started: Array<Worker & { ended: boolean }> = []
afterEach(async () => {
  const alive = started.filter((w) => !w.ended)
  for (const w of alive) {
    console.error(
      `A worker (pid ${w.process.pid}) was still running; its last lines:\n${w.lines.slice(-5).join("\n")}\nstderr:\n${
        w.stderr().slice(-3000)
      }`
    )
    w.signal("SIGCONT")
    w.signal("SIGKILL")
  }
  await Promise.all(alive.map((w) => w.exited))
  started.length = 0
})

/** Starts one worker: a Node process under tsx, or a Deno process when the tests run under Deno. */
const startWorker = (env: Readonly<Record<string, string>>): Worker => {
  const [cmd, args] = isDeno
    ? [path.join(repoRoot, "node_modules", ".bin", "deno"), ["run", "-A", "--quiet", fixturePath("sql-worker.ts")]]
    : [nodeBin, ["--import", "tsx", fixturePath("sql-worker.ts")]]
  const proc = spawn(cmd, args, {
    cwd: repoRoot,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_NO_WARNINGS: "1", SQLW_WAIT: "1", ...env }
  })
  const lines: Array<string> = []
  let carry = ""
  let err = ""
  let done = false
  const waiters = new Set<() => void>()
  const notify = () => [...waiters].forEach((w) => w())
  proc.stdout!.setEncoding("utf8")
  proc.stdout!.on("data", (chunk: string) => {
    const parts = (carry + chunk).split("\n")
    carry = parts.pop()!
    for (const part of parts) lines.push(part)
    notify()
  })
  proc.stderr!.setEncoding("utf8")
  proc.stderr!.on("data", (chunk: string) => (err += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on("close", (code, signal) => {
      if (carry !== "") lines.push(carry)
      done = true
      notify()
      resolve({ code, signal })
    })
  })
  const waitFor = (predicate: (lines: ReadonlyArray<string>) => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(lines)) {
          waiters.delete(check)
          resolve()
        } else if (done) {
          waiters.delete(check)
          reject(new Error(`A worker exited before ${what}.\nstdout:\n${lines.join("\n")}\nstderr:\n${err}`))
        }
      }
      waiters.add(check)
      check()
    })
  const value = (prefix: string) => {
    const line = lines.find((l) => l.startsWith(prefix + " "))
    return line === undefined ? undefined : line.slice(prefix.length + 1)
  }
  const worker = {
    process: proc,
    lines,
    stderr: () => err,
    exited,
    waitFor,
    signal: (s: NodeJS.Signals) => {
      if (!worker.ended) process.kill(proc.pid!, s)
    },
    value,
    ended: false
  }
  void exited.then(() => (worker.ended = true))
  started.push(worker)
  return worker
}

/** `n` workers on one store, started at the same moment (each waits for "go" once its store is open). */
const startWorkers = async (n: number, env: Readonly<Record<string, string>>): Promise<Array<Worker>> => {
  const workers = Array.from({ length: n }, () => startWorker(env))
  await Promise.all(workers.map((w) => w.waitFor((l) => l.includes("ready"), "it was ready")))
  for (const w of workers) w.process.stdin!.write("go\n")
  await Promise.all(workers.map((w) => w.waitFor((l) => l.some((x) => x.startsWith("run ")), "its kernel was up")))
  return workers
}

const finished = async (w: Worker) => {
  const exit = await w.exited
  assert.deepStrictEqual(exit, { code: 0, signal: null }, `a worker failed:\n${w.stderr()}`)
  return {
    run: w.value("run")!,
    bodies: Number(w.value("bodies")),
    outcomes: JSON.parse(w.value("outcomes")!) as Record<string, number>,
    stats: JSON.parse(w.value("stats")!) as Record<string, number>
  }
}

// ---- what the bodies file and the store say ---------------------------------------------

/** The bodies file: per key, the pids that started its body, and the bodies that started but did not end. */
const readBodies = (file: string) => {
  const started = new Map<number, Array<number>>()
  const open = new Set<string>()
  let total = 0
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  for (const line of text.split("\n")) {
    const [kind, pid, i] = line.split(" ")
    if (kind === "S") {
      total++
      const list = started.get(Number(i)) ?? []
      list.push(Number(pid))
      started.set(Number(i), list)
      open.add(`${pid} ${i}`)
    } else if (kind === "E") open.delete(`${pid} ${i}`)
  }
  return { started, total, open }
}

const waitUntil = async (what: string, done: () => boolean, limitMs = 60_000) => {
  const t0 = Date.now()
  while (!done()) {
    if (Date.now() - t0 > limitMs) throw new Error(`Timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

interface StoreRow {
  readonly i: number
  readonly run: number
  readonly time: string
  readonly result: number
}

/** Every entry under `runDir` (its key, run and time, and the result) and the claims left. */
const readStore = (client: Layer.Layer<SqlClient.SqlClient, unknown>, runDir: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<
        { input: string; run: number | string; time: string; result: string }
      >`SELECT input, run, time, result FROM dfk_entries WHERE run_dir = ${runDir} ORDER BY seq`
      const claims = yield* sql<{ hash: string; owner: string }>`SELECT hash, owner FROM dfk_claims`
      const entries: Array<StoreRow> = rows.map((r) => ({
        i: JSON.parse(r.input).i,
        run: Number(r.run),
        time: r.time,
        result: JSON.parse(r.result)
      }))
      return { entries, claims, claimsLeft: claims.length }
    }).pipe(Effect.provide(client), Effect.scoped) as Effect.Effect<
      { entries: Array<StoreRow>; claims: ReadonlyArray<{ hash: string; owner: string }>; claimsLeft: number },
      never,
      never
    >
  )

const runNumber = (run: string) => Number(run.split("/").pop())

/** The key `i` of each memo hash of the worker's app. */
const keyOfHash = new Map(
  Array.from({ length: KEYS }, (_, i) => [Effect.runSync(Memo.key({ name: "sqlw_square", input: { i } })), i] as const)
)

/**
 * Every key has an entry, every entry the key's result; each key's entries are one body's
 * result (one time), but for the keys in `twice` (at most two). Returns the keys by origin run
 * (the run of a key's first entry).
 */
const checkEntries = (entries: ReadonlyArray<StoreRow>, twice: ReadonlySet<number> = new Set()) => {
  const times = new Map<number, Set<string>>()
  const origin = new Map<number, number>()
  for (const e of entries) {
    assert.strictEqual(e.result, e.i * e.i, `key ${e.i}: a wrong result`)
    let set = times.get(e.i)
    if (set === undefined) times.set(e.i, set = new Set())
    set.add(e.time)
    if (!origin.has(e.i)) origin.set(e.i, e.run)
  }
  assert.strictEqual(times.size, KEYS, "some keys have no entry")
  for (const [i, set] of times) {
    assert.isAtMost(set.size, twice.has(i) ? 2 : 1, `key ${i} has entries of ${set.size} bodies`)
  }
  return origin
}

/** The workflow a second time, one process: everything is answered by the store, no body runs. */
const rerun = async (env: Readonly<Record<string, string>>) => {
  const [w] = await startWorkers(1, env)
  const r = await finished(w!)
  assert.strictEqual(r.bodies, 0, "the rerun ran bodies")
  assert.strictEqual(r.stats.misses, 0)
  assert.strictEqual(r.stats.fromCheckpoint, KEYS)
}

// ---- the cases ------------------------------------------------------------------------

interface Backend {
  readonly name: string
  /** A fresh store: its `SQLW_STORE`, and a client on it (for the assertions). */
  readonly fresh: () => Promise<{ readonly store: string; readonly client: Layer.Layer<SqlClient.SqlClient, unknown> }>
}

/** Four processes over K keys: exactly K bodies, one entry each (plus the copies carried forward), no claim left. */
const splitCase = async (backend: Backend) => {
  const { client, store } = await backend.fresh()
  const bodiesFile = path.join(tempDir(), "bodies")
  const env = { SQLW_STORE: store, SQLW_KEYS: String(KEYS), SQLW_BODIES: bodiesFile }
  const workers = await startWorkers(4, env)
  const results = await Promise.all(workers.map(finished))

  const bodies = readBodies(bodiesFile)
  assert.strictEqual(bodies.total, KEYS, "bodies run in all")
  assert.strictEqual(bodies.started.size, KEYS)
  assert.strictEqual(results.reduce((n, r) => n + r.bodies, 0), KEYS)
  assert.strictEqual(results.reduce((n, r) => n + r.stats.misses, 0), KEYS)
  for (const r of results) {
    // Every call answered: by its own body, another process's entry (remote) or one found at once.
    assert.strictEqual((r.outcomes.miss ?? 0) + (r.outcomes.remote ?? 0) + (r.outcomes.checkpoint ?? 0), KEYS)
    assert.strictEqual(r.stats.hits, (r.outcomes.remote ?? 0) + (r.outcomes.checkpoint ?? 0))
  }
  assert.isAbove(results.reduce((n, r) => n + (r.outcomes.remote ?? 0), 0), 0, "no entry was served remote")
  assert.isAtLeast(results.filter((r) => r.bodies > 0).length, 2, "the work was not split")

  const { claimsLeft, entries } = await readStore(client, "shared")
  assert.strictEqual(claimsLeft, 0, "claims left in the store")
  const origin = checkEntries(entries)
  // Each key's entry comes from the run of the process that ran its body.
  const runOfPid = new Map<number, number>(workers.map((w, k) => [w.process.pid!, runNumber(results[k]!.run)]))
  for (const [i, pids] of bodies.started) assert.strictEqual(origin.get(i), runOfPid.get(pids[0]!), `key ${i}`)
  await rerun(env)
}

/**
 * Four processes, one SIGKILLed once 30% of the bodies have started: the others finish, a key
 * runs twice only if the killed one started it and did not write it, a rerun runs nothing.
 * Returns how long the others took after the kill.
 */
const killCase = async (backend: Backend, leaseMs: number): Promise<number> => {
  const { client, store } = await backend.fresh()
  const bodiesFile = path.join(tempDir(), "bodies")
  const env = { SQLW_STORE: store, SQLW_KEYS: String(KEYS), SQLW_BODIES: bodiesFile, SQLW_LEASE: String(leaseMs) }
  const workers = await startWorkers(4, env)
  await waitUntil("30% of the bodies started", () => readBodies(bodiesFile).total >= KEYS * 0.3)
  // The victim: a process with a body running now (so that it holds claims).
  const running = readBodies(bodiesFile).open
  const victim = workers.find((w) => [...running].some((b) => b.startsWith(`${w.process.pid} `))) ?? workers[0]!
  victim.signal("SIGKILL")
  const killedAt = Date.now()
  assert.strictEqual((await victim.exited).signal, "SIGKILL")
  const survivors = workers.filter((w) => w !== victim)
  await Promise.all(survivors.map(finished))
  const after = Date.now() - killedAt

  const { claimsLeft, entries } = await readStore(client, "shared")
  const victimRun = runNumber(victim.value("run")!)
  const bodies = readBodies(bodiesFile)
  const victimPid = victim.process.pid!
  const written = new Set(entries.filter((e) => e.run === victimRun).map((e) => e.i))
  // Started by the killed process and not written by it: these may run again elsewhere.
  const unwritten = new Set(
    [...bodies.started].filter(([i, pids]) => pids.includes(victimPid) && !written.has(i)).map(([i]) => i)
  )
  for (const [i, pids] of bodies.started) {
    assert.isAtMost(pids.length, unwritten.has(i) ? 2 : 1, `key ${i} ran ${pids.length} times`)
  }
  assert.strictEqual(bodies.started.size, KEYS)
  assert.isAtMost(bodies.total, KEYS + unwritten.size, "bodies run in all")
  checkEntries(entries, unwritten)
  assert.strictEqual(claimsLeft, 0, "claims left in the store (the killed process's were not all taken over)")
  await rerun(env)
  return after
}

/**
 * Four processes, one SIGSTOPped while it runs bodies and SIGCONTed after more than the lease:
 * the others take its keys over after the lease (they write entries for the keys it had
 * running), it finishes too (a second entry for those keys), and a rerun runs nothing.
 */
const stallCase = async (backend: Backend, leaseMs: number) => {
  const { client, store } = await backend.fresh()
  const bodiesFile = path.join(tempDir(), "bodies")
  const env = { SQLW_STORE: store, SQLW_KEYS: String(KEYS), SQLW_BODIES: bodiesFile, SQLW_LEASE: String(leaseMs) }
  const workers = await startWorkers(4, env)
  await waitUntil("30% of the bodies started", () => readBodies(bodiesFile).total >= KEYS * 0.3)
  let victim: Worker | undefined
  await waitUntil("a process runs a body", () => {
    const open = readBodies(bodiesFile).open
    victim = workers.find((w) => [...open].some((b) => b.startsWith(`${w.process.pid} `)))
    return victim !== undefined
  })
  victim!.signal("SIGSTOP")
  const victimPid = victim!.process.pid!
  const victimRun = runNumber(victim!.value("run")!)
  // What it had running when it stopped (its file writes stopped with it), and what it had
  // started and not written (running, or ended with the entry not written yet): the keys that
  // may run twice.
  const atStop = readBodies(bodiesFile)
  const stalled = [...atStop.open].filter((b) => b.startsWith(`${victimPid} `)).map((b) => Number(b.split(" ")[1]))
  // (A claim it had won and not started the body of yet counts too: it runs that body when it
  // resumes, whoever took the key over meanwhile.)
  const stopped = await readStore(client, "shared")
  const writtenAtStop = new Set(stopped.entries.filter((e) => e.run === victimRun).map((e) => e.i))
  const claimedAtStop = new Set(
    stopped.claims.filter((c) => c.owner === victim!.value("run")).map((c) => keyOfHash.get(c.hash)!)
  )
  const twice = new Set(
    [...atStop.started].filter(([i, pids]) => pids.includes(victimPid) && !writtenAtStop.has(i)).map(([i]) => i)
  )
  for (const i of claimedAtStop) twice.add(i)
  await new Promise((r) => setTimeout(r, leaseMs * 1.5 + 1000))
  victim!.signal("SIGCONT")
  await Promise.all(workers.map(finished))

  const { claimsLeft, entries } = await readStore(client, "shared")
  const bodies = readBodies(bodiesFile)
  for (const [i, pids] of bodies.started) {
    assert.isAtMost(pids.length, twice.has(i) ? 2 : 1, `key ${i} ran ${pids.length} times`)
  }
  assert.strictEqual(bodies.started.size, KEYS)
  checkEntries(entries, twice)
  // Taken over while it was stopped: another run has an entry of its own for each of them.
  for (const i of stalled) {
    const origins = new Set(entries.filter((e) => e.i === i && e.run !== victimRun).map((e) => e.time))
    const own = entries.filter((e) => e.i === i && e.run === victimRun).map((e) => e.time)
    assert.isTrue(
      [...origins].some((t) => !own.includes(t)),
      `key ${i} was not taken over while its holder was stopped`
    )
  }
  assert.strictEqual(claimsLeft, 0, "claims left in the store")
  await rerun(env)
  return stalled.length
}

// ---- PostgreSQL and SQLite -------------------------------------------------------------

const postgres: Backend = {
  name: "PostgreSQL",
  fresh: async () => {
    // A database of its own, dropped when the file's tests end.
    const scope = Effect.runSync(Scope.make())
    scopes.push(scope)
    const url = await Effect.runPromise(Scope.extend(pgDatabase, scope))
    return { store: url, client: PgClient.layer({ url: Redacted.make(url) }) }
  }
}
const scopes: Array<Scope.CloseableScope> = []
afterAll(() => Effect.runPromise(Effect.forEach(scopes, (s) => Scope.close(s, Exit.void), { discard: true })))

const sqlite: Backend = {
  name: "SQLite",
  fresh: async () => {
    const file = path.join(tempDir(), "dfk.db")
    const { SqliteClient } = await import("@effect/sql-sqlite-node")
    return { store: `sqlite:${file}`, client: SqliteClient.layer({ filename: file }) }
  }
}

describe("SqlStore shared by processes: PostgreSQL", () => {
  it("4 processes x 1,000 keys: exactly 1,000 bodies, one entry each", () => splitCase(postgres), 120_000)

  it(
    "one SIGKILLed after ~30%: the others finish, taking its keys over at once (60 s lease); a rerun runs nothing",
    async () => {
      const LEASE = 60_000
      const after = await killCase(postgres, LEASE)
      // A takeover by the lease alone could not have happened before the lease ran out.
      assert.isBelow(after, LEASE, "the survivors waited for the lease: the dead holder's lock was not seen")
    },
    120_000
  )

  it("one SIGSTOPped for more than the lease, then SIGCONTed: taken over after the lease, nothing breaks", async () => {
    await stallCase(postgres, 2_000)
  }, 120_000)
})

describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore shared by processes: SQLite"), () => {
  it("4 processes x 1,000 keys: exactly 1,000 bodies, one entry each", () => splitCase(sqlite), 120_000)

  it(
    "one SIGKILLed after ~30% (5 s lease): the others take its keys over after the lease; a rerun runs nothing",
    async () => {
      // (Long enough that a live process starved of CPU on a loaded machine still renews its
      // leases in time: a lease that lapses lets a second process run a key the test counts
      // as run once.)
      await killCase(sqlite, 5_000)
    },
    120_000
  )
})
