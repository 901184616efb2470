/**
 * `dfk explain <runDir> --app NAME --input JSON [--version V] [--ignore KEY…]`: computes the
 * memo key of a call and says whether a checkpoint under `runDir` holds it; on a miss, shows
 * the closest stored entries of that app and exactly which part of the key differs (or that
 * the key was invalidated). The logic is the library's (`Explanation.explain`, as in
 * `Dfk.explain`); this prints it.
 *
 * @module
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CheckpointFile, Explanation, Memo } from "../mod.ts"
import {
  appCounts,
  CliError,
  ExitStatus,
  formatAppCounts,
  json,
  loadRunDir,
  preview,
  printJson,
  printLines,
  runIdOf,
  usageError
} from "./common.ts"
import * as KeyOptions from "./keyOptions.ts"

/**
 * One line describing a difference, with stored text previewed and escaped for a terminal
 * (the library's `Explanation.describeDifference` for what has nothing to preview).
 *
 * @since 0.1.0
 */
export const describeDifference = (d: Explanation.Difference): string => {
  switch (d._tag) {
    case "Version":
      return `version: stored ${json(d.stored)}, asked ${json(d.asked)}`
    case "MissingKey":
      return `${d.path}: missing from the asked input (stored ${preview(d.stored, 60)})`
    case "ExtraKey":
      return `${d.path}: extra in the asked input (asked ${preview(d.asked, 60)}, not in the stored input)`
    case "Changed":
      return `${d.path}: changed: stored ${preview(d.stored, 60)}, asked ${preview(d.asked, 60)}`
    default:
      return Explanation.describeDifference(d)
  }
}

/**
 * What `dfk explain` found: the library's explanation (`Explanation.explain`, the logic of
 * `Dfk.explain`) of the call against every entry under the run dir, and the entries per app.
 *
 * @since 0.1.0
 */
export interface CliExplanation {
  /** The explanation. */
  readonly explanation: Explanation.Explanation
  /** Entries per app under the run dir (tombstones included). */
  readonly apps: ReadonlyMap<string, number>
}

/**
 * Explains the memo key of a call against every checkpoint under `runDir`, with
 * `Explanation.explain` (as `Dfk.explain` does against what a kernel sees). `input` is the
 * encoded input (plain JSON data).
 *
 * @since 0.1.0
 */
export const explain = (options: {
  readonly runDir: string
  readonly app: string
  readonly version: string | null
  readonly input: unknown
  readonly ignore: ReadonlyArray<string>
  readonly limit: number
}) =>
  Effect.gen(function*() {
    const key = yield* Memo.key({
      name: options.app,
      version: options.version,
      input: options.input,
      ignoreForCache: options.ignore
    }).pipe(Effect.catchTag("AppCacheError", (e) => usageError(`Invalid --input: ${e.reason}`)))
    const { entries } = yield* loadRunDir(options.runDir, true)
    // The asked input as it goes into the key, to compare with the stored input.
    const input = CheckpointFile.keyInput(options.input, options.ignore)
    const explanation = Explanation.explain(
      { app: options.app, version: options.version, input, key },
      entries.map((l) => ({ entry: l.entry, checkpoint: l.dir })),
      { closest: options.limit }
    )
    return { explanation, apps: appCounts(entries.map((l) => l.entry)) } satisfies CliExplanation
  })

/**
 * The `explain` subcommand. Exit status 0 on a hit, 1 on a miss.
 *
 * @since 0.1.0
 */
export const explainCommand = Command.make(
  "explain",
  {
    runDir: KeyOptions.runDirArg,
    app: KeyOptions.appOption("The app's name"),
    input: KeyOptions.inputOption("The call's input", ", e.g. '{\"x\":1}'"),
    version: KeyOptions.appVersionOption("The app's version (default none, null in the key)"),
    ignore: KeyOptions.ignoreOption,
    limit: Options.integer("closest").pipe(
      Options.withDescription("How many of the closest stored entries to show on a miss"),
      Options.withDefault(3)
    ),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print the explanation as JSON (the Explanation that Dfk.explain returns)")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const input = yield* KeyOptions.parseInput(args.input)
      const ignore = KeyOptions.ignoredKeys(args.ignore)
      const version = Option.getOrNull(args.version)
      const { apps, explanation: x } = yield* explain({
        runDir: args.runDir,
        app: args.app,
        version,
        input,
        ignore,
        limit: args.limit
      })
      if (args.json) {
        yield* printJson(x)
        if (x._tag === "Miss") return yield* new CliError({ message: "", code: ExitStatus.failed })
        return
      }
      const lines: Array<string> = []
      lines.push(`Key ${x.key}`)
      lines.push(
        `  of app ${json(args.app)}, version ${json(version)}, input ${preview(x.input, 80)}` +
          (ignore.length > 0 ? ` (ignoring ${ignore.join(", ")})` : "")
      )
      if (x._tag === "Hit") {
        lines.push(
          `Hit: stored in run ${yield* runIdOf(x.checkpoint!)} (${x.checkpoint}), result ${
            preview(x.result, 80)
          }, computed ${x.time}`
        )
        const others = yield* Effect.forEach(x.alsoIn, runIdOf)
        if (others.length > 0) lines.push(`  also stored in run ${others.join(", ")} (the last run wins on load)`)
        yield* printLines(lines)
        return
      }
      lines.push(`Miss: no checkpoint under ${args.runDir} holds this key`)
      const total = apps.get(args.app) ?? 0
      if (total === 0) {
        lines.push(`No stored entries of app ${json(args.app)}; stored apps: ${formatAppCounts(apps)}`)
      } else {
        const distinct = new Set<string>()
        lines.push(`Closest stored entries of app ${json(args.app)} (${x.closest.length} shown):`)
        for (const [i, c] of x.closest.entries()) {
          const n = c.differences.length
          lines.push(
            `  ${i + 1}. ${c.hash.slice(0, 12)} in run ${yield* runIdOf(c.checkpoint)}, computed ${c.time}, result ${
              c.result === undefined ? "(tombstone)" : preview(c.result, 40)
            }: ${n === 0 ? "no visible difference" : `${n} ${n === 1 ? "difference" : "differences"}`}`
          )
          for (const d of c.differences) {
            lines.push(`     ${describeDifference(d)}`)
            if (d._tag === "ExtraKey" && !d.path.includes(".", "input.".length) && !d.path.includes("[")) {
              distinct.add(d.path.slice("input.".length))
            }
          }
        }
        if (distinct.size > 0) {
          const keys = [...distinct].join(",")
          lines.push(
            `Hint: if the app leaves ${[...distinct].join(", ")} out of its key (ignoreForCache), pass --ignore ${keys}`
          )
        }
      }
      yield* printLines(lines)
      return yield* new CliError({ message: "", code: ExitStatus.failed })
    })
).pipe(Command.withDescription(
  "Compute the memo key of a call and say whether a checkpoint under runDir holds it; on a miss, show the closest " +
    "stored entries of the app and which part of the key differs (version, input keys and values). " +
    "Exit status 0 on a hit, 1 on a miss"
))
