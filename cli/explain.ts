/**
 * `dfk explain <runDir> --app NAME --input JSON [--version V] [--ignore KEY…]`: computes the
 * memo key of a call and says whether a checkpoint under `runDir` holds it; on a miss, shows
 * the closest stored entries of that app and exactly which part of the key differs.
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { CheckpointFile, Memo } from "../mod.ts"
import type { CheckpointEntry } from "../mod.ts"
import {
  appCounts,
  CliError,
  ExitStatus,
  formatAppCounts,
  json,
  loadRunDir,
  preview,
  printLines,
  usageError
} from "./common.ts"
import type { Located } from "./common.ts"

/**
 * One difference between a stored entry and the asked call.
 *
 * @since 0.1.0
 */
export type Difference =
  | { readonly kind: "version"; readonly stored: string | null; readonly asked: string | null }
  | { readonly kind: "missing"; readonly path: string; readonly stored: unknown }
  | { readonly kind: "extra"; readonly path: string; readonly asked: unknown }
  | { readonly kind: "changed"; readonly path: string; readonly stored: unknown; readonly asked: unknown }

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const member = (path: string, key: string) => IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

const sameJson = (a: unknown, b: unknown): boolean => {
  const x = Memo.canonicalJson(a)
  const y = Memo.canonicalJson(b)
  return Either.isRight(x) && Either.isRight(y) ? x.right === y.right : json(a) === json(b)
}

/**
 * The differences between a stored input and an asked one, down through nested objects
 * (arrays and other values are compared whole). Paths start at `input`.
 *
 * @since 0.1.0
 */
export const diffInputs = (stored: unknown, asked: unknown, path = "input"): Array<Difference> => {
  if (isPlainObject(stored) && isPlainObject(asked)) {
    const keys = [...new Set([...Object.keys(stored), ...Object.keys(asked)])].sort()
    const out: Array<Difference> = []
    for (const k of keys) {
      const inStored = Object.hasOwn(stored, k) && stored[k] !== undefined
      const inAsked = Object.hasOwn(asked, k) && asked[k] !== undefined
      const p = member(path, k)
      if (inStored && !inAsked) out.push({ kind: "missing", path: p, stored: stored[k] })
      else if (!inStored && inAsked) out.push({ kind: "extra", path: p, asked: asked[k] })
      else if (inStored && inAsked) {
        for (const d of diffInputs(stored[k], asked[k], p)) out.push(d)
      }
    }
    return out
  }
  return sameJson(stored, asked) ? [] : [{ kind: "changed", path, stored, asked }]
}

/**
 * Every difference between a stored entry and the asked call (version first).
 *
 * @since 0.1.0
 */
export const diffEntry = (entry: CheckpointEntry, version: string | null, input: unknown): Array<Difference> => {
  const out: Array<Difference> = []
  if (entry.version !== version) out.push({ kind: "version", stored: entry.version, asked: version })
  for (const d of diffInputs(entry.input, input)) out.push(d)
  return out
}

/**
 * One line describing a difference.
 *
 * @since 0.1.0
 */
export const describeDifference = (d: Difference): string => {
  switch (d.kind) {
    case "version":
      return `version: stored ${json(d.stored)}, asked ${json(d.asked)}`
    case "missing":
      return `${d.path}: missing from the asked input (stored ${preview(d.stored, 60)})`
    case "extra":
      return `${d.path}: extra in the asked input (asked ${preview(d.asked, 60)}, not in the stored input)`
    case "changed":
      return `${d.path}: changed: stored ${preview(d.stored, 60)}, asked ${preview(d.asked, 60)}`
  }
}

/**
 * The result of `explain`.
 *
 * @since 0.1.0
 */
export interface Explanation {
  /** The memo key of the asked call. */
  readonly key: string
  /** Whether a checkpoint under the run dir holds the key. */
  readonly hit: boolean
  /** The entries holding the key, oldest run first (the last one wins on load). */
  readonly found: ReadonlyArray<Located>
  /** On a miss: the closest stored entries of the app with their differences, closest first. */
  readonly closest: ReadonlyArray<{ readonly at: Located; readonly differences: ReadonlyArray<Difference> }>
  /** Entries per app under the run dir. */
  readonly apps: ReadonlyMap<string, number>
}

/**
 * Explains the memo key of a call against every checkpoint under `runDir`. `input` is the
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
    const found = entries.filter((l) => l.entry.hash === key)
    // The asked input as it goes into the key, to compare with the stored input.
    const asked = CheckpointFile.keyInput(options.input, options.ignore)
    // For each stored key of the app, its last entry (the one that wins on load).
    const latest = new Map<string, Located>()
    for (const l of entries) if (l.entry.app === options.app) latest.set(l.entry.hash, l)
    const closest = found.length > 0 ? [] : [...latest.values()]
      .map((at) => ({ at, differences: diffEntry(at.entry, options.version, asked) }))
      .sort((a, b) =>
        a.differences.length - b.differences.length ||
        (a.at.entry.time < b.at.entry.time ? 1 : a.at.entry.time > b.at.entry.time ? -1 : 0)
      )
      .slice(0, options.limit)
    return {
      key,
      hit: found.length > 0,
      found,
      closest,
      apps: appCounts(entries.map((l) => l.entry))
    } satisfies Explanation
  })

const parseInput = (text: string): Effect.Effect<unknown, CliError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) =>
      new CliError({
        message: `Invalid --input JSON: ${e instanceof Error ? e.message : String(e)}`,
        code: ExitStatus.usage
      })
  })

/**
 * The `explain` subcommand. Exit status 0 on a hit, 1 on a miss.
 *
 * @since 0.1.0
 */
export const explainCommand = Command.make(
  "explain",
  {
    runDir: Args.text({ name: "runDir" }).pipe(
      Args.withDescription("The run directory holding 000, 001, … (or a single checkpoint dir)")
    ),
    app: Options.text("app").pipe(Options.withDescription("The app's name")),
    input: Options.text("input").pipe(
      Options.withDescription("The call's input, ENCODED with the app's input schema, as JSON, e.g. '{\"x\":1}'")
    ),
    version: Options.text("app-version").pipe(
      Options.withDescription("The app's version (default none, null in the key); `--version V` is accepted too"),
      Options.optional
    ),
    ignore: Options.text("ignore").pipe(
      Options.withDescription(
        "An input key the app leaves out of the key (its ignoreForCache); repeat it or separate keys with commas"
      ),
      Options.repeated,
      Options.optional
    ),
    limit: Options.integer("closest").pipe(
      Options.withDescription("How many of the closest stored entries to show on a miss"),
      Options.withDefault(3)
    )
  },
  (args) =>
    Effect.gen(function*() {
      const input = yield* parseInput(args.input)
      const ignore = Option.getOrElse(args.ignore, () => []).flatMap((k) => k.split(",")).map((k) => k.trim()).filter((
        k
      ) => k !== "")
      const version = Option.getOrNull(args.version)
      const result = yield* explain({ runDir: args.runDir, app: args.app, version, input, ignore, limit: args.limit })
      const lines: Array<string> = []
      lines.push(`Key ${result.key}`)
      lines.push(
        `  of app ${json(args.app)}, version ${json(version)}, input ${
          preview(CheckpointFile.keyInput(input, ignore), 80)
        }` +
          (ignore.length > 0 ? ` (ignoring ${ignore.join(", ")})` : "")
      )
      if (result.hit) {
        const last = result.found[result.found.length - 1]!
        lines.push(
          `Hit: stored in run ${last.run} (${last.dir}), result ${
            preview(last.entry.result, 80)
          }, computed ${last.entry.time}`
        )
        const others = [...new Set(result.found.slice(0, -1).map((l) => l.run))].filter((r) => r !== last.run)
        if (others.length > 0) lines.push(`  also stored in run ${others.join(", ")} (the last run wins on load)`)
        yield* printLines(lines)
        return
      }
      lines.push(`Miss: no checkpoint under ${args.runDir} holds this key`)
      const total = result.apps.get(args.app) ?? 0
      if (total === 0) {
        lines.push(`No stored entries of app ${json(args.app)}; stored apps: ${formatAppCounts(result.apps)}`)
      } else {
        const distinct = new Set<string>()
        lines.push(`Closest stored entries of app ${json(args.app)} (${result.closest.length} shown):`)
        result.closest.forEach(({ at, differences }, i) => {
          const n = differences.length
          lines.push(
            `  ${i + 1}. ${at.entry.hash.slice(0, 12)} in run ${at.run}, computed ${at.entry.time}, result ${
              preview(at.entry.result, 40)
            }: ${n === 0 ? "no visible difference" : `${n} ${n === 1 ? "difference" : "differences"}`}`
          )
          for (const d of differences) {
            lines.push(`     ${describeDifference(d)}`)
            if (d.kind === "extra" && !d.path.includes(".", "input.".length) && !d.path.includes("[")) {
              distinct.add(d.path.slice("input.".length))
            }
          }
          if (n === 0) {
            lines.push(
              "     the stored hash does not match its app, version and input: the entry was edited or damaged"
            )
          }
        })
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
