/**
 * The demo on a SQL store, and on many processes (`--workers N`): the parent starts N worker
 * processes of the same script, each running the whole workflow against one SQL store (by
 * default the SQLite file `<run-dir>/dfk.db`) with one task at a time (`maxConcurrency: 1`:
 * the bodies are CPU-bound on the JavaScript thread) and `task_exit` checkpoints. Claims in
 * the store (DESIGN §7) split the tasks: a worker runs a body only for a key no entry answers
 * and no other worker holds, and serves the others' results when they are written. The
 * parent shows the progress of all, and prints the same summary and results digest as a run
 * in one process: the results are the same whichever process computed them.
 *
 * A worker reports to its parent in lines `@dfk-demo <JSON>` on its stdout (its start, each
 * completed task, its summary); it learns that it is one, and its store, from the environment
 * (`DFK_DEMO_WORKER`, `DFK_DEMO_STORE`: a PostgreSQL URL is never put on a command line).
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { Dfk } from "../mod.ts"
import { CliError, CliStore, ExitStatus } from "./common.ts"
import {
  type DemoError,
  type DemoOptions,
  type DemoSummary,
  demoWorkflow,
  progressMode,
  runInProcess,
  seconds,
  stepLine,
  summaryText
} from "./demo-workflow.ts"
import { storeFromOption } from "./store.ts"

/**
 * A `--workers` run that failed: a worker process that failed or stopped, or workers that
 * disagree on the results.
 *
 * @since 0.2.0
 */
export class DemoWorkersError extends Data.TaggedError("DemoWorkersError")<{ readonly message: string }> {}

/** What a worker tells its parent, one line each. */
type WorkerMessage =
  | { readonly type: "start"; readonly run: string; readonly at: number }
  | { readonly type: "step"; readonly task: string; readonly computed: boolean; readonly ms: number }
  | { readonly type: "done"; readonly at: number; readonly summary: DemoSummary }

/** The start of a worker's report lines. */
const PREFIX = "@dfk-demo "

/** The store of a run: `store`, or the SQLite file `<runDir>/dfk.db`. */
const storeSpec = (options: DemoOptions): string => options.store ?? `sqlite:${options.runDir ?? "runinfo-demo"}/dfk.db`

/** The store's layer (and its `CliStore`), the SQLite file made if it does not exist yet, its tables too. */
const openStore = (spec: string) => storeFromOption(Option.some(spec), { create: true })

/**
 * The demo in this process on the SQL store `options.store` (what `runDemo` does with a
 * store and no `workers`).
 *
 * @since 0.2.0
 */
export const runOnStore = (
  options: DemoOptions
): Effect.Effect<DemoSummary, DemoError, FileSystem.FileSystem | Path.Path> =>
  Effect.flatMap(CliStore, (store) => runInProcess(options, store.name)).pipe(
    Effect.provide(openStore(storeSpec(options)))
  )

/**
 * One worker of a `--workers` run: the whole workflow on the store, one task at a time,
 * reported to the parent on stdout.
 *
 * @since 0.2.0
 */
export const runWorker = (
  options: DemoOptions
): Effect.Effect<DemoSummary, DemoError, FileSystem.FileSystem | Path.Path> => {
  const write = options.write ?? ((text: string) => {
    process.stdout.write(text)
  })
  const tell = (message: WorkerMessage) => Effect.sync(() => write(PREFIX + JSON.stringify(message) + "\n"))
  return Effect.gen(function*() {
    const dfk = yield* Dfk
    yield* tell({ type: "start", run: dfk.runDir, at: Date.now() })
    const summary = yield* demoWorkflow(
      options,
      (event) => tell({ type: "step", task: event.task, computed: event.computed, ms: event.ms })
    )
    yield* tell({ type: "done", at: Date.now(), summary })
    return summary
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Dfk.layer({ runDir: options.runDir ?? "runinfo-demo", checkpointMode: "task_exit", maxConcurrency: 1 })
    ),
    Effect.provide(openStore(storeSpec(options))),
    Logger.withMinimumLogLevel(options.verbose === true ? LogLevel.Info : LogLevel.Warning)
  )
}

/** One worker process, as the parent sees it. */
interface Worker {
  readonly n: number
  readonly child: ChildProcess
  /** Its exit status once it has ended and its output is read (128 + the signal's number when killed). */
  readonly closed: Promise<number>
  run?: string
  startedAt?: number
  done?: { readonly at: number; readonly summary: DemoSummary }
  computed: number
}

/** A task's progress over all workers. */
interface TaskState {
  /** Workers that reported it done. */
  reports: number
  /** Workers that ran its body. */
  computedBy: Array<number>
  /** Whether the parent counted it done (a worker ran it, or every worker served it from a checkpoint). */
  done: boolean
  ms: number
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

/** A child's exit status once it has ended and its output is read; 127 when it cannot start. */
const whenClosed = (child: ChildProcess): Promise<number> =>
  new Promise((resolve) => {
    child.once("error", (e) => {
      process.stderr.write(`Cannot start a worker: ${e.message}\n`)
      resolve(127)
    })
    child.once("close", (code, signal) => resolve(code ?? 128 + (SIGNALS[signal ?? ""] ?? 1)))
  })

/**
 * Ends a worker that still runs: it has 2 s to end by itself (a Ctrl-C reaches the whole
 * process group), then SIGTERM, then 10 s more before SIGKILL.
 */
const stop = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const term = setTimeout(() => child.kill("SIGTERM"), 2_000)
    const kill = setTimeout(() => child.kill("SIGKILL"), 12_000)
    child.once("close", () => {
      clearTimeout(term)
      clearTimeout(kill)
      resume(Effect.void)
    })
  })

/** The environment of a worker: its number and store, no `DFK_STORE` (the store is its own). */
const workerEnv = (n: number, spec: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, DFK_DEMO_WORKER: String(n), DFK_DEMO_STORE: spec }
  delete env.DFK_STORE
  return env
}

/**
 * The demo on `options.workers` processes sharing one SQL store (see the module's doc): what
 * `runDemo` does with `workers`.
 *
 * @since 0.2.0
 */
export const runWorkers = (
  options: DemoOptions
): Effect.Effect<DemoSummary, DemoError, FileSystem.FileSystem | Path.Path> => {
  const write = options.write ?? ((text: string) => {
    process.stdout.write(text)
  })
  const count = options.workers ?? 2
  const tasks = options.tasks ?? 60
  const runDir = options.runDir ?? "runinfo-demo"
  const spec = storeSpec(options)
  const progress = progressMode(options.progress)
  const command = options.workerCommand ?? { command: process.execPath, args: [...process.execArgv, process.argv[1]!] }
  return Effect.gen(function*() {
    // The store opened once here: its tables made, its driver loaded (a clear error now
    // rather than one from each worker), and its name.
    if (options.store === undefined) {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(runDir, { recursive: true }).pipe(
        Effect.mapError((e) =>
          new CliError({ message: `Cannot make ${runDir}: ${e.message}`, code: ExitStatus.failed })
        )
      )
    }
    const name = yield* Effect.scoped(
      Effect.map(Layer.build(openStore(spec)), (context) => Context.get(context, CliStore).name)
    )
    write(
      `effect-dfk demo: ${tasks} tasks (scale ${options.scale ?? 1}), ${count} worker ${
        count === 1 ? "process" : "processes"
      }, ` +
        `one task at a time each, sharing the store ${name}\n`
    )

    const args = [
      "--tasks",
      String(tasks),
      "--scale",
      String(options.scale ?? 1),
      "--run-dir",
      runDir,
      "--progress",
      "none",
      ...(options.verbose === true ? ["--verbose"] : [])
    ]
    const started = Date.now()
    const states = new Map<string, TaskState>()
    let done = 0
    let fromCheckpoint = 0
    let lastDraw = 0
    const draw = (force = false) => {
      if (progress !== "line") return
      const now = Date.now()
      if (!force && now - lastDraw < 100) return
      lastDraw = now
      const width = 24
      const filled = Math.round((done / tasks) * width)
      write(
        `\r[${"#".repeat(filled)}${
          ".".repeat(width - filled)
        }] ${done}/${tasks} done · ${fromCheckpoint} from checkpoint · ` +
          `${count} workers · ${seconds(now - started)}\x1b[K`
      )
    }
    const onStep = (worker: Worker, step: Extract<WorkerMessage, { type: "step" }>) => {
      const state = states.get(step.task) ?? { reports: 0, computedBy: [], done: false, ms: step.ms }
      states.set(step.task, state)
      state.reports++
      if (step.computed) {
        worker.computed++
        state.computedBy.push(worker.n)
        state.ms = step.ms
      }
      // Done once a worker ran it, or once every worker had it from a checkpoint.
      const now = step.computed || state.reports === count
      if (state.done || !now) return
      state.done = true
      done++
      if (!step.computed) fromCheckpoint++
      if (progress === "steps") {
        write(
          stepLine({ done, total: tasks, task: step.task, computed: step.computed, ms: step.ms }, `worker ${worker.n}`)
        )
      }
      draw()
    }
    const onLine = (worker: Worker, line: string) => {
      if (!line.startsWith(PREFIX)) return write(line + "\n")
      let message: WorkerMessage
      try {
        message = JSON.parse(line.slice(PREFIX.length))
      } catch {
        return write(line + "\n")
      }
      if (message.type === "start") {
        worker.run = message.run
        worker.startedAt = message.at
      } else if (message.type === "step") onStep(worker, message)
      else worker.done = { at: message.at, summary: message.summary }
    }

    const workers = yield* Effect.forEach(Array.from({ length: count }, (_, i) => i + 1), (n) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const child = spawn(command.command, [...command.args, ...args], {
            env: workerEnv(n, spec),
            stdio: ["ignore", "pipe", "inherit"]
          })
          const worker: Worker = { n, child, closed: whenClosed(child), computed: 0 }
          createInterface({ input: child.stdout! }).on("line", (line) => onLine(worker, line))
          return worker
        }),
        (worker) => stop(worker.child)
      ))
    yield* Effect.forEach(
      workers,
      (worker) =>
        Effect.flatMap(Effect.promise(() => worker.closed), (code) =>
          code === 0 && worker.done !== undefined
            ? Effect.void
            : Effect.fail(
              new DemoWorkersError({
                message: `worker ${worker.n}${worker.run === undefined ? "" : ` (run ${worker.run})`} ` +
                  (code === 0 ? "ended without its summary" : `failed with exit status ${code}`)
              })
            )),
      { concurrency: "unbounded", discard: true }
    ).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() =>
          write(
            `${
              progress === "line" ? "\n" : ""
            }Interrupted: ${done} of ${tasks} tasks done (${fromCheckpoint} from checkpoint), ` +
              `their results are in the store ${name}. Run again to resume.\n`
          )
        )
      )
    )
    draw(true)
    if (progress === "line") write("\n")

    const summaries = workers.map((w) => w.done!.summary)
    const digests = new Set(summaries.map((s) => s.digest))
    if (digests.size > 1) {
      return yield* new DemoWorkersError({
        message: `the workers disagree on the results (digests ${[...digests].join(", ")})`
      })
    }
    let savedMs = 0
    let computeMs = 0
    let computed = 0
    let twice = 0
    for (const state of states.values()) {
      if (state.computedBy.length > 0) {
        computed++
        computeMs += state.ms
        if (state.computedBy.length > 1) twice++
      } else savedMs += state.ms
    }
    const first = Math.min(...workers.map((w) => w.startedAt ?? started))
    const last = Math.max(...workers.map((w) => w.done!.at))
    const summary: DemoSummary = {
      ...summaries[0]!,
      fromCheckpoint: tasks - computed,
      computed,
      wallMs: last - first,
      savedMs,
      computeMs,
      runDir: workers[0]!.run ?? runDir,
      workers: workers.map((w) => ({ run: w.run ?? "?", computed: w.computed }))
    }
    write(summaryText(
      summary,
      `workers: ${
        workers.map((w) => `${w.n} in run ${w.run} (${w.computed} ${w.computed === 1 ? "body" : "bodies"})`).join(", ")
      }; ` +
        `the store: ${name}`,
      `; ${count} ${count === 1 ? "worker" : "workers"} ran ${workers.map((w) => w.computed).join(" + ")} bodies` +
        `${twice > 0 ? ` (${twice} in two workers)` : ""}, started in ${seconds(first - started)}`
    ))
    return summary
  }).pipe(Effect.scoped)
}
