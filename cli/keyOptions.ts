/**
 * The arguments and options of the commands that name memo keys, `dfk explain` and
 * `dfk invalidate`: the run dir, `--app`, `--app-version`, `--input` and `--ignore`, and the
 * reading of `--input` and `--ignore`. Each command words the help of `--app`,
 * `--app-version` and `--input` for what it does with them.
 *
 * (Not in `common.ts`: the demo loads that, without `@effect/cli`.)
 *
 * @module
 */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError, ExitStatus } from "./common.ts"

/**
 * The run dir argument of `explain` and `invalidate`: a run dir, or a single checkpoint dir.
 *
 * @since 0.2.0
 */
export const runDirArg: Args.Args<string> = Args.text({ name: "runDir" }).pipe(
  Args.withDescription("The run directory holding 000, 001, … (or a single checkpoint dir)")
)

/**
 * `--app NAME`, with the command's help text.
 *
 * @since 0.2.0
 */
export const appOption = (description: string): Options.Options<string> =>
  Options.text("app").pipe(Options.withDescription(description))

/**
 * `--app-version V`, optional, with the command's help text (`--version V` is accepted too:
 * `main.ts` turns it into this, `--version` being @effect/cli's own flag).
 *
 * @since 0.2.0
 */
export const appVersionOption = (description: string): Options.Options<Option.Option<string>> =>
  Options.text("app-version").pipe(
    Options.withDescription(`${description}; \`--version V\` is accepted too`),
    Options.optional
  )

/**
 * `--input JSON`: an input ENCODED with the app's input schema, as JSON (read with
 * `parseInput`). `description` says which input; `example` follows the help text.
 *
 * @since 0.2.0
 */
export const inputOption = (description: string, example = ""): Options.Options<string> =>
  Options.text("input").pipe(
    Options.withDescription(`${description}, ENCODED with the app's input schema, as JSON${example}`)
  )

/**
 * `--ignore`: an input key the app leaves out of its key, repeated or separated by commas.
 *
 * @since 0.2.0
 */
export const ignoreOption: Options.Options<Option.Option<Array<string>>> = Options.text("ignore").pipe(
  Options.withDescription(
    "An input key the app leaves out of the key (its ignoreForCache); repeat it or separate keys with commas"
  ),
  Options.repeated,
  Options.optional
)

/**
 * The JSON of `--input`; bad JSON is exit status 2.
 *
 * @since 0.2.0
 */
export const parseInput = (text: string): Effect.Effect<unknown, CliError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) =>
      new CliError({
        message: `Invalid --input JSON: ${e instanceof Error ? e.message : String(e)}`,
        code: ExitStatus.usage
      })
  })

/**
 * The keys of `--ignore` (repeated, or separated by commas).
 *
 * @since 0.2.0
 */
export const ignoredKeys = (given: Option.Option<ReadonlyArray<string>>): Array<string> =>
  Option.getOrElse(given, () => []).flatMap((k) => k.split(",")).map((k) => k.trim()).filter((k) => k !== "")
