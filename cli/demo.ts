/**
 * `dfk demo`: runs the demo workflow of `./demo-workflow.ts` (CPU-bound apps, checkpointed
 * as each task completes; run it twice to see the second run served from the checkpoint).
 *
 * @module
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { CliError, CliStore, ExitStatus } from "./common.ts"

const text = (name: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

/**
 * The `demo` subcommand. Its options are those of `npm run demo`, with the same
 * environment variables (`DEMO_TASKS`, `DEMO_SCALE`, `DEMO_SIZE`, `DEMO_RUN_DIR`,
 * `DEMO_PROGRESS`, `DEMO_WORKERS`); the flags win. `dfk --store` is its `--store`.
 *
 * @since 0.1.0
 */
export const demoCommand = Command.make(
  "demo",
  {
    tasks: text("tasks", "Number of tasks, 6 or more (default from --size)"),
    scale: text("scale", "Work per task; 1 is about a tenth of a second of CPU per task (default from --size)"),
    size: text("size", "small (12 tasks), normal (60) or large (120); default normal"),
    runDir: text("run-dir", "Where run directories and checkpoints go; default runinfo-demo"),
    progress: text("progress", "auto, line, steps or none; default auto (line on a terminal, else steps)"),
    workers: text(
      "workers",
      "Run in N processes sharing one SQL store (dfk --store, default the SQLite file <run-dir>/dfk.db), one task at a time each"
    ),
    verbose: Options.boolean("verbose").pipe(Options.withDescription("Show the kernel's info logs"))
  },
  (options) =>
    Effect.gen(function*() {
      // Loaded on demand: the other commands do not need the demo's code.
      const demo = yield* Effect.promise(() => import("./demo-workflow.ts"))
      const argv: Array<string> = []
      const pass = (flag: string, value: Option.Option<string>) => {
        if (Option.isSome(value)) argv.push(`--${flag}`, value.value)
      }
      pass("tasks", options.tasks)
      pass("scale", options.scale)
      pass("size", options.size)
      pass("run-dir", options.runDir)
      pass("progress", options.progress)
      pass("workers", options.workers)
      // dfk --store: the demo's checkpoints go there (and its workers share it).
      pass("store", Option.map((yield* CliStore).spec, Redacted.value))
      if (options.verbose) argv.push("--verbose")
      const parsed = demo.parseDemoArgs(argv)
      if (parsed === "help" || "error" in parsed) {
        return yield* new CliError({
          message: parsed === "help" ? "Unexpected --help" : parsed.error,
          code: ExitStatus.usage
        })
      }
      yield* demo.runDemo({
        ...parsed,
        // Workers are started as this command is: `dfk demo …`.
        workerCommand: { command: process.execPath, args: [...process.execArgv, process.argv[1]!, "demo"] }
      }).pipe(
        Effect.mapError((e) => new CliError({ message: `The demo failed: ${e.message}`, code: ExitStatus.failed }))
      )
    })
).pipe(Command.withDescription(
  "Run the demo workflow (CPU-bound apps checkpointed as each completes); run it twice, or stop it with Ctrl-C and " +
    "run it again, to see results served from the checkpoint"
))
