/**
 * The effect-dfk demo, behind `dfk demo` and `npm run demo` (`examples/demo.ts` starts it):
 * a workflow of CPU-bound apps (Monte Carlo estimates of pi, prime counts, word frequencies
 * over a generated corpus, and three "join" apps that call the others), memoized and
 * checkpointed as each task completes. Its apps use only the public API (`../mod.ts`).
 *
 * Run it twice: the second run serves every result from the checkpoint. Stop it with Ctrl-C
 * and run it again: it resumes and computes only what was not done.
 *
 * ```sh
 * npm run demo                          # 60 tasks, checkpoints under ./runinfo-demo
 * npm run demo -- --size small          # 12 small tasks
 * npm run demo -- --tasks 90 --scale 2 --run-dir /tmp/demo-runs
 * ```
 *
 * Options (or environment variables): `--tasks N` (`DEMO_TASKS`, at least 6), `--scale X`
 * (`DEMO_SCALE`, work per task), `--size small|normal|large` (`DEMO_SIZE`), `--run-dir DIR`
 * (`DEMO_RUN_DIR`), `--progress auto|line|steps|none` (`DEMO_PROGRESS`), `--verbose` (the
 * kernel's info logs), `--workers N` (`DEMO_WORKERS`: N processes share the work through one
 * SQL store, by default the SQLite file `<run-dir>/dfk.db`; see `./demo-workers.ts`),
 * `--store sqlite:PATH|postgres://…` (`DEMO_STORE`: the checkpoints in that SQL store).
 *
 * @module
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { clearImmediate, setImmediate } from "node:timers"
import { parseArgs } from "node:util"
import { App, Dfk } from "../mod.ts"
import type { AppCacheError, DfkDetailedStats, DfkError } from "../mod.ts"
import { type CliError, maskSecrets } from "./common.ts"
import { type Chunked, piSampler, primeCounter, wordCounter } from "./demo-work.ts"
import type { DemoWorkersError } from "./demo-workers.ts"

// ---------------------------------------------------------------------------------------
// Running CPU work inside Effect
// ---------------------------------------------------------------------------------------

/**
 * Lets the event loop run (timers, signals, I/O) between two chunks of CPU work.
 * `Effect.yieldNow()` is not enough on its own: Effect's scheduler resumes through
 * microtasks for up to 2048 yields in a row, so a Ctrl-C or the progress timer would wait.
 */
const breathe: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Which app bodies ran in this process (by task name): "computed now" versus "from checkpoint". */
class Executed extends Context.Tag("effect-dfk/demo/Executed")<Executed, Set<string>>() {}

/**
 * Runs a chunked job to the end, breathing between chunks, and returns its result with the
 * CPU time it took (the sum of its chunks, so two tasks sharing the thread are not counted twice).
 */
const compute = <A>(
  task: string,
  job: Chunked<A>
): Effect.Effect<{ readonly value: A; readonly ms: number }, never, Executed> =>
  Effect.gen(function*() {
    const executed = yield* Executed
    executed.add(task)
    let ms = 0
    for (;;) {
      const start = performance.now()
      const more = job.step()
      ms += performance.now() - start
      if (!more) break
      yield* breathe
    }
    return { value: job.result(), ms: Math.round(ms * 10) / 10 }
  })

// ---------------------------------------------------------------------------------------
// The apps
// ---------------------------------------------------------------------------------------

const Int = Schema.Int.pipe(Schema.nonNegative())
/** Every result records the compute time it cost, so a resumed run can say what it saved. */
const Ms = Schema.Number

const piTask = (seed: number) => `estimate_pi seed=${seed}`
const primeTask = (from: number, to: number) => `count_primes [${from}, ${to})`
const wordTask = (seed: number) => `word_freq chunk=${seed}`

/** Monte Carlo: how many of `samples` random points fall inside the quarter circle. */
const estimatePi = App.make(
  {
    name: "estimate_pi",
    input: Schema.Struct({ seed: Int, samples: Int }),
    output: Schema.Struct({ inside: Int, samples: Int, ms: Ms }),
    cache: true
  },
  ({ samples, seed }) =>
    Effect.map(compute(piTask(seed), piSampler(seed, samples)), ({ ms, value }) => ({ inside: value, samples, ms }))
)

/** How many primes lie in `[from, to)`. */
const countPrimes = App.make(
  {
    name: "count_primes",
    input: Schema.Struct({ from: Int, to: Int }),
    output: Schema.Struct({ count: Int, ms: Ms }),
    cache: true
  },
  ({ from, to }) =>
    Effect.map(compute(primeTask(from, to), primeCounter(from, to)), ({ ms, value }) => ({ count: value, ms }))
)

/** Generates one chunk of the corpus and counts its words. */
const wordFreq = App.make(
  {
    name: "word_freq",
    input: Schema.Struct({ seed: Int, words: Int }),
    output: Schema.Struct({ total: Int, counts: Schema.Record({ key: Schema.String, value: Int }), ms: Ms }),
    cache: true
  },
  ({ seed, words }) =>
    Effect.map(compute(wordTask(seed), wordCounter(seed, words)), ({ ms, value }) => ({ ...value, ms }))
)

/** Times a small synchronous merge, recording the task as executed. */
const merge = <A>(task: string, f: () => A) =>
  Effect.map(Executed, (executed) => {
    executed.add(task)
    const start = performance.now()
    const value = f()
    return { value, ms: Math.round((performance.now() - start) * 10) / 10 }
  })

/** A join app: calls `estimate_pi` for every seed (memo hits or shared in-flight calls) and combines them. */
const piSummary = App.make(
  {
    name: "pi_summary",
    input: Schema.Struct({ seeds: Schema.Array(Int), samples: Int }),
    output: Schema.Struct({ pi: Schema.Number, inside: Int, samples: Int, ms: Ms }),
    cache: true
  },
  ({ samples, seeds }) =>
    Effect.gen(function*() {
      const parts = yield* Effect.forEach(seeds, (seed) => estimatePi({ seed, samples }), { concurrency: "unbounded" })
      const { ms, value } = yield* merge("pi_summary", () => {
        const inside = parts.reduce((n, p) => n + p.inside, 0)
        const total = parts.reduce((n, p) => n + p.samples, 0)
        return { pi: (4 * inside) / total, inside, samples: total }
      })
      return { ...value, ms }
    })
)

/** A join app: calls `count_primes` for every range and adds them up. */
const primeSummary = App.make(
  {
    name: "prime_summary",
    input: Schema.Struct({ ranges: Schema.Array(Schema.Tuple(Int, Int)) }),
    output: Schema.Struct({ count: Int, from: Int, to: Int, ms: Ms }),
    cache: true
  },
  ({ ranges }) =>
    Effect.gen(function*() {
      const parts = yield* Effect.forEach(ranges, ([from, to]) => countPrimes({ from, to }), {
        concurrency: "unbounded"
      })
      const { ms, value } = yield* merge("prime_summary", () => ({
        count: parts.reduce((n, p) => n + p.count, 0),
        from: Math.min(...ranges.map(([from]) => from)),
        to: Math.max(...ranges.map(([, to]) => to))
      }))
      return { ...value, ms }
    })
)

/** A join app: calls `word_freq` for every chunk and merges the counts into a top ten. */
const wordSummary = App.make(
  {
    name: "word_summary",
    input: Schema.Struct({ seeds: Schema.Array(Int), words: Int }),
    output: Schema.Struct({
      total: Int,
      distinct: Int,
      top: Schema.Array(Schema.Tuple(Schema.String, Int)),
      ms: Ms
    }),
    cache: true
  },
  ({ seeds, words }) =>
    Effect.gen(function*() {
      const parts = yield* Effect.forEach(seeds, (seed) => wordFreq({ seed, words }), { concurrency: "unbounded" })
      const { ms, value } = yield* merge("word_summary", () => {
        const counts = new Map<string, number>()
        for (const part of parts) {
          for (const [word, n] of Object.entries(part.counts)) counts.set(word, (counts.get(word) ?? 0) + n)
        }
        const top = [...counts.entries()]
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, 10)
        return { total: parts.reduce((n, p) => n + p.total, 0), distinct: counts.size, top }
      })
      return { ...value, ms }
    })
)

// ---------------------------------------------------------------------------------------
// The workflow
// ---------------------------------------------------------------------------------------

/**
 * How big the demo is.
 *
 * @since 0.1.0
 */
export interface DemoOptions {
  /** Number of tasks (app calls in the plan), at least 6; default 60. */
  readonly tasks?: number | undefined
  /** Work per task; 1 is about a tenth of a second of CPU per task; default 1. */
  readonly scale?: number | undefined
  /** Where run directories and checkpoints go; default `"runinfo-demo"` (its own folder, apart from `runinfo`). */
  readonly runDir?: string | undefined
  /**
   * How progress is shown: `line` (one line rewritten on a terminal), `steps` (a line per
   * completed task), `none`, or `auto` (`line` on a terminal, else `steps`); default `auto`.
   */
  readonly progress?: "auto" | "line" | "steps" | "none" | undefined
  /** Where output goes; default `process.stdout`. */
  readonly write?: ((text: string) => void) | undefined
  /** Show the kernel's info logs ("Done checkpointing 1 tasks", ...); default `false`. */
  readonly verbose?: boolean | undefined
  /**
   * Run the workflow in this many processes at once, sharing one SQL store (`store`, by
   * default the SQLite file `<runDir>/dfk.db`): each runs the whole workflow, one task at a
   * time, and claims in the store split the tasks between them (each body runs once in all).
   * Default: one run in this process.
   *
   * @since 0.2.0
   */
  readonly workers?: number | undefined
  /**
   * A SQL store for the checkpoints, as `dfk --store` takes it: `sqlite:PATH` or
   * `postgres://…`. Default: the JSON Lines files under `runDir` (with `workers`, the SQLite
   * file `<runDir>/dfk.db`).
   *
   * @since 0.2.0
   */
  readonly store?: string | undefined
  /**
   * This process is worker number `worker` of a `workers` run (`./demo-workers.ts` starts it
   * so: `DFK_DEMO_WORKER`), reporting to its parent on stdout.
   *
   * @since 0.2.0
   */
  readonly worker?: number | undefined
  /**
   * How to start a worker process: the command and the arguments before the demo's options.
   * Default: this runtime with its own flags (`process.execPath`, `process.execArgv`) and this
   * script (`process.argv[1]`).
   *
   * @since 0.2.0
   */
  readonly workerCommand?: { readonly command: string; readonly args: ReadonlyArray<string> } | undefined
}

/**
 * What a demo run did.
 *
 * @since 0.1.0
 */
export interface DemoSummary {
  /** Tasks in the plan. */
  readonly tasks: number
  /** Tasks whose result came from a checkpoint of an earlier run. */
  readonly fromCheckpoint: number
  /** Tasks computed by this run. */
  readonly computed: number
  /** Wall time of the workflow, in milliseconds. */
  readonly wallMs: number
  /** Compute time recorded by the tasks served from the checkpoint: about what was saved. */
  readonly savedMs: number
  /** Compute time of the tasks computed by this run. */
  readonly computeMs: number
  /** SHA-256 of every task's result (timings left out): equal runs give equal digests. */
  readonly digest: string
  /** This run's directory, e.g. `runinfo-demo/003`. */
  readonly runDir: string
  /** The three summaries. */
  readonly pi: number
  /** Primes counted, and the range. */
  readonly primes: { readonly count: number; readonly from: number; readonly to: number }
  /** Words counted, distinct words, and the most frequent ones. */
  readonly words: {
    readonly total: number
    readonly distinct: number
    readonly top: ReadonlyArray<readonly [string, number]>
  }
  /**
   * With `workers`: each worker's run and how many task bodies it ran (their sum is
   * `computed` when no body ran twice).
   *
   * @since 0.2.0
   */
  readonly workers?: ReadonlyArray<{ readonly run: string; readonly computed: number }> | undefined
}

/**
 * One completed task, as reported to the progress display.
 *
 * @since 0.1.0
 */
export interface StepEvent {
  /** Tasks done so far, this one included. */
  readonly done: number
  /** Tasks in the plan. */
  readonly total: number
  /** The task's name, e.g. `count_primes [1000000000, 1000050000)`. */
  readonly task: string
  /** Whether this run computed it (or it came from a checkpoint). */
  readonly computed: boolean
  /** The compute time recorded with the result. */
  readonly ms: number
}

interface Step {
  readonly task: string
  readonly run: Effect.Effect<{ readonly ms: number }, AppCacheError, Dfk | Executed>
}

const PRIME_BASE = 1_000_000_000

/** The plan: `tasks - 3` leaf tasks, round-robin over the three kinds, then the three join apps. */
const plan = (
  tasks: number,
  scale: number
): {
  readonly steps: ReadonlyArray<Step>
  readonly summaries: Effect.Effect<Pick<DemoSummary, "pi" | "primes" | "words">, AppCacheError, Dfk | Executed>
} => {
  const samples = Math.max(1, Math.round(4_000_000 * scale))
  const width = Math.max(1, Math.round(50_000 * scale))
  const words = Math.max(1, Math.round(150_000 * scale))
  const piSeeds: Array<number> = []
  const ranges: Array<readonly [number, number]> = []
  const wordSeeds: Array<number> = []
  const steps: Array<Step> = []
  for (let i = 0; i < tasks - 3; i++) {
    const k = Math.floor(i / 3)
    if (i % 3 === 0) {
      const seed = k + 1
      piSeeds.push(seed)
      steps.push({ task: piTask(seed), run: estimatePi({ seed, samples }) })
    } else if (i % 3 === 1) {
      const from = PRIME_BASE + k * width
      ranges.push([from, from + width])
      steps.push({ task: primeTask(from, from + width), run: countPrimes({ from, to: from + width }) })
    } else {
      const seed = k + 1
      wordSeeds.push(seed)
      steps.push({ task: wordTask(seed), run: wordFreq({ seed, words }) })
    }
  }
  const pi = piSummary({ seeds: piSeeds, samples })
  const primes = primeSummary({ ranges })
  const corpus = wordSummary({ seeds: wordSeeds, words })
  steps.push({ task: "pi_summary", run: pi }, { task: "prime_summary", run: primes }, {
    task: "word_summary",
    run: corpus
  })
  // Served from the in-run memo once the steps above are done.
  const summaries = Effect.all({ pi, primes, corpus }).pipe(
    Effect.map(({ corpus, pi, primes }) => ({
      pi: pi.pi,
      primes: { count: primes.count, from: primes.from, to: primes.to },
      words: { total: corpus.total, distinct: corpus.distinct, top: corpus.top }
    }))
  )
  return { steps, summaries }
}

const withoutMs = (value: unknown): unknown => {
  const { ms: _ms, ...rest } = value as { ms?: number }
  return rest
}

/**
 * The workflow under an existing kernel: calls every task at once (the kernel's
 * `maxConcurrency` bounds how many bodies run), reports each completed one, and returns
 * the summary. Nothing is printed; `onStep` sees each completed task.
 *
 * @since 0.1.0
 */
export const demoWorkflow = (
  options: { readonly tasks?: number | undefined; readonly scale?: number | undefined },
  onStep: (event: StepEvent) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<DemoSummary, AppCacheError, Dfk> =>
  Effect.gen(function*() {
    const tasks = options.tasks ?? 60
    const scale = options.scale ?? 1
    if (!Number.isInteger(tasks) || tasks < 6) return yield* Effect.dieMessage("The demo needs at least 6 tasks")
    if (!(scale > 0) || !Number.isFinite(scale)) {
      return yield* Effect.dieMessage("The scale must be a number above zero")
    }
    const { steps, summaries } = plan(tasks, scale)
    const executed = yield* Executed
    const started = performance.now()
    let done = 0
    let savedMs = 0
    let computeMs = 0
    let fromCheckpoint = 0
    const results = yield* Effect.forEach(
      steps,
      (step) =>
        Effect.tap(step.run, (result) => {
          done++
          const computed = executed.has(step.task)
          if (computed) computeMs += result.ms
          else {
            fromCheckpoint++
            savedMs += result.ms
          }
          return onStep({ done, total: steps.length, task: step.task, computed, ms: result.ms })
        }),
      { concurrency: "unbounded" }
    )
    const wallMs = performance.now() - started
    const digest = createHash("sha256").update(JSON.stringify(results.map(withoutMs))).digest("hex")
    const dfk = yield* Dfk
    return {
      tasks: steps.length,
      fromCheckpoint,
      computed: steps.length - fromCheckpoint,
      wallMs,
      savedMs,
      computeMs,
      digest,
      runDir: dfk.runDir,
      ...(yield* summaries)
    }
  }).pipe(Effect.provideServiceEffect(Executed, Effect.sync(() => new Set<string>())))

/**
 * A duration for people: `1.4 s`, `12 s`.
 *
 * @since 0.2.0
 */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
const grouped = (n: number) => n.toLocaleString("en-US")

/**
 * A completed task as the demo prints it in `steps` mode.
 *
 * @since 0.2.0
 */
export const stepLine = (event: StepEvent, by?: string): string =>
  `step ${event.done}/${event.total} done: ${event.task} (${
    event.computed
      ? `computed in ${grouped(Math.round(event.ms))} ms${by === undefined ? "" : `, ${by}`}`
      : "from checkpoint"
  })\n`

/**
 * The closing lines of a demo run: the summaries, the results digest, where the results
 * are (`where`), and the `Done:` line (`extra` goes after its time).
 *
 * @since 0.2.0
 */
export const summaryText = (summary: DemoSummary, where: string, extra = ""): string => {
  const saved = summary.fromCheckpoint > 0 ? ` (about ${seconds(summary.savedMs)} of compute saved)` : ""
  return [
    `pi ≈ ${summary.pi.toFixed(6)}`,
    `primes in [${grouped(summary.primes.from)}, ${grouped(summary.primes.to)}): ${grouped(summary.primes.count)}`,
    `words: ${grouped(summary.words.total)} counted, ${summary.words.distinct} distinct; top: ${
      summary.words.top.slice(0, 5).map(([w, n]) => `${w} (${grouped(n)})`).join(", ")
    }`,
    `results digest: ${summary.digest.slice(0, 16)}`,
    where,
    `Done: ${summary.tasks} tasks, ${summary.fromCheckpoint} results from checkpoint, ${summary.computed} computed now, in ${
      seconds(summary.wallMs)
    }${saved}${extra}.`
  ].join("\n") + "\n"
}

/**
 * How progress is shown: `auto` is `line` on a terminal, else `steps`.
 *
 * @since 0.2.0
 */
export const progressMode = (progress: DemoOptions["progress"]): "line" | "steps" | "none" =>
  progress === undefined || progress === "auto" ? (process.stdout.isTTY ? "line" : "steps") : progress

/**
 * The demo's error: a failed app call, a kernel that cannot start or write, a store that
 * cannot be opened, a worker process that failed.
 *
 * @since 0.2.0
 */
export type DemoError = AppCacheError | DfkError | CliError | DemoWorkersError

/**
 * Runs the demo: a kernel with `task_exit` checkpoints under `runDir` (resuming from every
 * checkpoint there), the workflow, a progress display and a closing summary. With `workers`,
 * that many processes share the work (`./demo-workers.ts`); with `store`, the checkpoints are
 * in that SQL store.
 *
 * @since 0.1.0
 */
export const runDemo = (
  options: DemoOptions = {}
): Effect.Effect<DemoSummary, DemoError, FileSystem.FileSystem | Path.Path> =>
  options.worker !== undefined || options.workers !== undefined || options.store !== undefined
    ? Effect.flatMap(
      // Loaded on demand, with the SQL client it needs: a plain run needs neither.
      Effect.promise(() => import("./demo-workers.ts")),
      (workers) =>
        options.worker !== undefined
          ? workers.runWorker(options)
          : options.workers !== undefined
          ? workers.runWorkers(options)
          : workers.runOnStore(options)
    )
    : runInProcess(options)

/**
 * The demo in this process, on the `CheckpointStore` in the context (the JSON Lines files
 * when there is none): what `runDemo` does without `workers`.
 *
 * @since 0.2.0
 */
export const runInProcess = (
  options: DemoOptions = {},
  storeName?: string
): Effect.Effect<DemoSummary, AppCacheError | DfkError, FileSystem.FileSystem | Path.Path> => {
  const write = options.write ?? ((text: string) => {
    process.stdout.write(text)
  })
  const runDir = options.runDir ?? "runinfo-demo"
  const tasks = options.tasks ?? 60
  const progress = progressMode(options.progress)
  return Effect.gen(function*() {
    const dfk = yield* Dfk
    write(
      `effect-dfk demo: ${tasks} tasks (scale ${options.scale ?? 1}), at most 2 at once; this run is ${dfk.runDir}\n`
    )
    const started = performance.now()
    let done = 0
    const line = (stats: DfkDetailedStats) => {
      const width = 24
      const filled = Math.round((done / tasks) * width)
      return `[${"#".repeat(filled)}${
        ".".repeat(width - filled)
      }] ${done}/${tasks} done · ${stats.fromCheckpoint} from checkpoint · ${stats.running} running · ${
        seconds(performance.now() - started)
      }`
    }
    const draw = (stats: DfkDetailedStats) => Effect.sync(() => write(`\r${line(stats)}\x1b[K`))
    if (progress === "line") {
      // The kernel's live counters, redrawn at most every 100 ms as they change.
      yield* Dfk.progress({ interval: "100 millis" }).pipe(Stream.runForEach(draw), Effect.forkScoped)
    }
    const onStep = (event: StepEvent) =>
      Effect.sync(() => {
        done = event.done
        if (progress === "steps") write(stepLine(event))
      })
    const summary = yield* demoWorkflow(options, onStep).pipe(
      Effect.onInterrupt(() =>
        Effect.flatMap(Dfk.detailedStats, (stats) =>
          Effect.sync(() =>
            write(
              `${
                progress === "line" ? "\n" : ""
              }Interrupted: ${done} of ${tasks} tasks done (${stats.fromCheckpoint} from checkpoint), their results are checkpointed in ${dfk.checkpointDir}${
                storeName === undefined ? "" : ` of the store ${storeName}`
              }. Run again to resume.\n`
            )
          ))
      )
    )
    if (progress === "line") {
      yield* Effect.flatMap(Dfk.detailedStats, draw)
      write("\n")
    }
    write(summaryText(
      summary,
      storeName === undefined
        ? `checkpoint: ${dfk.checkpointDir}/tasks.jsonl`
        : `checkpoint: ${dfk.checkpointDir} in the store ${storeName}`
    ))
    return summary
  }).pipe(
    Effect.scoped,
    Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit", maxConcurrency: 2 })),
    Logger.withMinimumLogLevel(options.verbose === true ? LogLevel.Info : LogLevel.Warning)
  )
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

const SIZES = {
  small: { tasks: 12, scale: 0.5 },
  normal: { tasks: 60, scale: 1 },
  large: { tasks: 120, scale: 2 }
} as const

const USAGE = `Usage: npm run demo -- [--tasks N] [--scale X] [--size small|normal|large] [--run-dir DIR]
                       [--progress auto|line|steps|none] [--verbose] [--workers N] [--store STORE]
Checkpoints go under --run-dir (default runinfo-demo).
--workers N: N processes share the work through one SQL store (default the SQLite file
  <run-dir>/dfk.db), each running one task at a time; every task runs once in all.
--store sqlite:PATH | postgres://…: the checkpoints in that SQL store (with or without --workers).
Environment: DEMO_TASKS, DEMO_SCALE, DEMO_SIZE, DEMO_RUN_DIR, DEMO_PROGRESS, DEMO_WORKERS, DEMO_STORE.
`

/**
 * Reads the demo's options from the command line and the environment (flags win).
 *
 * @since 0.1.0
 */
export const parseDemoArgs = (
  argv: ReadonlyArray<string>,
  env: Record<string, string | undefined> = process.env
): DemoOptions | { readonly error: string } | "help" => {
  let values
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        tasks: { type: "string" },
        scale: { type: "string" },
        size: { type: "string" },
        "run-dir": { type: "string" },
        progress: { type: "string" },
        verbose: { type: "boolean" },
        workers: { type: "string" },
        store: { type: "string" },
        help: { type: "boolean", short: "h" }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) }
  }
  if (values.help === true) return "help"
  const sizeName = values.size ?? env.DEMO_SIZE ?? "normal"
  if (!(sizeName in SIZES)) {
    return { error: `Unknown size ${JSON.stringify(sizeName)}; expected small, normal or large` }
  }
  const size = SIZES[sizeName as keyof typeof SIZES]
  const tasksText = values.tasks ?? env.DEMO_TASKS
  const tasks = tasksText === undefined ? size.tasks : Number(tasksText)
  if (!Number.isInteger(tasks) || tasks < 6) return { error: "--tasks must be a whole number, 6 or more" }
  const scaleText = values.scale ?? env.DEMO_SCALE
  const scale = scaleText === undefined ? size.scale : Number(scaleText)
  if (!Number.isFinite(scale) || scale <= 0) return { error: "--scale must be a number above zero" }
  const progress = values.progress ?? env.DEMO_PROGRESS ?? "auto"
  if (!["auto", "line", "steps", "none"].includes(progress)) {
    return { error: `Unknown progress ${JSON.stringify(progress)}; expected auto, line, steps or none` }
  }
  const workersText = values.workers ?? env.DEMO_WORKERS
  const workers = workersText === undefined ? undefined : Number(workersText)
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 1 || workers > 64)) {
    return { error: "--workers must be a whole number from 1 to 64" }
  }
  const store = values.store ?? env.DEMO_STORE
  if (store !== undefined && !/^(sqlite:.|postgres(ql)?:\/\/)/i.test(store)) {
    return { error: "--store must be sqlite:PATH, postgres://… or postgresql://…" }
  }
  // A worker of a --workers run (demo-workers.ts): its number and store come in its environment.
  const worker = env.DFK_DEMO_WORKER === undefined ? undefined : Number(env.DFK_DEMO_WORKER)
  const runDir = values["run-dir"] ?? env.DEMO_RUN_DIR ?? "runinfo-demo"
  return {
    tasks,
    scale,
    runDir,
    progress: progress as DemoOptions["progress"],
    verbose: values.verbose === true,
    ...(worker !== undefined && Number.isInteger(worker) && worker >= 1
      ? { worker, store: env.DFK_DEMO_STORE ?? store ?? `sqlite:${runDir}/dfk.db` }
      : {
        ...(workers === undefined ? {} : { workers }),
        ...(store === undefined ? {} : { store })
      })
  }
}

/**
 * Exit codes: 0 done, 1 failed, 130 interrupted (Ctrl-C), like a shell. A finished demo exits
 * itself once stdout and stderr have taken what it wrote, even if a client library left a
 * handle open (see cli/main.ts).
 */
const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void) => {
  const code = Exit.isSuccess(exit)
    ? (typeof exit.value === "number" ? exit.value : 0)
    : Cause.isInterruptedOnly(exit.cause)
    ? 130
    : 1
  onExit(code)
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
}

/**
 * The demo as a program: reads the options from `argv` (the arguments after the script) and
 * the environment, prints the usage for `--help` (and, with status 2, for a bad option), and
 * otherwise runs the demo under `NodeRuntime.runMain`: exit status 0 when done, 1 when it
 * failed, 130 when interrupted (Ctrl-C). What `npm run demo` runs.
 *
 * @since 0.2.0
 */
export const demoMain = (argv: ReadonlyArray<string>): void => {
  const parsed = parseDemoArgs(argv)
  if (parsed === "help") {
    process.stdout.write(USAGE)
  } else if ("error" in parsed) {
    process.stderr.write(`${parsed.error}\n${USAGE}`)
    process.exitCode = 2
  } else {
    // `npm run demo | head`: a closed pipe ends the demo quietly instead of with a stack trace.
    process.stdout.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0)
      throw e
    })
    runDemo(parsed).pipe(
      Effect.as(0),
      // A store that cannot be opened, a worker that failed: one line, exit status 1.
      Effect.catchIf(
        (e): e is CliError | DemoWorkersError => e._tag === "CliError" || e._tag === "DemoWorkersError",
        (e) =>
          Effect.sync(() => {
            process.stderr.write(`demo: ${maskSecrets(e.message)}\n`)
            return 1
          })
      ),
      // The file system and paths only (all the demo needs): NodeContext.layer would also load
      // the command executor, the terminal and the workers, ~25 ms of every start.
      Effect.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)),
      NodeRuntime.runMain({ teardown })
    )
  }
}
