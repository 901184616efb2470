/**
 * B9 and B10 of the suite (issue 13, items 4 and 6): the shared SQL store (DESIGN §7) on a real
 * PostgreSQL server (`test/e2e/postgresServer.ts`, started once for both) and on SQLite files,
 * through `@effect/sql-pg` and `@effect/sql-sqlite-node`.
 *
 * - B9: work split over processes: 1 vs 4 processes of `test/fixtures/sql-worker.ts` (compiled)
 *   on one fresh store, 1,000 keys of 20 ms bodies, `maxConcurrency: 2`; and the CPU-bound demo
 *   (`dfk demo --workers N`) for N = 1 vs 2.
 * - B10 (a): `task_exit` throughput at concurrency 256 against the same entries inserted by the
 *   same client in the batches the kernel wrote (group commit), same run, same database.
 * - B10 (b): start-up time and RSS of a fresh process whose first call is answered by a store of
 *   1 vs 1,000,001 entries.
 * - B10 (c): an entry write while the run holds 20,000 claims against one while it holds none
 *   (a claims table without statistics yet: a first big run).
 *
 * Every measurement gets a fresh database (PostgreSQL) or file (SQLite).
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdirSync, rmSync } from "node:fs"
import * as path from "node:path"
import type { EncodedEntry } from "../src/CheckpointStore.ts"
import { startPostgres } from "../test/e2e/postgresServer.ts"
import type { PostgresServer } from "../test/e2e/postgresServer.ts"
import type { Compiled } from "./compile.ts"
import { fmt, ROOT } from "./util.ts"
import type { Row } from "./util.ts"

/** A row of the suite's results (`bench/util.ts`'s `Row`, as `bench/run.ts` keeps them). */
export type SqlBenchRow = Row

/** What `bench/run.ts` hands B9 and B10. */
export interface SqlBenchContext {
  readonly compiled: Compiled
  readonly quick: boolean
  readonly tmpRoot: string
  readonly log: (text: string) => void
  readonly row: (row: SqlBenchRow) => void
  readonly target: (id: string, goal: string, actual: string, pass: boolean | undefined) => void
}

type Engine = "postgres" | "sqlite"
const ENGINES: ReadonlyArray<Engine> = ["postgres", "sqlite"]

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const quiet = Logger.minimumLogLevel(LogLevel.Warning)

// ---------------------------------------------------------------------------------------
// Stores: a fresh database (PostgreSQL) or file (SQLite) per measurement

/** A fresh, empty store: its spec (`postgres://…` or `sqlite:<file>`) and how to drop it. */
interface FreshStore {
  readonly engine: Engine
  readonly spec: string
  readonly client: () => Layer.Layer<SqlClient.SqlClient, unknown>
  readonly drop: () => Promise<void>
}

const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs `effect` on a client of `spec`, opened for it and closed after. */
const onStore = <A, E>(
  spec: string,
  effect: Effect.Effect<A, E, SqlClient.SqlClient>
): Promise<A> => Effect.runPromise(Effect.scoped(Effect.provide(effect, clientOf(spec))) as Effect.Effect<A>)

const clientOf = (spec: string, maxConnections?: number): Layer.Layer<SqlClient.SqlClient, unknown> =>
  spec.startsWith("sqlite:")
    ? SqliteClient.layer({ filename: spec.slice("sqlite:".length) })
    : PgClient.layer({
      url: Redacted.make(spec),
      ...(maxConnections === undefined ? {} : { maxConnections })
    })

class Stores {
  private seq = 0
  private constructor(readonly pg: PostgresServer, readonly dir: string) {}

  static async start(tmpRoot: string): Promise<Stores> {
    const pg = await startPostgres()
    const dir = path.join(tmpRoot, "sql")
    mkdirSync(dir, { recursive: true })
    return new Stores(pg, dir)
  }

  async fresh(engine: Engine): Promise<FreshStore> {
    const n = this.seq++
    if (engine === "sqlite") {
      const file = path.join(this.dir, `store-${n}.db`)
      const spec = `sqlite:${file}`
      return {
        engine,
        spec,
        client: () => clientOf(spec),
        drop: async () => {
          for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) rmSync(f, { force: true })
        }
      }
    }
    const name = `dfk_bench_${n}_${randomBytes(4).toString("hex")}`
    const admin = this.pg.url
    await onStore(admin, Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)))
    const spec = withDatabase(admin, name)
    return {
      engine,
      spec,
      client: () => clientOf(spec),
      drop: () =>
        onStore(
          admin,
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
        ).then(() => undefined)
    }
  }

  stop(): Promise<void> {
    return this.pg.stop()
  }
}

// ---------------------------------------------------------------------------------------
// Child processes

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** When it exited (`performance.now()` of this process). */
  readonly at: number
}

const run = (
  command: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>
): Promise<Exited> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_NO_WARNINGS: "1", ...env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8")
    child.stderr.setEncoding("utf8")
    child.stdout.on("data", (d: string) => (stdout += d))
    child.stderr.on("data", (d: string) => (stderr = (stderr + d).slice(-20_000)))
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, at: performance.now() }))
  })

const ok = (what: string, e: Exited): Exited => {
  if (e.code !== 0) throw new Error(`${what} failed (${e.code ?? e.signal}):\n${e.stdout.slice(-2000)}\n${e.stderr}`)
  return e
}

/** The value of a line `<prefix> <value>` of a worker's output. */
const valueOf = (stdout: string, prefix: string): string | undefined =>
  stdout.split("\n").find((l) => l.startsWith(prefix + " "))?.slice(prefix.length + 1)

// ---------------------------------------------------------------------------------------
// B9: splitting work over processes

interface SplitRun {
  readonly ms: number
  readonly bodies: ReadonlyArray<number>
  readonly callsMs: ReadonlyArray<number>
}

/** `n` workers of the fixture on `store`, all spawned at once: wall time from spawning to the last exit. */
const splitOnce = async (ctx: SqlBenchContext, store: FreshStore, n: number, keys: number): Promise<SplitRun> => {
  const env = { SQLW_STORE: store.spec, SQLW_KEYS: String(keys), SQLW_SLEEP: "20", SQLW_SLOTS: "2" }
  const t0 = performance.now()
  const exits = await Promise.all(
    Array.from({ length: n }, () => run(process.execPath, [ctx.compiled.sqlWorker], env))
  )
  const ms = Math.max(...exits.map((e) => e.at)) - t0
  exits.forEach((e) => ok("B9: a sql-worker process", e))
  const bodies = exits.map((e) => Number(valueOf(e.stdout, "bodies")))
  const callsMs = exits.map((e) => Number(valueOf(e.stdout, "ms")))
  const total = bodies.reduce((a, b) => a + b, 0)
  if (total !== keys) throw new Error(`B9: ${total} bodies ran in all for ${keys} keys (${bodies.join(" + ")})`)
  const check = await onStore(
    store.spec,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [e] = yield* sql<{ readonly n: number | string; readonly keys: number | string }>`
        SELECT COUNT(*) AS n, COUNT(DISTINCT hash) AS keys FROM dfk_entries WHERE run_dir = 'shared'`
      const [c] = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM dfk_claims`
      return { entries: Number(e!.n), keys: Number(e!.keys), claims: Number(c!.n) }
    })
  )
  if (check.entries !== keys || check.keys !== keys || check.claims !== 0) {
    throw new Error(
      `B9: the store holds ${check.entries} entries for ${check.keys} keys (want ${keys} each), ${check.claims} claims left`
    )
  }
  return { ms, bodies, callsMs }
}

interface DemoRun {
  readonly ms: number
  readonly digest: string
  readonly computeS: number
  readonly bodies: string
}

/** `dfk demo --workers n` (as `npm run dfk` runs it: the cached plain JavaScript of `scripts/run.mjs`) on a fresh SQLite store: spawn to exit. */
const demoOnce = async (ctx: SqlBenchContext, n: number, runDir: string): Promise<DemoRun> => {
  const args = [
    path.join(ROOT, "scripts", "run.mjs"),
    path.join(ROOT, "cli", "main.ts"),
    "demo",
    "--workers",
    String(n),
    "--run-dir",
    runDir,
    "--progress",
    "none",
    ...(ctx.quick ? ["--size", "small"] : [])
  ]
  const t0 = performance.now()
  const e = ok(`B9: dfk demo --workers ${n}`, await run(process.execPath, args, {}))
  const ms = e.at - t0
  const digest = /results digest: (\S+)/.exec(e.stdout)?.[1]
  const done = /^Done: .* in ([0-9.]+) s; (.*)$/m.exec(e.stdout)
  if (digest === undefined || done === null) throw new Error(`B9: unexpected demo output:\n${e.stdout}`)
  rmSync(runDir, { recursive: true, force: true })
  return { ms, digest, computeS: Number(done[1]), bodies: done[2]! }
}

/** B9: 1 vs 4 processes on one store, each engine; then the CPU-bound demo on 1 vs 2 workers. */
export const benchProcesses = async (ctx: SqlBenchContext, stores: Stores) => {
  const keys = ctx.quick ? 200 : 1000
  const reps = ctx.quick ? 1 : 2
  for (const engine of ENGINES) {
    const one: Array<SplitRun> = []
    const four: Array<SplitRun> = []
    for (let rep = 0; rep < reps; rep++) {
      // Alternate which goes first, so that both see the same drift of the machine's load.
      for (const n of rep % 2 === 0 ? [1, 4] : [4, 1]) {
        ctx.log(`B9 ${engine}: ${n} process${n > 1 ? "es" : ""} x maxConcurrency 2, ${keys} keys of 20 ms ...`)
        const store = await stores.fresh(engine)
        try {
          ;(n === 1 ? one : four).push(await splitOnce(ctx, store, n, keys))
        } finally {
          await store.drop()
        }
      }
    }
    const ratios = one.map((o, i) => four[i]!.ms / o.ms)
    const ratio = median(ratios)
    const ideal = keys * 20 / 2
    ctx.row({
      id: "B9",
      name: `${engine}: ${keys} keys of 20 ms, 4 processes (spawn to last exit)`,
      value: median(four.map((r) => r.ms)),
      unit: "ms",
      clock: "wall",
      baseline: { name: "1 process", value: median(one.map((r) => r.ms)) },
      // > 1 beats the baseline: how many times faster 4 processes are.
      ratio: 1 / ratio,
      extra: {
        keys,
        idealOneProcessMs: ideal,
        oneMs: one.map((r) => r.ms),
        fourMs: four.map((r) => r.ms),
        fourOverOne: ratios,
        bodiesPerProcess: four.map((r) => r.bodies),
        callsMsPerProcess: four.map((r) => r.callsMs),
        oneCallsMs: one.map((r) => r.callsMs[0])
      }
    })
    ctx.row({
      id: "B9",
      name: `  ${engine}: the calls alone (the slowest process's forEach, no start-up), 4 / 1`,
      value: median(four.map((r) => Math.max(...r.callsMs))),
      unit: "ms",
      clock: "wall",
      baseline: { name: "1 process", value: median(one.map((r) => r.callsMs[0]!)) },
      ratio: median(one.map((o, i) => o.callsMs[0]! / Math.max(...four[i]!.callsMs)))
    })
    ctx.target("B9", `${engine}: 4 processes / 1 process <= 0.3x`, `${ratio.toFixed(2)}x`, ratio <= 0.3)
  }

  // The CPU-bound demo: its own --workers, on a fresh SQLite file each time (<run-dir>/dfk.db).
  // First an untimed `dfk --help`, which fills scripts/run.mjs's cache of compiled JavaScript
  // when the sources changed since it was made: else the first timed run compiles (~1 s).
  ok(
    "B9: dfk --help (warms scripts/run.mjs's cache)",
    await run(process.execPath, [
      path.join(ROOT, "scripts", "run.mjs"),
      path.join(ROOT, "cli", "main.ts"),
      "--help"
    ], {})
  )
  const demo: Record<1 | 2, Array<DemoRun>> = { 1: [], 2: [] }
  for (let rep = 0; rep < reps; rep++) {
    for (const n of rep % 2 === 0 ? [1, 2] as const : [2, 1] as const) {
      ctx.log(`B9 demo --workers ${n}${ctx.quick ? " --size small" : ""} ...`)
      demo[n].push(await demoOnce(ctx, n, path.join(stores.dir, `demo-${rep}-${n}`)))
    }
  }
  const digests = new Set([...demo[1], ...demo[2]].map((d) => d.digest))
  const ratios = demo[1].map((d, i) => demo[2][i]!.ms / d.ms)
  const ratio = median(ratios)
  ctx.row({
    id: "B9",
    name: `demo${ctx.quick ? " --size small" : ""} (CPU-bound), --workers 2 (spawn to exit)`,
    value: median(demo[2].map((d) => d.ms)),
    unit: "ms",
    clock: "wall",
    baseline: { name: "--workers 1", value: median(demo[1].map((d) => d.ms)) },
    ratio: 1 / ratio,
    extra: {
      one: demo[1],
      two: demo[2],
      twoOverOne: ratios,
      digests: [...digests]
    }
  })
  ctx.row({
    id: "B9",
    name: "  demo: the tasks alone (its \"Done … in X s\"), --workers 2 / 1",
    value: median(demo[2].map((d) => d.computeS * 1000)),
    unit: "ms",
    clock: "wall",
    baseline: { name: "--workers 1", value: median(demo[1].map((d) => d.computeS * 1000)) },
    ratio: median(demo[1].map((d, i) => d.computeS / demo[2][i]!.computeS))
  })
  ctx.target("B9", "demo: time(--workers 2) / time(--workers 1) <= 0.59", `${ratio.toFixed(2)}x`, ratio <= 0.59)
  ctx.target(
    "B9",
    "demo: the same results digest for 1 and 2 workers",
    [...digests].join(", "),
    digests.size === 1
  )
}

// ---------------------------------------------------------------------------------------
// B10 (a): task_exit throughput against the same entries inserted in the same batches

const SmallInput = Schema.Struct({ x: Schema.Number, label: Schema.String })

/** Columns and indexes of the store's `dfk_entries` (src/internal/sqlStore/schema.ts), for the raw baseline's table. */
const createRawTable = (engine: Engine, table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const seq = engine === "postgres" ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
    yield* sql.unsafe(
      `CREATE TABLE ${table} (seq ${seq}, dir TEXT NOT NULL, run_dir TEXT, run INTEGER, hash TEXT NOT NULL, app TEXT NOT NULL, version TEXT, input TEXT NOT NULL, result TEXT NOT NULL, time TEXT NOT NULL)`
    )
    yield* sql.unsafe(`CREATE INDEX ${table}_dir ON ${table} (dir, seq)`)
    yield* sql.unsafe(`CREATE INDEX ${table}_key ON ${table} (run_dir, hash)`)
    yield* sql.unsafe(`CREATE INDEX ${table}_hash ON ${table} (hash, dir)`)
  })

// The store's own chunk (rows per INSERT); the kernel's batches at concurrency 256 fit in one.
const CHUNK = 400

/** The raw baseline: each batch the kernel wrote, as one transaction of multi-row INSERTs, one after another. */
const rawInsert = (table: string, batches: ReadonlyArray<ReadonlyArray<EncodedEntry>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const batch of batches) {
      yield* sql.withTransaction(Effect.gen(function*() {
        for (let i = 0; i < batch.length; i += CHUNK) {
          yield* sql`INSERT INTO ${sql(table)} ${
            sql.insert(
              batch.slice(i, i + CHUNK).map((e) => ({
                dir: "raw/000/checkpoint",
                run_dir: "raw",
                run: 0,
                hash: e.hash,
                app: e.app,
                version: e.version,
                input: e.input,
                result: e.result,
                time: e.time
              }))
            )
          }`
        }
      }))
    }
  })

interface ThroughputRun {
  readonly dfkMs: number
  readonly rawMs: number
  /** The same entries inserted in batches of 256. */
  readonly raw256Ms: number
  readonly noClaimsMs: number
  readonly batches: number
  readonly written: number
  /** Whether the batches are the kernel's own (recorded); else batches of 256. */
  readonly recorded: boolean
  readonly timedOut: boolean
}

/** One rep: the kernel's calls (claims on: default resume), the raw baseline, the calls with claims off. */
const throughputOnce = async (
  ctx: SqlBenchContext,
  store: FreshStore,
  calls: number,
  capMs: number,
  rep: number
): Promise<ThroughputRun> => {
  const { CheckpointFiles, CheckpointStore, Dfk } = ctx.compiled.lib
  const { SqlStore } = ctx.compiled.sqlLib
  const { App } = ctx.compiled.lib
  const app = App.make(
    { name: "b10_cheap", input: SmallInput, output: Schema.Number, cache: true },
    ({ x }) => Effect.succeed(x * 2)
  )
  const inputs = Array.from({ length: calls }, (_, i) => ({ x: i, label: `rep${rep}` }))
  const client = store.client()
  // The store, wrapped to record the batches the kernel writes (what it hands appendEncoded).
  const batches: Array<ReadonlyArray<EncodedEntry>> = []
  const recording = Layer.effect(
    CheckpointStore,
    Effect.map(CheckpointStore, (s) => ({
      ...s,
      ...(s.appendEncoded === undefined ? {} : {
        appendEncoded: (dir: string, entries: ReadonlyArray<EncodedEntry>, options?: unknown) => {
          batches.push(entries)
          return s.appendEncoded!(dir, entries, options as never)
        }
      })
    }))
  ).pipe(Layer.provide(SqlStore.layer()))
  const runCalls = async (runDir: string, claims: boolean) => {
    const base = Dfk.layer({ runDir, checkpointMode: "task_exit" })
    const kernel = claims ? base : base.pipe(Layer.provide(CheckpointFiles.none))
    const rt = ManagedRuntime.make(
      Layer.merge(
        kernel.pipe(Layer.provide(recording), Layer.provide(Layer.merge(NodeContext.layer, quiet))),
        quiet
      ).pipe(Layer.provide(client))
    )
    try {
      await rt.runPromise(Dfk.stats)
      const t0 = performance.now()
      const done = await rt.runPromise(
        Effect.forEach(inputs, app, { concurrency: 256, discard: true }).pipe(Effect.timeoutOption(capMs))
      )
      const ms = performance.now() - t0
      const stats = await rt.runPromise(Dfk.stats)
      if (done._tag === "None") return { ms: ms * calls / Math.max(1, stats.checkpointed), timedOut: true, stats }
      if (stats.checkpointed !== calls || stats.pending !== 0) {
        throw new Error(
          `B10: task_exit left entries unwritten: ${stats.checkpointed} written, ${stats.pending} pending`
        )
      }
      return { ms, timedOut: false, stats }
    } finally {
      await rt.dispose()
    }
  }
  const dfk = await runCalls("b10", true)
  let kernelBatches: Array<ReadonlyArray<EncodedEntry>> = [...batches]
  let written = kernelBatches.reduce((n, b) => n + b.length, 0)
  // A store that queues its own entries (`queue`) hands nothing to appendEncoded: then the
  // baseline writes the same entries (made here) in batches of 256, one per pass of c=256.
  const recorded = written === calls
  if (!recorded && !dfk.timedOut) {
    const all = inputs.map((input, i): EncodedEntry => ({
      hash: `${rep}`.padStart(8, "0") + String(i).padStart(56, "0"),
      app: "b10_cheap",
      version: null,
      input: JSON.stringify(input),
      result: String(input.x * 2),
      time: new Date().toISOString()
    }))
    kernelBatches = []
    for (let i = 0; i < all.length; i += 256) kernelBatches.push(all.slice(i, i + 256))
    written = calls
  }
  const rawMs = await onStore(
    store.spec,
    Effect.gen(function*() {
      yield* createRawTable(store.engine, "raw_entries")
      const t0 = performance.now()
      yield* rawInsert("raw_entries", kernelBatches)
      return performance.now() - t0
    })
  )
  // The same entries in batches of 256 (one per pass if every pass took all 256 calls' entries).
  const even: Array<ReadonlyArray<EncodedEntry>> = []
  const flat = kernelBatches.flat()
  for (let i = 0; i < flat.length; i += 256) even.push(flat.slice(i, i + 256))
  const raw256Ms = await onStore(
    store.spec,
    Effect.gen(function*() {
      yield* createRawTable(store.engine, "raw_entries_256")
      const t0 = performance.now()
      yield* rawInsert("raw_entries_256", even)
      return performance.now() - t0
    })
  )
  batches.length = 0
  const noClaims = await runCalls("b10-noclaims", false)
  return {
    dfkMs: dfk.ms,
    rawMs,
    raw256Ms,
    noClaimsMs: noClaims.ms,
    batches: kernelBatches.length,
    written,
    recorded,
    timedOut: dfk.timedOut
  }
}

/** B10 (a), each engine. */
export const benchThroughput = async (ctx: SqlBenchContext, stores: Stores) => {
  const calls = ctx.quick ? 2_000 : 10_000
  const reps = ctx.quick ? 1 : 3
  const capMs = ctx.quick ? 20_000 : 60_000
  for (const engine of ENGINES) {
    const runs: Array<ThroughputRun> = []
    for (let rep = 0; rep < reps; rep++) {
      ctx.log(`B10 ${engine}: task_exit, ${fmt(calls)} calls at concurrency 256, then the raw batched INSERTs ...`)
      const store = await stores.fresh(engine)
      try {
        runs.push(await throughputOnce(ctx, store, calls, capMs, rep))
      } finally {
        await store.drop()
      }
    }
    const ratio = median(runs.map((r) => r.rawMs / r.dfkMs))
    const dfkMs = median(runs.map((r) => r.dfkMs))
    ctx.row({
      id: "B10",
      value: calls / dfkMs * 1000,
      unit: "entries/s",
      clock: "wall",
      baseline: {
        name: "raw multi-row INSERTs in the kernel's batches",
        value: calls / median(runs.map((r) => r.rawMs)) * 1000
      },
      ratio,
      extra: { calls, runs, meanBatch: median(runs.map((r) => r.written / Math.max(1, r.batches))) },
      name: `${engine}: task_exit, ${fmt(calls)} calls at concurrency 256 (kernel's batches: ${
        fmt(median(runs.map((r) => r.written / Math.max(1, r.batches))))
      } entries on average)`
    })
    ctx.row({
      id: "B10",
      name: `  ${engine}: the same calls with claims and lookups off (CheckpointFiles.none)`,
      value: calls / median(runs.map((r) => r.noClaimsMs)) * 1000,
      unit: "entries/s",
      clock: "wall",
      baseline: { name: "raw, same batches", value: calls / median(runs.map((r) => r.rawMs)) * 1000 },
      ratio: median(runs.map((r) => r.rawMs / r.noClaimsMs))
    })
    ctx.row({
      id: "B10",
      name: `  ${engine}: task_exit against raw INSERTs of the same entries in batches of 256 (ideal group commit)`,
      value: calls / dfkMs * 1000,
      unit: "entries/s",
      clock: "wall",
      baseline: { name: "raw, batches of 256", value: calls / median(runs.map((r) => r.raw256Ms)) * 1000 },
      ratio: median(runs.map((r) => r.raw256Ms / r.dfkMs))
    })
    const timedOut = runs.some((r) => r.timedOut)
    ctx.target(
      "B10",
      `${engine}: task_exit c=256 >= 0.5x raw batched INSERTs`,
      `${ratio.toFixed(2)}x${timedOut ? " (timed out: rate so far)" : ""}`,
      ratio >= 0.5
    )
  }
}

// ---------------------------------------------------------------------------------------
// B10 (c): an entry write while the run holds many claims

/**
 * Milliseconds per `appendEncoded` of 70 entries (the kernel's batch at c=256 is about that)
 * while the run holds `held` other claims, on a fresh store whose claims table was filled just
 * now (no statistics of it yet: a first big run, whose claims pile up in the modes that end
 * them at the next pass, or with many bodies in flight).
 */
const heldWriteMs = async (ctx: SqlBenchContext, store: FreshStore, held: number): Promise<number> => {
  const { SqlStore } = ctx.compiled.sqlLib
  const writes = 20
  const hex = (i: number, tag: string) => tag + String(i).padStart(63, "0")
  return Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const s = yield* SqlStore.make()
      const run = yield* s.runs!.allocate("held")
      for (let i = 0; i < held; i += 1000) {
        const rows = Array.from({ length: Math.min(1000, held - i) }, (_, k) => ({
          run_dir: "held",
          hash: hex(i + k, "c"),
          owner: run,
          owner_key: null,
          expires: Number.MAX_SAFE_INTEGER
        }))
        yield* sql`INSERT INTO dfk_claims ${sql.insert(rows)}`
      }
      const t0 = performance.now()
      for (let w = 0; w < writes; w++) {
        yield* s.appendEncoded!(
          `${run}/checkpoint`,
          Array.from({ length: 70 }, (_, k) => ({
            hash: hex(w * 70 + k, "e"),
            app: "b10_held",
            version: null,
            input: `{"i":${w * 70 + k}}`,
            result: "0",
            time: new Date(0).toISOString()
          }))
        )
      }
      return (performance.now() - t0) / writes
    })).pipe(Effect.provide(store.client())) as Effect.Effect<number>
  )
}

/** B10 (c), each engine: writes while 20,000 claims are held against writes while none are. */
export const benchHeldClaims = async (ctx: SqlBenchContext, stores: Stores) => {
  const held = ctx.quick ? 5_000 : 20_000
  const reps = ctx.quick ? 1 : 3
  for (const engine of ENGINES) {
    ctx.log(`B10 ${engine}: entry writes while ${fmt(held)} claims are held vs none ...`)
    const none: Array<number> = []
    const many: Array<number> = []
    for (let rep = 0; rep < reps; rep++) {
      for (const [n, into] of [[0, none], [held, many]] as const) {
        const store = await stores.fresh(engine)
        try {
          into.push(await heldWriteMs(ctx, store, n))
        } finally {
          await store.drop()
        }
      }
    }
    ctx.row({
      id: "B10",
      name: `${engine}: a write of 70 entries while the run holds ${fmt(held)} claims (fresh table)`,
      value: median(many),
      unit: "ms",
      clock: "wall",
      baseline: { name: "same, no claims held", value: median(none) },
      ratio: median(none.map((a, i) => a / many[i]!)),
      extra: { held, none, many }
    })
  }
}

// ---------------------------------------------------------------------------------------
// B10 (b): start-up and memory with an empty and a full store

const PROBE_APP = "b10_probe"

/** Fills `store` (tables made by the store itself) with `n` filler entries plus the probe's, in run `startup/000`. */
const fillStore = async (ctx: SqlBenchContext, store: FreshStore, n: number): Promise<number> => {
  const { SqlStore } = ctx.compiled.sqlLib
  const { keyFromJson } = ctx.compiled.canonical
  // The store makes its tables (and whatever else it keeps) itself.
  await Effect.runPromise(
    Effect.scoped(Layer.build(SqlStore.layer().pipe(Layer.provide(store.client())))) as Effect.Effect<unknown>
  )
  const dir = "startup/000/checkpoint"
  const time = new Date(0).toISOString()
  const row = (i: number) => {
    const input = `{"i":${i}}`
    return {
      dir,
      run_dir: "startup",
      run: 0,
      hash: keyFromJson(PROBE_APP, null, input),
      app: PROBE_APP,
      version: null,
      input,
      result: String(i * 2),
      time
    }
  }
  const rowsPerInsert = 1000
  const perTransaction = 50_000
  await onStore(
    store.spec,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO dfk_runs (run_dir, n, started) VALUES ('startup', 0, 0)`
      yield* sql`INSERT INTO dfk_checkpoints (dir, run_dir, run) VALUES (${dir}, 'startup', 0)`
      for (let t = 0; t <= n; t += perTransaction) {
        yield* sql.withTransaction(Effect.gen(function*() {
          for (let i = t; i < Math.min(n + 1, t + perTransaction); i += rowsPerInsert) {
            const rows = Array.from({ length: Math.min(rowsPerInsert, n + 1 - i) }, (_, k) => row(i + k))
            yield* sql`INSERT INTO dfk_entries ${sql.insert(rows)}`
          }
        }))
      }
      if (store.engine === "postgres") yield* sql.unsafe("ANALYZE")
    })
  )
  return n // the probe: the last entry written
}

interface StartupRun {
  readonly sinceStartMs: number
  readonly buildMs: number
  readonly callMs: number
  readonly rssMB: number
  readonly maxRssMB: number
  readonly wallMs: number
}

const startupOnce = async (ctx: SqlBenchContext, store: FreshStore, probe: number): Promise<StartupRun> => {
  const t0 = performance.now()
  const e = ok(
    "B10: startup-child",
    await run(process.execPath, [ctx.compiled.startupChild, "startup", String(probe)], { B10_STORE: store.spec })
  )
  const r = JSON.parse(e.stdout.trim().split("\n").pop()!) as Omit<StartupRun, "wallMs">
  return { ...r, wallMs: e.at - t0 }
}

/** B10 (b), each engine: a store of 1 entry vs 1M + 1, fresh processes interleaved. */
export const benchStartup = async (ctx: SqlBenchContext, stores: Stores) => {
  const big = ctx.quick ? 100_000 : 1_000_000
  const reps = ctx.quick ? 2 : 5
  for (const engine of ENGINES) {
    const empty = await stores.fresh(engine)
    const full = await stores.fresh(engine)
    try {
      ctx.log(`B10 ${engine}: filling a store with ${fmt(big)} entries ...`)
      const t0 = performance.now()
      const probeFull = await fillStore(ctx, full, big)
      const fillMs = performance.now() - t0
      const probeEmpty = await fillStore(ctx, empty, 0)
      ctx.log(`B10 ${engine}: start-up with 1 vs ${fmt(big + 1)} entries, ${reps} fresh processes each ...`)
      const e: Array<StartupRun> = []
      const f: Array<StartupRun> = []
      for (let rep = 0; rep < reps; rep++) {
        if (rep % 2 === 0) {
          e.push(await startupOnce(ctx, empty, probeEmpty))
          f.push(await startupOnce(ctx, full, probeFull))
        } else {
          f.push(await startupOnce(ctx, full, probeFull))
          e.push(await startupOnce(ctx, empty, probeEmpty))
        }
      }
      const ratio = median(f.map((x, i) => x.sinceStartMs / e[i]!.sinceStartMs))
      const rssDelta = median(f.map((x) => x.rssMB)) - median(e.map((x) => x.rssMB))
      ctx.row({
        id: "B10",
        name: `${engine}: start-up to the first hit, ${fmt(big + 1)} entries in the store`,
        value: median(f.map((x) => x.sinceStartMs)),
        unit: "ms",
        clock: "wall",
        baseline: { name: "same, 1 entry", value: median(e.map((x) => x.sinceStartMs)) },
        ratio: 1 / ratio,
        extra: { fillMs, full: f, empty: e }
      })
      ctx.row({
        id: "B10",
        name: `  ${engine}: RSS after the first hit, ${fmt(big + 1)} entries`,
        value: median(f.map((x) => x.rssMB)),
        unit: "MB",
        baseline: { name: "same, 1 entry", value: median(e.map((x) => x.rssMB)) },
        ratio: median(e.map((x) => x.rssMB)) / median(f.map((x) => x.rssMB))
      })
      ctx.row({
        id: "B10",
        name: `  ${engine}: the kernel's build / the first call, ${fmt(big + 1)} entries`,
        value: median(f.map((x) => x.buildMs)),
        unit: "ms",
        clock: "wall",
        baseline: { name: "same, 1 entry", value: median(e.map((x) => x.buildMs)) },
        extra: { callMs: median(f.map((x) => x.callMs)), emptyCallMs: median(e.map((x) => x.callMs)) }
      })
      const size = big === 1_000_000 ? "1M" : fmt(big)
      ctx.target(
        "B10",
        `${engine}: start-up with ${size} entries within 1.2x of empty`,
        `${ratio.toFixed(2)}x`,
        ratio <= 1.2
      )
      ctx.target(
        "B10",
        `${engine}: RSS with ${size} entries within +20 MB of empty`,
        `${rssDelta >= 0 ? "+" : ""}${rssDelta.toFixed(1)} MB`,
        rssDelta <= 20
      )
    } finally {
      await empty.drop()
      await full.drop()
    }
  }
}

/** B9 and B10 (those of `ids` enabled), on one PostgreSQL server started for them. */
export const benchSql = async (ctx: SqlBenchContext, ids: { readonly b9: boolean; readonly b10: boolean }) => {
  ctx.log("B9/B10: starting PostgreSQL ...")
  const stores = await Stores.start(ctx.tmpRoot)
  try {
    if (ids.b9) await benchProcesses(ctx, stores)
    if (ids.b10) {
      await benchThroughput(ctx, stores)
      await benchHeldClaims(ctx, stores)
      await benchStartup(ctx, stores)
    }
  } finally {
    await stores.stop()
  }
}
