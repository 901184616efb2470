/**
 * The kernel's configuration: validation of a `DfkConfig`, and checkpoint periods.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { CheckpointMode, DfkConfig, ResolvedDfkConfig } from "../Dfk.ts"
import { ConfigurationError } from "../errors.ts"

/** The configuration after validation. */
/** A validated configuration (the public `ResolvedDfkConfig`). */
export type ResolvedConfig = ResolvedDfkConfig

const MODES: ReadonlyArray<CheckpointMode> = ["task_exit", "periodic", "dfk_exit", "manual"]
const HMS = /^(\d+):(\d{1,2}):(\d{1,2})$/

/** Parses a checkpoint period: `"HH:MM:SS"` or any `Duration` input. */
export const parsePeriod = (
  input: Duration.DurationInput | string
): Option.Option<Duration.Duration> => {
  if (typeof input === "string") {
    const m = HMS.exec(input.trim())
    if (m !== null) {
      const [h, min, s] = [Number(m[1]), Number(m[2]), Number(m[3])]
      if (min > 59 || s > 59) return Option.none()
      return Option.some(Duration.seconds(h * 3600 + min * 60 + s))
    }
  }
  return Duration.decodeUnknown(input)
}

const configError = (field: string, reason: string) => new ConfigurationError({ field, reason })

/** Validates a `DfkConfig`. */
export const resolveConfig = (config: DfkConfig): Effect.Effect<ResolvedConfig, ConfigurationError> =>
  Effect.suspend(() => {
    const runDir = config.runDir ?? "runinfo"
    if (typeof runDir !== "string" || runDir === "") {
      return Effect.fail(configError("runDir", "It must be a non-empty path"))
    }
    const mode = config.checkpointMode
    if (mode !== undefined && !MODES.includes(mode)) {
      return Effect.fail(
        configError("checkpointMode", `Unknown mode ${JSON.stringify(mode)}; expected one of ${MODES.join(", ")}`)
      )
    }
    let period: Duration.Duration | undefined
    if (config.checkpointPeriod !== undefined) {
      const parsed = parsePeriod(config.checkpointPeriod)
      if (Option.isNone(parsed)) {
        return Effect.fail(
          configError(
            "checkpointPeriod",
            `Cannot read ${JSON.stringify(String(config.checkpointPeriod))} as "HH:MM:SS" or a duration`
          )
        )
      }
      if (!Duration.greaterThan(parsed.value, Duration.zero) || !Duration.isFinite(parsed.value)) {
        return Effect.fail(configError("checkpointPeriod", "The period must be finite and longer than zero"))
      }
      period = parsed.value
    }
    if (mode === "periodic" && period === undefined) {
      return Effect.fail(configError("checkpointPeriod", "The periodic checkpoint mode needs a checkpointPeriod"))
    }
    const retries = config.retries ?? 0
    if (!Number.isInteger(retries) || retries < 0) {
      return Effect.fail(configError("retries", "It must be a whole number, zero or more"))
    }
    const maxConcurrency = config.maxConcurrency
    if (maxConcurrency !== undefined && (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)) {
      return Effect.fail(configError("maxConcurrency", "It must be a whole number, one or more"))
    }
    const durability = config.durability ?? "none"
    if (durability !== "none" && durability !== "fsync") {
      return Effect.fail(
        configError("durability", `Unknown durability ${JSON.stringify(durability)}; expected none or fsync`)
      )
    }
    const refresh = config.refresh ?? false
    if (
      refresh !== true && refresh !== false &&
      !(Array.isArray(refresh) && refresh.every((name) => typeof name === "string" && name !== ""))
    ) {
      return Effect.fail(configError("refresh", "It must be true, false or a list of app names"))
    }
    const explainMisses = config.explainMisses ?? false
    if (typeof explainMisses !== "boolean") return Effect.fail(configError("explainMisses", "It must be true or false"))
    return Effect.succeed({
      durability,
      refresh,
      explainMisses,
      runDir,
      memoize: config.memoize ?? true,
      checkpointMode: mode,
      checkpointPeriod: period,
      retries,
      maxConcurrency
    })
  })
