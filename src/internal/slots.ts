/**
 * Execution slots (`maxConcurrency`): a counter and two FIFO wait lists, so that taking and
 * giving back a slot costs O(1) however many calls wait. (Effect 3's `Semaphore` wakes every
 * waiter on each release, which makes a wide fan-out quadratic in time and memory.)
 *
 * Two lanes: calls made from inside a running app body (nested apps, and a body taking back
 * the slot it lent them) are served before top-level calls, so work that has started finishes
 * first; within a lane, first come, first served.
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

/** A caller waiting for a slot: a node of a doubly linked list, so that leaving costs O(1). */
class Waiter {
  prev: Waiter | undefined = undefined
  next: Waiter | undefined = undefined
  /** The list it is on, while it waits. */
  lane: Lane | undefined = undefined
  /** Set when a releasing caller hands it a slot. */
  granted = false
  /** Resumes its fiber, once the fiber has suspended. */
  resume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
}

/** A FIFO list of waiters. */
class Lane {
  head: Waiter | undefined = undefined
  tail: Waiter | undefined = undefined
  push(w: Waiter): void {
    w.lane = this
    w.prev = this.tail
    if (this.tail === undefined) this.head = w
    else this.tail.next = w
    this.tail = w
  }
  remove(w: Waiter): void {
    if (w.prev === undefined) this.head = w.next
    else w.prev.next = w.next
    if (w.next === undefined) this.tail = w.prev
    else w.next.prev = w.prev
    w.prev = w.next = w.lane = undefined
  }
  shift(): Waiter | undefined {
    const w = this.head
    if (w !== undefined) this.remove(w)
    return w
  }
  /** Takes one of the first `n` waiters (or of all, when fewer), each as likely. */
  takeAmong(n: number): Waiter | undefined {
    let count = 0
    for (let w = this.head; w !== undefined && count < n; w = w.next) count++
    let w = this.head
    for (let i = Math.floor(Math.random() * count); i > 0; i--) w = w!.next
    if (w !== undefined) this.remove(w)
    return w
  }
}

/** How many of the first top-level waiters a spread release picks among (see `Slots.spread`). */
const SPREAD = 256

/** The handlers of `matchCauseEffect` that give a slot back, whatever the outcome. */
interface Releasing<A, E> {
  readonly onFailure: (cause: Cause.Cause<E>) => Effect.Effect<A, E>
  readonly onSuccess: (value: A) => Effect.Effect<A, E>
}

/** A fixed number of slots. */
export class Slots {
  private free: number
  private readonly first = new Lane()
  private readonly rest = new Lane()
  /** Waiters on both lanes. */
  waiting = 0
  /**
   * Whether a slot goes to one of the first top-level waiters picked at random rather than
   * to the first: set once other processes are seen claiming the same keys (a shared store),
   * so that processes that run one workflow do not all claim its keys in the same order,
   * where most claims would meet another process's claim of the same key. Nested calls
   * (the first lane) are served first, in order, either way.
   */
  spread = false

  constructor(readonly size: number) {
    this.free = size
  }

  /** Whether a slot is free now (a call would take it without waiting). */
  get available(): boolean {
    return this.free > 0
  }

  /** Gives a slot back: to the first waiter (which resumes), or to the free count. */
  release(): void {
    const w = this.first.shift() ?? (this.spread ? this.rest.takeAmong(SPREAD) : this.rest.shift())
    if (w === undefined) {
      this.free++
      return
    }
    this.waiting--
    w.granted = true
    // A waiter whose fiber has not suspended yet finds `granted` set when it does.
    if (w.resume !== undefined) w.resume(Effect.void)
  }

  /** Queues a waiter; `resume` is called (at once, if it was granted meanwhile) once it has a slot. */
  private enqueue(priority: boolean): Waiter {
    const w = new Waiter()
    ;(priority ? this.first : this.rest).push(w)
    this.waiting++
    return w
  }

  /** Suspends until `w` is granted a slot. */
  private static granted(w: Waiter): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (w.granted) resume(Effect.void)
      else w.resume = resume
    })
  }

  /**
   * Runs `make()` holding a slot, first waiting for one if none is free. To be run in an
   * uninterruptible region (the caller's mask); `restore` makes the wait interruptible (the
   * effect `make` builds restores what it runs itself). An interrupted waiter leaves its list
   * and takes no slot (one handed to it as it was interrupted goes on to the next waiter).
   * The slot is given back when the effect ends, however it ends. No mask of its own, one
   * frame on the stack while it waits.
   */
  hold<A, E, R>(
    make: () => Effect.Effect<A, E, R>,
    priority: boolean,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
  ): Effect.Effect<A, E, R> {
    if (this.free > 0) {
      this.free--
      return Effect.matchCauseEffect(make(), this.releasing as Releasing<A, E>)
    }
    const w = this.enqueue(priority)
    return Effect.matchCauseEffect(restore(Slots.granted(w)), {
      // Only an interruption ends the wait early.
      onFailure: (cause) => {
        if (w.granted) this.release()
        else if (w.lane !== undefined) {
          w.lane.remove(w)
          this.waiting--
        }
        return Effect.failCause(cause)
      },
      onSuccess: () => Effect.matchCauseEffect(make(), this.releasing as Releasing<A, E>)
    })
  }

  /** Gives the slot back as the effect that held it ends, and ends as it did. */
  private readonly releasing: Releasing<unknown, unknown> = {
    onFailure: (cause) => {
      this.release()
      return Effect.failCause(cause)
    },
    onSuccess: (value) => {
      this.release()
      return Effect.succeed(value)
    }
  }

  /**
   * Takes a slot back, uninterruptibly, ahead of top-level callers: for a body whose nested
   * calls, which borrowed its slot, have ended.
   */
  readonly takeBack: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
    if (this.free > 0) {
      this.free--
      return Effect.void
    }
    return Slots.granted(this.enqueue(true))
  }))
}

/**
 * What a running app body lends to the apps it calls while they run (its slot): how many of
 * its nested calls are under way. The first to start gives the slot back; the last to end
 * takes it back.
 */
export interface Lending {
  nested: number
}

/** The lending record of the app body running in this fiber (and the fibers it forks), if any. */
export const currentLending: FiberRef.FiberRef<Lending | null> = FiberRef.unsafeMake<Lending | null>(null)
