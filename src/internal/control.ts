/**
 * `Dfk.explain` and `Dfk.invalidate` in a kernel: the key of a call made as an app call makes
 * it, the explanation of that key against the in-run memo and the stored entries the kernel
 * can see, and the tombstone that invalidates it (in this run's checkpoint, written at once).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type { CheckpointError } from "../errors.ts"
import type { AppCacheError, BadCheckpoint } from "../errors.ts"
import type { Asked, Difference, ExplainOptions, Explanation } from "../Explanation.ts"
import type { AppSpec } from "./appSpec.ts"
import type { Calls } from "./calls.ts"
import { encodeFailed, noJsonForm, notAnObject, SHORT_KEY } from "./calls.ts"
import { sha256Hex, tryCanonicalJson, withoutKeys } from "./canonical.ts"
import type { Checkpointer } from "./checkpointer.ts"
import { explainEntries } from "./explain.ts"
import type { Explainer } from "./explain.ts"
import { fileProblemsOf } from "./files.ts"
import type { Freshness } from "./freshness.ts"
import { parseMessage } from "./messages.ts"
import { timeNow } from "./results.ts"

/** The key of a call, as `Calls.keyed` makes it. */
export interface CallKey extends Asked {
  /** The canonical JSON of the key's input. */
  readonly json: string
  /** The in-run memo's key: the hashed text when it is short, else the hash. */
  readonly memoKey: string
}

/** The key of a call of `app` with `input` (encoded with its input schema, less its `ignoreForCache` keys). */
export const keyOfCall = (app: AppSpec, input: unknown): Effect.Effect<CallKey, AppCacheError, any> => {
  const encodedSync = app.encodeInputSync(input)
  const encoded = Either.isRight(encodedSync)
    ? Effect.succeed(encodedSync.right)
    : Effect.mapError(app.encodeInput(input), (e) => encodeFailed(app, e))
  return Effect.flatMap(encoded, (value) => {
    const notObject = typeof value !== "object" || value === null || Array.isArray(value)
    if (app.ignoreForCache.length > 0 && notObject) return Effect.fail(notAnObject(app))
    const json = tryCanonicalJson(withoutKeys(value, app.ignoreForCache))
    if (typeof json !== "string") return Effect.fail(noJsonForm(app, json.error))
    const text = app.keyPrefix + json + "]"
    const key = sha256Hex(text)
    return Effect.succeed({
      app: app.name,
      version: app.version,
      input: JSON.parse(json) as unknown,
      key,
      json,
      memoKey: text.length <= SHORT_KEY ? text : key
    })
  })
}

/** `Dfk.explain` and `Dfk.invalidate` of one kernel. */
export class Control {
  constructor(
    private readonly calls: Calls,
    private readonly checkpointer: Checkpointer,
    private readonly explainer: Explainer,
    /** Whether the kernel memoizes (`memoize`): if not, nothing is ever served. */
    private readonly memoize: boolean,
    /** The kernel's expiry and the services of its apps' schemas (files). */
    private readonly fresh: Freshness
  ) {}

  /** The explanation of a call's key, against the in-run memo and the stored entries now. */
  explain(
    app: AppSpec,
    input: unknown,
    options?: ExplainOptions
  ): Effect.Effect<Explanation, AppCacheError | BadCheckpoint, any> {
    return Effect.gen(this, function*() {
      const asked = yield* this.fresh.provide(keyOfCall(app, input))
      const stored = yield* this.explainer.read
      // The app's own expiry, against Effect's clock (as when entries are served).
      const now = yield* Clock.currentTimeMillis
      const explained = explainEntries(
        { app: asked.app, version: asked.version, input: asked.input, key: asked.key },
        this.memoize ? stored : [],
        app.expiresAfterMs === undefined || options?.expiresAfter !== undefined
          ? options
          : { ...options, expiresAfter: Duration.millis(app.expiresAfterMs), now }
      )
      if (explained._tag === "Miss") {
        // Computed in this run (not stored yet, or never to be: no checkpoint mode).
        return this.calls.memoized(asked.memoKey)
          ? {
            _tag: "Hit",
            key: asked.key,
            app: asked.app,
            version: asked.version,
            input: asked.input,
            checkpoint: null,
            time: null,
            result: undefined,
            alsoIn: []
          }
          : explained
      }
      // A stored result that no longer decodes is not served either.
      let i = stored.length - 1
      while (stored[i]!.entry.hash !== asked.key) i--
      const winner = stored[i]!.entry
      const decoded = yield* Effect.exit(this.fresh.provide(Effect.suspend(() => app.decodeOutput(winner.result))))
      if (Exit.isSuccess(decoded)) return explained
      const reason = parseMessage(decoded.cause)
      // A file of the result (File.Content, File.Stat) that changed or is gone.
      const failure = Cause.failureOption(decoded.cause)
      const files = Option.isSome(failure) && ParseResult.isParseError(failure.value)
        ? fileProblemsOf(failure.value.issue)
        : []
      const differences: Array<Difference> = files.length === 0
        ? [{ _tag: "Undecodable", reason }]
        : files.map((f) => ({
          _tag: "FileChanged",
          path: typeof f.actual === "string" ? f.actual : String((f.actual as { path?: unknown }).path),
          stored: f.actual,
          actual: f.message
        }))
      return {
        _tag: "Miss",
        key: asked.key,
        app: asked.app,
        version: asked.version,
        input: asked.input,
        stored: 1,
        closest: [{
          hash: winner.hash,
          checkpoint: explained.checkpoint!,
          time: winner.time,
          version: winner.version,
          input: winner.input,
          result: winner.result,
          differences
        }]
      }
    })
  }

  /**
   * Invalidates a call's key: the in-run memo forgets it (a call in flight is not stopped:
   * its outcome is memoized when it ends), a loaded entry of it is dropped, and a tombstone
   * is queued and written at once to this run's checkpoint (with whatever is pending, which
   * the tombstone must follow: a pending entry of the key written after it would bring it
   * back). Returns the key.
   */
  invalidate(app: AppSpec, input: unknown): Effect.Effect<string, AppCacheError | CheckpointError, any> {
    return Effect.gen(this, function*() {
      const asked = yield* this.fresh.provide(keyOfCall(app, input))
      this.calls.forget(asked.memoKey, asked.key)
      this.calls.enqueue({
        hash: asked.key,
        app: asked.app,
        version: asked.version,
        input: asked.json,
        result: "",
        time: timeNow(),
        deleted: true
      })
      yield* this.checkpointer.pass
      this.explainer.forget()
      return asked.key
    })
  }
}
