/**
 * The `dfk` command: inspect, explain, invalidate, verify, repair and compact effect-dfk checkpoints.
 *
 * ```sh
 * dfk runs [runDir] [--json]                          # one row per run
 * dfk show <checkpoint dir> [--app NAME] [--json]     # the entries of a checkpoint
 * dfk explain <runDir> --app NAME --input JSON [--app-version V] [--ignore KEY]... [--closest N]
 * dfk invalidate <runDir> --app NAME [--app-version V] [--input JSON] [--older-than D] [--dry-run]
 * dfk compact <runDir> [--out DIR] [--prune [--force]] # merge every checkpoint, last entry wins
 * dfk verify <checkpoint dir>... [--strict]           # torn and corrupt lines, with line numbers
 * dfk repair <checkpoint dir>                         # move bad lines to tasks.jsonl.bad
 * dfk demo [--size small]                             # the demo workflow
 * ```
 *
 * `--store sqlite:PATH` or `--store postgres://…` (`postgresql://` too; or `DFK_STORE`), given
 * before or after the command, works on a SQL store (`effect-dfk/sql`) instead of the JSON
 * Lines files, with the same run and checkpoint names (`nightly/003/checkpoint`) and the same
 * output; the connection URL is never printed (see `./store.ts`).
 *
 * Exit status: `0` success; `1` a miss (`explain`), a corrupt line (`verify`), a checkpoint
 * that cannot be loaded, a failed write; `2` bad usage: a bad path, bad JSON, a missing or
 * unknown option. Errors are one line on stderr. Every command has `--help`.
 *
 * Stored text (app names, inputs, results, paths) is printed with its control characters
 * escaped; help and usage errors carry ANSI colours only on a terminal without `NO_COLOR`.
 *
 * In the repository: `npm run dfk -- <command> ...` (compiled once to cached JavaScript by
 * `scripts/run.mjs`, then plain `node`), or `npx tsx cli/main.ts ...`.
 *
 * @module
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
// The version lives in package.json alone (deno.json's "version" is kept equal to it, checked by
// test/e2e/version.test.ts); the npm package's cli/main.js reads the generated package.json next to it.
import packageJson from "../package.json" with { type: "json" }
import { CliError, colorAllowed, escapeControls, ExitStatus, maskSecrets, plainConsole } from "./common.ts"
import { compactCommand } from "./compact.ts"
import { demoCommand } from "./demo.ts"
import { explainCommand } from "./explain.ts"
import { invalidateCommand } from "./invalidate.ts"
import { repairCommand } from "./repair.ts"
import { runsCommand } from "./runs.ts"
import { showCommand } from "./show.ts"
import { storeFromOption } from "./store.ts"
import { verifyCommand } from "./verify.ts"

/** The version `dfk --version` prints: the package's. */
const VERSION: string = packageJson.version

const SUBCOMMANDS = "runs, show, explain, invalidate, compact, verify, repair, demo"

/** `--store`: the JSON Lines files by default, or a SQL store. */
const storeOption = Options.text("store").pipe(
  Options.withDescription(
    "Where the checkpoints are: sqlite:PATH or postgres://… (postgresql://…) for a SQL store (effect-dfk/sql), " +
      "same run and checkpoint names; default the JSON Lines files. Also read from DFK_STORE"
  ),
  Options.withFallbackConfig(Config.string("DFK_STORE")),
  Options.optional
)

/** The root command with every subcommand. */
const dfkCommand = Command.make(
  "dfk",
  { store: storeOption },
  () =>
    new CliError({ message: `Missing command: one of ${SUBCOMMANDS} (dfk --help for details)`, code: ExitStatus.usage })
).pipe(
  Command.withDescription("Inspect, explain, invalidate, verify, repair and compact effect-dfk checkpoints"),
  Command.withSubcommands([
    runsCommand,
    showCommand,
    explainCommand,
    invalidateCommand,
    compactCommand,
    verifyCommand,
    repairCommand,
    demoCommand
  ]),
  // Every command runs on the store --store names (built only when a command runs, not for
  // --help); `demo` writes to it, so for the demo an SQLite file is made if it does not exist.
  Command.provide(({ store }) => storeFromOption(store, { create: commandOf(process.argv) === "demo" }))
)

/**
 * `--store` is an option of `dfk` itself, which @effect/cli reads before the command only;
 * this moves a `--store V` (or `--store=V`) given after the command to the front, so it works
 * in either place.
 *
 * `--version` is @effect/cli's built-in "show the version" flag, so `explain` and
 * `invalidate` take the app's version as `--app-version`; this turns `explain … --version V`
 * (and `--version=V`) into that. A bare `--version` still prints dfk's version.
 */
const rewriteArgs = (argv: ReadonlyArray<string>): Array<string> => {
  const out = [...argv.slice(0, 2)]
  const rest: Array<string> = []
  const store: Array<string> = []
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") {
      for (const a of argv.slice(i)) rest.push(a)
      break
    }
    if (arg.startsWith("--store=")) store.push(arg)
    else if (arg === "--store") {
      store.push(arg)
      if (i + 1 < argv.length) store.push(argv[++i]!)
    } else rest.push(arg)
  }
  for (const a of [...store, ...rest]) out.push(a)
  const at = Math.max(out.indexOf("explain", 2), out.indexOf("invalidate", 2))
  if (at === -1) return out
  for (let i = at + 1; i < out.length; i++) {
    const arg = out[i]!
    if (arg === "--") break
    if (arg.startsWith("--version=")) out[i] = "--app-version=" + arg.slice("--version=".length)
    else if (arg === "--version" && i + 1 < out.length) out[i] = "--app-version"
  }
  return out
}

/** The command `argv` runs (its first word after the options of dfk itself), if any. */
const commandOf = (argv: ReadonlyArray<string>): string | undefined => {
  const args = rewriteArgs(argv).slice(2)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--store") i++
    else if (!arg.startsWith("-")) return arg
  }
  return undefined
}

/**
 * Log lines (e.g. "Skipped a torn last line …") go to stderr, so stdout stays parsable; one
 * line each, with control characters escaped (they name checkpoint paths).
 */
const stderrLogger = Logger.make(({ logLevel, message }) => {
  const parts = Array.isArray(message) ? message : [message]
  globalThis.console.error(
    maskSecrets(escapeControls(`${logLevel.label.toLowerCase()}: ${parts.map(String).join(" ")}`))
  )
})

/** @effect/cli colours its help and usage errors; only on a terminal without NO_COLOR here. */
const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) =>
    Effect.withConsole(
      effect,
      plainConsole(console, {
        colorStdout: colorAllowed(process.stdout, process.env),
        colorStderr: colorAllowed(process.stderr, process.env)
      })
    )
  )

const cli = Command.run(dfkCommand, { name: "dfk", version: VERSION })

/**
 * Runs `dfk` with the given `argv` (runtime and script first, as in `process.argv`) and
 * returns the exit status. Errors are printed as one line on stderr.
 */
const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.suspend(() => cli(rewriteArgs(argv))).pipe(
    Effect.as(ExitStatus.ok as number),
    Effect.catchAll((e): Effect.Effect<number> => {
      // @effect/cli has already printed what is wrong with the command line.
      if (ValidationError.isValidationError(e)) return Effect.succeed(ExitStatus.usage)
      if (e instanceof CliError) {
        return e.message === ""
          ? Effect.succeed(e.code)
          : Effect.as(Console.error(maskSecrets(`dfk: ${escapeControls(e.message)}`)), e.code)
      }
      return Effect.as(Console.error(maskSecrets(`dfk: ${escapeControls(String(e))}`)), ExitStatus.failed)
    }),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause)
        : Effect.as(
          Console.error(maskSecrets(`dfk: unexpected error\n${escapeControls(Cause.pretty(cause), true)}`)),
          ExitStatus.failed as number
        )
    ),
    withPlainConsole,
    // What @effect/cli and the commands use (not NodeContext.layer, whose command executor and
    // workers no command needs: ~20 ms of every start).
    Effect.provide(
      Layer.mergeAll(
        NodeFileSystem.layer,
        NodePath.layer,
        NodeTerminal.layer,
        Logger.replace(Logger.defaultLogger, stderrLogger)
      )
    )
  )

/**
 * The exit status is the value of `main`; an interruption (Ctrl-C) is 130, as in a shell.
 * `runMain` exits at once only on a non-zero status; on 0 it lets the event loop drain, and a
 * client library may leave a handle open after its scope closed (a PostgreSQL store closed
 * right after it was made leaves its LISTEN connection: test/faults/SqlStoreListen.test.ts),
 * so a finished command exits itself, once stdout and stderr have taken what it wrote.
 */
const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void): void => {
  const code = Exit.isSuccess(exit)
    ? (typeof exit.value === "number" ? exit.value : ExitStatus.ok)
    : Cause.isInterruptedOnly(exit.cause)
    ? 130
    : ExitStatus.failed
  onExit(code)
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
}

main(process.argv).pipe(NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown }))
