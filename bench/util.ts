/**
 * Shared helpers of the benchmark harness: the machine description, tinybench wrappers
 * that time batches of calls, and formatting.
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Bench } from "tinybench"

/** The repository root (the parent of `bench/`). */
export const ROOT = fileURLToPath(new URL("..", import.meta.url))

/** Where generated files live (gitignored). */
export const DATA_DIR = fileURLToPath(new URL("./.data/", import.meta.url))

/** What the figures were measured on. */
export interface Machine {
  /** CPU model, from `os.cpus()`. */
  readonly cpu: string
  /** Logical cores. */
  readonly cores: number
  /** Total memory in GiB. */
  readonly memoryGiB: number
  /** `process.version`. */
  readonly node: string
  /** The `effect` package version. */
  readonly effect: string
  /** Platform, release and architecture. */
  readonly os: string
  /** The commit measured, with `+dirty` when the work tree had changes under src/ or mod.ts. */
  readonly commit: string
}

const packageVersion = (name: string): string => {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")).version
  } catch {
    return "unknown"
  }
}

const gitCommit = (): string => {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "mod.ts"], { cwd: ROOT, encoding: "utf8" })
      .trim() !== ""
    return dirty ? `${head}+dirty` : head
  } catch {
    return "unknown"
  }
}

/** Describes this machine, and the library measured (`srcRoot`, default this repository). */
export const describeMachine = (srcRoot: string = ROOT): Machine => {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    effect: packageVersion("effect"),
    os: `${os.platform()} ${os.release()} ${os.arch()}`,
    commit: path.resolve(srcRoot) === path.resolve(ROOT)
      ? gitCommit()
      : `the tree at ${srcRoot} (repository at ${gitCommit()})`
  }
}

/** One benchmark figure with its same-process baseline (a row of `bench/results.json`). */
export interface Row {
  readonly id: string
  readonly name: string
  readonly value: number
  readonly unit: string
  /** `cpu`: process CPU time (immune to other processes); `wall`: elapsed time. */
  readonly clock?: "cpu" | "wall" | undefined
  readonly baseline?: { readonly name: string; readonly value: number } | undefined
  /** How many times better than the baseline (`> 1` beats it): faster, or less memory. */
  readonly ratio?: number | undefined
  readonly extra?: Record<string, unknown> | undefined
}

/** Time budgets of one run of the suite. */
export interface Budget {
  /** Whether this is the `--quick` smoke run. */
  readonly quick: boolean
  /** tinybench time budget per task, ms. */
  readonly timeMs: number
  /** tinybench warmup budget per task, ms. */
  readonly warmupMs: number
}

/** Which clock a figure is measured with. */
export type ClockKind = "cpu" | "wall"

/**
 * The process's CPU time (user + system, all threads), in ms. CPU-bound figures use it so
 * that other processes on the machine (these machines are shared) do not inflate them.
 */
export const cpuNow = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** The 1-minute load average, per core. */
export const loadPerCore = (): number => Math.round(os.loadavg()[0]! / os.cpus().length * 100) / 100

/** The outcome of a timed batch task. */
export interface Timing {
  /** Median time of one operation, in nanoseconds. */
  readonly nsPerOp: number
  /** Operations per second (from the median). */
  readonly opsPerSec: number
  /** Relative margin of error of the mean, percent. */
  readonly rme: number
  /** How many batches were timed. */
  readonly samples: number
}

/**
 * Times `fn`, which performs `batch` operations per call, with tinybench; returns the
 * per-operation figures (median over samples). `clock: "cpu"` measures the process's CPU
 * time instead of wall time (for CPU-bound work).
 */
export const timeBatch = async (
  budget: Budget,
  name: string,
  batch: number,
  fn: () => unknown | Promise<unknown>,
  clock: ClockKind = "wall"
): Promise<Timing> => {
  const bench = new Bench({
    ...(clock === "cpu" ? { now: cpuNow } : {}),
    name,
    time: budget.timeMs,
    warmupTime: budget.warmupMs,
    iterations: 5,
    warmupIterations: 2,
    throws: true
  })
  bench.add(name, fn)
  await bench.run()
  const task = bench.tasks[0]!
  const r = task.result
  if (r.state !== "completed") throw new Error(`Benchmark ${name} did not complete: ${r.state}`)
  const msPerBatch = r.latency.p50
  const nsPerOp = msPerBatch * 1e6 / batch
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp, rme: r.latency.rme, samples: r.latency.samplesCount }
}

/**
 * Runs `once` (which sets up, then times what it measures itself and returns ms) with
 * tinybench `reps` times; returns the median of the reported durations.
 */
export const timeOnce = async (
  name: string,
  reps: number,
  once: () => Promise<number>
): Promise<{ readonly ms: number; readonly samples: number; readonly all: ReadonlyArray<number> }> => {
  const all: Array<number> = []
  const bench = new Bench({ name, time: 0, iterations: reps, warmup: false, throws: true })
  bench.add(name, async () => {
    const ms = await once()
    all.push(ms)
    return { overriddenDuration: ms }
  })
  await bench.run()
  const r = bench.tasks[0]!.result
  if (r.state !== "completed") throw new Error(`Benchmark ${name} did not complete: ${r.state}`)
  return { ms: r.latency.p50, samples: r.latency.samplesCount, all }
}

/** Formats a number with a unit prefix-free, readable precision. */
export const fmt = (n: number, digits = 3): string => {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(digits)}M`
  if (abs >= 1e4) return `${(n / 1e3).toPrecision(digits)}k`
  if (abs >= 100) return n.toFixed(0)
  return n.toPrecision(digits)
}

/**
 * Lays out a table: the first row is the header; `align` has one letter per column,
 * `l` or `r` (default: the first two columns left, the others right).
 */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, align?: string): string => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  const left = (i: number) => align === undefined ? i < 2 : align[i] === "l"
  return rows.map((row, r) => {
    const line = row.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd()
    return r === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line
  }).join("\n")
}
