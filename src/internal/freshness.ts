/**
 * Whether a stored entry may still be served: expiry (`App.make({ expiresAfter })`, by the
 * entry's `time` against Effect's `Clock`) and refresh (`DfkConfig.refresh`: entries written
 * before the kernel started are not served to the apps it names); and the services the kernel
 * provides to its apps' schemas (`File.Content`, `File.Stat`).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { AppSpec } from "./appSpec.ts"
import type { FileServices } from "./files.ts"
import type { LoadedResult } from "./loaded.ts"

/** Why an entry is not served: the log line's level and text. */
export class Refusal {
  constructor(readonly level: "info" | "debug", readonly message: string) {}
}

/**
 * Why an entry of `app` written at `time` has expired at `nowMs`, or `undefined` when it has
 * not (or the app's entries never expire). A time that cannot be read counts as expired.
 */
export const expiredReason = (app: AppSpec, time: string, nowMs: number): string | undefined => {
  const limit = app.expiresAfterMs
  if (limit === undefined) return undefined
  const written = Date.parse(time)
  if (Number.isNaN(written)) return `its time ${JSON.stringify(time)} cannot be read`
  const age = nowMs - written
  return age > limit
    ? `written ${time}, ${Duration.format(Duration.millis(age))} ago, which is more than expiresAfter (${
      Duration.format(Duration.millis(limit))
    })`
    : undefined
}

/** What a kernel checks of stored entries before serving them, and what it gives its apps' schemas. */
export class Freshness {
  private readonly refreshAll: boolean
  private readonly refreshNames: ReadonlySet<string>
  /** Whether any app is refreshed. */
  readonly refreshing: boolean

  constructor(
    refresh: boolean | ReadonlyArray<string>,
    /** When the kernel started (`Date.now()`, the clock of entries' times). */
    readonly startedMs: number,
    private readonly files: Context.Context<FileServices>
  ) {
    this.refreshAll = refresh === true
    this.refreshNames = new Set(Array.isArray(refresh) ? refresh : [])
    this.refreshing = this.refreshAll || this.refreshNames.size > 0
  }

  /** Whether stored entries of the app named `name` from before this kernel are ignored. */
  refreshes(name: string): boolean {
    return this.refreshAll || this.refreshNames.has(name)
  }

  /** Whether `refusal` may refuse an entry of `app` (else it is not worth asking). */
  checks(app: AppSpec): boolean {
    return app.expiresAfterMs !== undefined || (this.refreshing && this.refreshes(app.name))
  }

  /** Why `entry` (of `app`, keyed `hash`) is not served now; `undefined`: it may be. */
  refusal(app: AppSpec, entry: LoadedResult): Effect.Effect<Refusal | undefined> {
    const what = `A checkpointed entry of ${app.name} (${entry.hash.slice(0, 12)})`
    if (this.refreshing && this.refreshes(app.name) && !(Date.parse(entry.time) >= this.startedMs)) {
      return Effect.succeed(
        new Refusal("debug", `${what} was written before this run, which refreshes ${app.name}, so the app runs again`)
      )
    }
    if (app.expiresAfterMs === undefined) return Effect.succeed(undefined)
    return Effect.map(Clock.currentTimeMillis, (now) => {
      const expired = expiredReason(app, entry.time, now)
      return expired === undefined
        ? undefined
        : new Refusal("info", `${what} expired (${expired}), so the app runs again`)
    })
  }

  /** `effect` with the kernel's `FileSystem` and hash cache (for the schemas of its apps). */
  provide<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, FileServices>> {
    const files = this.files
    return Effect.mapInputContext(effect, (context: Context.Context<any>) => Context.merge(context, files))
  }
}
