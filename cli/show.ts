/**
 * `dfk show <checkpoint dir> [--app NAME] [--json]`: the entries of one checkpoint.
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { loadCheckpoint, preview, printJson, printLines, resolveCheckpoint, table } from "./common.ts"

/**
 * The `show` subcommand.
 *
 * @since 0.1.0
 */
export const showCommand = Command.make(
  "show",
  {
    checkpoint: Args.text({ name: "checkpoint dir" }).pipe(
      Args.withDescription("A checkpoint dir (runinfo/001/checkpoint), its run dir, or its tasks.jsonl")
    ),
    app: Options.text("app").pipe(Options.withDescription("Only the entries of this app"), Options.optional),
    json: Options.boolean("json").pipe(Options.withDescription("Print the entries, in full, as a JSON array"))
  },
  ({ app, checkpoint, json }) =>
    Effect.gen(function*() {
      const dir = yield* resolveCheckpoint(checkpoint)
      const all = yield* loadCheckpoint(dir)
      const entries = Option.match(app, { onNone: () => all, onSome: (name) => all.filter((e) => e.app === name) })
      if (json) {
        const out = entries.map((e) =>
          e.deleted === true
            ? { hash: e.hash, app: e.app, version: e.version, input: e.input, deleted: true, time: e.time }
            : { hash: e.hash, app: e.app, version: e.version, input: e.input, result: e.result, time: e.time }
        )
        return yield* printJson(out)
      }
      if (entries.length === 0) {
        return yield* printLines([
          Option.isSome(app)
            ? `No entries of app ${app.value} in ${dir} (${all.length} in all)`
            : `No entries in ${dir}`
        ])
      }
      const rows = table(
        ["HASH", "APP", "VERSION", "INPUT", "RESULT", "TIME"],
        entries.map((e) => [
          e.hash.slice(0, 12),
          e.app,
          e.version ?? "-",
          preview(e.input, 48),
          e.deleted === true ? "(tombstone)" : preview(e.result, 32),
          e.time
        ])
      )
      yield* printLines([
        ...rows.split("\n"),
        `${entries.length} ${entries.length === 1 ? "entry" : "entries"}` +
        (Option.isSome(app) ? ` of app ${app.value} (${all.length} in all)` : "") + ` in ${dir}`
      ])
    })
).pipe(
  Command.withDescription(
    "Show the entries of a checkpoint: hash prefix, app, version, input, result preview (a tombstone: (tombstone)), time"
  )
)
