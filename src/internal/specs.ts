/**
 * The `AppSpec` behind each function `App.make` returns, for `Dfk.explain` and
 * `Dfk.invalidate`, which take the app itself.
 */
import type { AppSpec } from "./appSpec.ts"

const specs = new WeakMap<object, AppSpec>()

/** Registers the spec of an app function. */
export const registerSpec = (app: object, spec: AppSpec): void => {
  specs.set(app, spec)
}

/** The spec of an app function made by `App.make`, if it is one. */
export const specOf = (app: object): AppSpec | undefined => specs.get(app)
