/**
 * B9 and B10 (issue 13): SqlStore on PostgreSQL (a server of its own, started by
 * test/e2e/postgresServer.ts) and on SQLite (a temporary file), run by `bench/run.ts`.
 *
 * - B9, claims: the workflow of test/fixtures/sql-worker.ts (`task_exit`, `maxConcurrency:
 *   2`, K keys of 20 ms bodies) as 4 processes on one store, against the same workflow as one
 *   process; wall time from "go" to the last exit (the processes open their stores first);
 *   checks that exactly K bodies ran.
 * - B10, throughput: `task_exit` calls at concurrency 256 through a kernel on SqlStore (every
 *   call a miss: a lookup, a claim and an entry), against the same entries (read back from the
 *   store) inserted by the same client in statements of 256 rows, one after another (group
 *   commit with nothing else to do). Start-up: a fresh process that opens the store, builds the
 *   kernel and serves 10 calls from it, on a store of 10 entries and on one of 1,000,010.
 *
 * @module
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { execFile } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type { EncodedEntry } from "../mod.ts"
import { startPostgres } from "../test/e2e/postgresServer.ts"
import type { PostgresServer } from "../test/e2e/postgresServer.ts"
import type { Compiled } from "./compile.ts"
import { fmt, ROOT } from "./util.ts"

/** A row of the results (see `Row` in run.ts). */
export interface SqlRow {
  readonly id: string
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly clock?: "cpu" | "wall" | undefined
  readonly baseline?: { readonly name: string; readonly value: number } | undefined
  readonly ratio?: number | undefined
  readonly extra?: Record<string, unknown> | undefined
}

/** What run.ts hands these benchmarks. */
export interface SqlBenchContext {
  readonly compiled: Compiled
  readonly quick: boolean
  readonly tmpRoot: string
  readonly row: (row: SqlRow) => void
  readonly target: (id: string, goal: string, actual: string, pass: boolean | undefined) => void
  readonly log: (text: string) => void
  readonly median: (xs: ReadonlyArray<number>) => number
}

type SqlModule = typeof import("../sql.ts")
type Backend = "PostgreSQL" | "SQLite"

const quiet = Logger.minimumLogLevel(LogLevel.Warning)

/** A PostgreSQL server for the run, started at the first use; `stop` it at the end. */
export const postgres = (() => {
  let server: Promise<PostgresServer> | undefined
  let n = 0
  return {
    /** A fresh database on it: its URL. */
    database: async (label: string): Promise<string> => {
      server ??= startPostgres()
      const { url } = await server
      const name = `bench_${label}_${process.pid}_${n++}`
      await Effect.runPromise(
        Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
        )
      )
      const u = new URL(url)
      u.pathname = `/${name}`
      return u.toString()
    },
    stop: async () => {
      if (server !== undefined) await (await server).stop()
      server = undefined
    }
  }
})()

const sqliteFile = (ctx: SqlBenchContext, label: string) => {
  const dir = path.join(ctx.tmpRoot, `sqlite-${label}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(dir, { recursive: true })
  return path.join(dir, "dfk.db")
}

const clientOf = async (store: string): Promise<Layer.Layer<SqlClient.SqlClient, unknown>> =>
  store.startsWith("sqlite:")
    ? (await import("@effect/sql-sqlite-node/SqliteClient")).layer({ filename: store.slice("sqlite:".length) })
    : PgClient.layer({ url: Redacted.make(store) })

/** A fresh store of `backend`: its `SQLW_STORE` form. */
const freshStore = async (ctx: SqlBenchContext, backend: Backend, label: string) =>
  backend === "PostgreSQL" ? await postgres.database(label) : `sqlite:${sqliteFile(ctx, label)}`

// ---------------------------------------------------------------------------------------
// B9: claims, in child processes

interface WorkersRun {
  readonly ms: number
  readonly bodies: number
  readonly misses: number
}

/** Starts `n` workers on `store`, lets them go at once, and times them until the last exits. */
const runWorkers = (ctx: SqlBenchContext, n: number, env: Record<string, string>): Promise<WorkersRun> =>
  new Promise((resolve, reject) => {
    const children = Array.from({ length: n }, () =>
      spawn(process.execPath, [ctx.compiled.sqlWorker], {
        cwd: ROOT,
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, SQLW_WAIT: "1", ...env }
      }))
    const outs = children.map(() => ({ out: "", err: "" }))
    let ready = 0
    let exited = 0
    let t0 = 0
    let failed = false
    children.forEach((child, k) => {
      child.stdout!.setEncoding("utf8")
      child.stderr!.setEncoding("utf8")
      child.stdout!.on("data", (chunk: string) => {
        const before = outs[k]!.out
        outs[k]!.out += chunk
        if (!before.includes("ready\n") && outs[k]!.out.includes("ready\n") && ++ready === n) {
          t0 = performance.now()
          for (const c of children) c.stdin!.write("go\n")
        }
      })
      child.stderr!.on("data", (chunk: string) => (outs[k]!.err += chunk))
      child.on("close", (code) => {
        if (code !== 0 && !failed) {
          failed = true
          for (const c of children) c.kill("SIGKILL")
          return reject(new Error(`B9: a worker exited with ${code}:\n${outs[k]!.err}`))
        }
        if (++exited < n || failed) return
        const ms = performance.now() - t0
        const value = (text: string, prefix: string) =>
          text.split("\n").find((l) => l.startsWith(prefix + " "))?.slice(prefix.length + 1)
        const bodies = outs.reduce((s, o) => s + Number(value(o.out, "bodies")), 0)
        const misses = outs.reduce((s, o) => s + JSON.parse(value(o.out, "stats")!).misses, 0)
        resolve({ ms, bodies, misses })
      })
    })
  })

export const benchClaims = async (ctx: SqlBenchContext) => {
  const keys = ctx.quick ? 300 : 1000
  const reps = ctx.quick ? 1 : 3
  for (const backend of ["PostgreSQL", "SQLite"] as const) {
    ctx.log(`B9 claims on ${backend}: 4 processes vs 1, maxConcurrency 2, ${keys} keys of 20 ms ...`)
    const store = await freshStore(ctx, backend, "b9")
    const one: Array<number> = []
    const four: Array<number> = []
    let bodiesOk = true
    const bodiesSeen: Array<number> = []
    for (let r = 0; r < reps; r++) {
      for (const n of r % 2 === 0 ? [1, 4] : [4, 1]) {
        const env = {
          SQLW_STORE: store,
          SQLW_KEYS: String(keys),
          SQLW_SLEEP: "20",
          SQLW_SLOTS: "2",
          SQLW_RUNDIR: `b9-${n}-${r}`
        }
        const run = await runWorkers(ctx, n, env)
        if (run.bodies !== keys || run.misses !== keys) bodiesOk = false
        bodiesSeen.push(run.bodies)
        ;(n === 1 ? one : four).push(run.ms)
      }
    }
    const ms = ctx.median(four)
    const baseMs = ctx.median(one)
    // Reps run side by side: the median of the paired reps' ratios.
    const ratio = ctx.median(four.map((f, i) => one[i]! / f))
    ctx.row({
      id: "B9",
      name: `${backend}: 4 processes x maxConcurrency 2, ${fmt(keys)} keys of 20 ms bodies: wall time`,
      value: ms,
      unit: "ms",
      clock: "wall",
      baseline: { name: "ms: one process, maxConcurrency 2, the same keys", value: baseMs },
      ratio,
      extra: { four, one, bodies: bodiesSeen, ideal: (keys * 20) / 8 }
    })
    ctx.target(
      "B9",
      `${backend}: 4 processes <= 0.3x one process (wall time)`,
      `${(1 / ratio).toFixed(2)}x (${fmt(ms)} vs ${fmt(baseMs)} ms; ideal ${fmt((keys * 20) / 8)} ms)`,
      1 / ratio <= 0.3
    )
    ctx.target(
      "B9",
      `${backend}: exactly ${fmt(keys)} bodies run in all, every run`,
      `${bodiesSeen.join(", ")}`,
      bodiesOk
    )
  }
}

// ---------------------------------------------------------------------------------------
// B10: throughput (in this process) and start-up (in fresh processes)

const SmallInput = Schema.Struct({ x: Schema.Number, label: Schema.String })

interface EntryRowText {
  readonly hash: string
  readonly app: string
  readonly version: string | null
  readonly input: string
  readonly result: string
  readonly time: string
}

export const benchSqlThroughput = async (ctx: SqlBenchContext) => {
  const { App, Dfk } = ctx.compiled.lib
  const { SqlStore } = (await import(pathToFileURL(path.join(ctx.compiled.outDir, "sql.js")).href)) as SqlModule
  const M = ctx.quick ? 3_000 : 20_000
  const reps = ctx.quick ? 1 : 3
  const BATCH = 256
  let seq = 0
  const app = App.make(
    { name: "b10_cached", input: SmallInput, output: Schema.Number, cache: true },
    ({ x }) => Effect.succeed(x * 2)
  )
  for (const backend of ["PostgreSQL", "SQLite"] as const) {
    ctx.log(`B10 task_exit on SqlStore (${backend}), concurrency 256, ${fmt(M)} calls ...`)
    const kernelMs: Array<number> = []
    const rawMs: Array<number> = []
    for (let r = 0; r < reps; r++) {
      const store = await freshStore(ctx, backend, "b10")
      const client = await clientOf(store)
      const runDir = `b10-${r}`
      const rt = ManagedRuntime.make(
        Layer.merge(
          Dfk.layer({ runDir, checkpointMode: "task_exit" }).pipe(
            Layer.provide(SqlStore.layer().pipe(Layer.provide(client))),
            Layer.provide(Layer.merge(NodeContext.layer, quiet))
          ),
          quiet
        )
      )
      let rows: ReadonlyArray<EntryRowText>
      try {
        await rt.runPromise(Effect.void)
        const inputs = Array.from({ length: M }, () => ({ x: seq++, label: "small" }))
        const t0 = performance.now()
        await rt.runPromise(Effect.forEach(inputs, (i) => app(i), { concurrency: 256, discard: true }))
        kernelMs.push(performance.now() - t0)
        const stats = await rt.runPromise(Dfk.stats)
        if (stats.checkpointed !== M || stats.pending !== 0) {
          throw new Error(
            `B10: task_exit left entries unwritten: ${stats.checkpointed} written, ${stats.pending} pending`
          )
        }
        const dir = `${await rt.runPromise(Dfk.runDir)}/checkpoint`
        rows = await Effect.runPromise(
          Effect.flatMap(
            Effect.flatMap(Effect.promise(() => import("@effect/sql/SqlClient")), (m) => m.SqlClient),
            (sql) =>
              sql<
                EntryRowText
              >`SELECT hash, app, version, input, result, time FROM dfk_entries WHERE dir = ${dir} ORDER BY seq`
          ).pipe(Effect.provide(client)) as Effect.Effect<ReadonlyArray<EntryRowText>, unknown, never>
        )
        if (rows.length !== M) throw new Error(`B10: ${rows.length} entries in the store, not ${M}`)
      } finally {
        await rt.dispose()
      }
      // The baseline, right after, on the same database: the same entries, by the same client,
      // BATCH rows per INSERT, one statement after another (SQLite: with the store's
      // synchronous = NORMAL).
      rawMs.push(
        await Effect.runPromise(
          Effect.gen(function*() {
            const sql = yield* (yield* Effect.promise(() => import("@effect/sql/SqlClient"))).SqlClient
            if (backend === "SQLite") yield* sql.unsafe("PRAGMA synchronous = NORMAL")
            const rawDir = "raw/000/checkpoint"
            const t0 = performance.now()
            for (let i = 0; i < rows.length; i += BATCH) {
              yield* sql`INSERT INTO dfk_entries ${
                sql.insert(rows.slice(i, i + BATCH).map((e) => ({ dir: rawDir, run_dir: "raw", run: 0, ...e })))
              }`
            }
            return performance.now() - t0
          }).pipe(Effect.provide(client)) as Effect.Effect<number, unknown, never>
        )
      )
    }
    const rate = M / ctx.median(kernelMs) * 1000
    const rawRate = M / ctx.median(rawMs) * 1000
    const ratio = ctx.median(kernelMs.map((k, i) => rawMs[i]! / k))
    ctx.row({
      id: "B10",
      name: `${backend}: task_exit on SqlStore, concurrency 256, ${fmt(M)} calls`,
      value: rate,
      unit: "entries/s",
      clock: "wall",
      baseline: { name: `entries/s: the same entries, ${BATCH} rows per INSERT, same client`, value: rawRate },
      ratio,
      extra: { kernelMs, rawMs }
    })
    ctx.target(
      "B10",
      `${backend}: task_exit c=256 >= 0.5x a raw batched insert`,
      `${ratio.toFixed(2)}x (${fmt(rate)} vs ${fmt(rawRate)} entries/s)`,
      ratio >= 0.5
    )
  }
}

interface StartupResult {
  readonly ms: number
  readonly cpuMs: number
  readonly maxRssMB: number
  readonly startRssMB: number
  readonly fromCheckpoint: number
}

const runStartup = (ctx: SqlBenchContext, store: string, probes: number): Promise<StartupResult> =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [ctx.compiled.sqlStartupChild, store, "startup", String(probes)],
      { cwd: ROOT, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`B10 start-up child failed: ${err.message}\n${stderr}`))
        const r = JSON.parse(stdout.trim().split("\n").pop()!) as StartupResult
        if (r.fromCheckpoint !== probes) return reject(new Error(`B10: ${r.fromCheckpoint} of ${probes} probes served`))
        resolve(r)
      }
    )
  })

/** Makes a store with the probes' entries in run `startup/000`, and `filler` more entries there. */
const startupStore = async (ctx: SqlBenchContext, backend: Backend, probes: number, filler: number) => {
  const { Memo } = ctx.compiled.lib
  const { SqlStore } = (await import(pathToFileURL(path.join(ctx.compiled.outDir, "sql.js")).href)) as SqlModule
  const store = await freshStore(ctx, backend, filler === 0 ? "small" : "big")
  const client = await clientOf(store)
  const entries: Array<EncodedEntry> = Array.from({ length: probes }, (_, i) => ({
    hash: Effect.runSync(Memo.key({ name: "b10_probe", input: { i } })),
    app: "b10_probe",
    version: null,
    input: JSON.stringify({ i }),
    result: String(2 * i),
    time: new Date(0).toISOString()
  }))
  await Effect.runPromise(
    Effect.gen(function*() {
      const s = yield* SqlStore.make()
      const run = yield* s.runs!.allocate("startup")
      const dir = `${run}/checkpoint`
      yield* s.appendEncoded!(dir, entries)
      if (filler === 0) return
      const sql = yield* (yield* Effect.promise(() => import("@effect/sql/SqlClient"))).SqlClient
      if (backend === "PostgreSQL") {
        yield* sql`INSERT INTO dfk_entries (dir, run_dir, run, hash, app, version, input, result, time) SELECT ${dir}, 'startup', 0, lpad(to_hex(g), 64, '0'), 'filler', NULL, '{"i":' || g || '}', (2 * g)::text, '1970-01-01T00:00:00.000Z' FROM generate_series(1, ${filler}::int) g`
        yield* sql`ANALYZE dfk_entries`
      } else {
        yield* sql`WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ${filler}) INSERT INTO dfk_entries (dir, run_dir, run, hash, app, version, input, result, time) SELECT ${dir}, 'startup', 0, printf('%064x', x), 'filler', NULL, '{"i":' || x || '}', CAST(2 * x AS TEXT), '1970-01-01T00:00:00.000Z' FROM g`
        yield* sql`ANALYZE`
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(client),
      Effect.provide(Layer.merge(NodeContext.layer, quiet))
    ) as Effect.Effect<
      void,
      unknown,
      never
    >
  )
  return store
}

export const benchSqlStartup = async (ctx: SqlBenchContext) => {
  const PROBES = 10
  const big = ctx.quick ? 100_000 : 1_000_000
  const reps = ctx.quick ? 1 : 3
  for (const backend of ["PostgreSQL", "SQLite"] as const) {
    ctx.log(`B10 start-up on SqlStore (${backend}): ${PROBES} vs ${fmt(big + PROBES)} entries (making the stores) ...`)
    const small = await startupStore(ctx, backend, PROBES, 0)
    const large = await startupStore(ctx, backend, PROBES, big)
    const s: Array<StartupResult> = []
    const l: Array<StartupResult> = []
    for (let r = 0; r < reps; r++) {
      s.push(await runStartup(ctx, small, PROBES))
      l.push(await runStartup(ctx, large, PROBES))
    }
    const ms = ctx.median(l.map((x) => x.ms))
    const baseMs = ctx.median(s.map((x) => x.ms))
    const rss = ctx.median(l.map((x) => x.maxRssMB))
    const baseRss = ctx.median(s.map((x) => x.maxRssMB))
    ctx.row({
      id: "B10",
      name: `${backend}: start-up (open the store, build the kernel, serve ${PROBES} calls), ${
        fmt(big + PROBES)
      } entries`,
      value: ms,
      unit: "ms",
      clock: "wall",
      baseline: { name: `ms: the same on a store of ${PROBES} entries`, value: baseMs },
      ratio: baseMs / ms,
      extra: { large: l, small: s }
    })
    ctx.row({
      id: "B10",
      name: `${backend}: start-up peak RSS, ${fmt(big + PROBES)} entries`,
      value: rss,
      unit: "MB",
      baseline: { name: `MB: the same on a store of ${PROBES} entries`, value: baseRss },
      ratio: baseRss / rss
    })
    ctx.target(
      "B10",
      `${backend}: start-up with ${fmt(big + PROBES)} entries within 1.2x of ${PROBES}`,
      `${(ms / baseMs).toFixed(2)}x (${fmt(ms)} vs ${fmt(baseMs)} ms)`,
      ms / baseMs <= 1.2
    )
    ctx.target(
      "B10",
      `${backend}: start-up peak RSS with ${fmt(big + PROBES)} entries within +20 MB`,
      `${(rss - baseRss).toFixed(1)} MB (${rss.toFixed(0)} vs ${baseRss.toFixed(0)} MB)`,
      rss - baseRss <= 20
    )
    if (!small.startsWith("postgres")) {
      rmSync(path.dirname(small.slice("sqlite:".length)), { recursive: true, force: true })
      rmSync(path.dirname(large.slice("sqlite:".length)), { recursive: true, force: true })
    }
  }
}
