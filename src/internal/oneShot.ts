/**
 * A value that is set once and awaited: the store's claims and waits use one per call. A
 * lighter `Deferred` (Effect 3 makes each `Deferred` by spreading its whole prototype, a
 * cost that showed per call in the SQL store's claims: ~10 µs and garbage for each).
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"

/** Set once (`done`; later calls are ignored), awaited by any number of fibers (`await`). */
export class OneShot<A, E = never> {
  private exit: Exit.Exit<A, E> | undefined
  private resumes: Array<(effect: Effect.Effect<A, E>) => void> | undefined

  /** Whether it is set. */
  get isDone(): boolean {
    return this.exit !== undefined
  }

  /** Sets it and resumes its waiters (once: a second call does nothing). */
  done(exit: Exit.Exit<A, E>): void {
    if (this.exit !== undefined) return
    this.exit = exit
    const resumes = this.resumes
    this.resumes = undefined
    if (resumes !== undefined) { for (const resume of resumes) resume(exit) }
  }

  /** Its value once set; an interrupted wait leaves the others waiting. */
  readonly await: Effect.Effect<A, E> = Effect.async<A, E>((resume) => {
    if (this.exit !== undefined) return resume(this.exit)
    const resumes = this.resumes ??= []
    resumes.push(resume)
    return Effect.sync(() => {
      const i = this.resumes?.indexOf(resume) ?? -1
      if (i >= 0) this.resumes!.splice(i, 1)
    })
  })
}
