/**
 * Where DESIGN.md is silent ("do what a Parsl user moving to Effect would expect"): each test
 * pins the behaviour we chose, through the public API.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, type BadCheckpoint, CheckpointFiles, Dfk } from "effect-dfk"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, eventually, tmpDir, withKernel } from "../util.ts"
import {
  entryLine,
  kernel,
  loadError,
  makeDouble,
  makePlain,
  rawLines,
  sha256,
  stats,
  tasksFile,
  writeCheckpoint
} from "./helpers.ts"

// ---------------------------------------------------------------------------------------------
// Where DESIGN.md is silent: each test pins the behaviour we chose
// ---------------------------------------------------------------------------------------------

describe("where DESIGN.md is silent: behaviour we chose", () => {
  it.scoped("a call rejected with AppCacheError counts as a task, but neither as a hit nor as a miss", () =>
    Effect.gen(function*() {
      const { value } = yield* withKernel({}, Effect.zipRight(Effect.flip(makeDouble({ n: 0 })(NaN)), Dfk.stats))
      assert.deepStrictEqual(value, stats(1, 0, 0, 0, 0))
    }))

  it.scoped("with cache: false or memoize: false no key is computed, so an input with no JSON form runs the body", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const plain = yield* withKernel({}, Effect.exit(makePlain(c)(NaN)))
      const unmemoized = yield* withKernel({ memoize: false }, Effect.exit(makeDouble(c)(NaN)))
      assert.isTrue(Exit.isSuccess(plain.value))
      assert.isTrue(Exit.isSuccess(unmemoized.value))
      assert.strictEqual(c.n, 2)
    }))

  it.scoped("memoize: false with a checkpoint mode still makes an empty tasks.jsonl when the scope closes", () =>
    Effect.gen(function*() {
      const { runDir } = yield* withKernel({ memoize: false, checkpointMode: "task_exit" }, makeDouble({ n: 0 })(1))
      assert.strictEqual(fs.readFileSync(tasksFile(runDir), "utf8"), "")
    }))

  it.scoped("memoize: false loads nothing, so a listed dir that does not exist is no BadCheckpoint", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const listed = CheckpointFiles.layer([path.join(root, "missing")])
      const runDir = yield* Dfk.runDir.pipe(Effect.provide(kernel({ runDir: root, memoize: false }, listed)))
      assert.strictEqual(runDir, path.join(root, "000"))
    }))

  it.scoped("a defect (Effect.die) is memoized in-run like a failure: the same defect comes back, nothing is written", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const dies = App.make(
        { name: "dies", input: Schema.Number, output: Schema.Number, cache: true },
        () => Effect.suspend(() => Effect.die(new Error(`defect ${++c.n}`)))
      )
      const { value, runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.all([Effect.exit(dies(1)), Effect.exit(dies(1))])
      )
      assert.strictEqual(c.n, 1)
      const [a, b] = value
      assert.isTrue(Exit.isFailure(a) && Cause.isDie(a.cause) && Exit.isFailure(b) && Cause.isDie(b.cause))
      if (Exit.isFailure(a) && Exit.isFailure(b)) assert.strictEqual(Cause.squash(a.cause), Cause.squash(b.cause))
      assert.deepStrictEqual(checkpointEntries(runDir), [])
    }))

  it.scoped("only loaded entries that a call asks for are carried forward: a later last() resume has lost the others", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const d = makeDouble(c)
      const config = { runDir: root, checkpointMode: "dfk_exit" } as const
      const last = CheckpointFiles.last(root)
      yield* Effect.all([d(1), d(2)]).pipe(Effect.provide(kernel(config, last)))
      const r1 = yield* Effect.zipRight(d(1), Dfk.runDir).pipe(Effect.provide(kernel(config, last)))
      assert.deepStrictEqual(checkpointEntries(r1).map((e) => e.input), [1])
      yield* d(2).pipe(Effect.provide(kernel(config, last)))
      assert.strictEqual(c.n, 3, "d(2) ran again: run 000's result was not in the last checkpoint")
    }))

  it.scoped("a carried-forward entry keeps the time it was first computed", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const dir = path.join(root, "cp")
      writeCheckpoint(dir, [entryLine("double", null, 1, 2)])
      const { runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        makeDouble({ n: 0 })(1),
        CheckpointFiles.layer([dir])
      )
      assert.strictEqual(checkpointEntries(runDir)[0]!.time, new Date(0).toISOString())
    }))

  it.scoped("a lone surrogate in an input is accepted, and written and hashed as a \\udXXX escape", () =>
    Effect.gen(function*() {
      const app = App.make(
        { name: "s", input: Schema.String, output: Schema.Null, cache: true },
        () => Effect.succeed(null)
      )
      const { runDir } = yield* withKernel({ checkpointMode: "task_exit" }, app("a\ud800b"))
      const [line] = rawLines(runDir)
      assert.include(line!, "\"input\":\"a\\ud800b\"")
      assert.strictEqual(JSON.parse(line!).hash, sha256("[\"s\",null,\"a\\ud800b\"]"))
    }))

  it.scoped("periodic: the first pass runs one period after the kernel starts, not when it starts", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const logs = captureLogs()
      const passes = () =>
        logs.lines.map((l) => l.message).filter((m) =>
          m.startsWith("Done checkpointing") || m.startsWith("No tasks checkpointed")
        )
      const seen = yield* Effect.gen(function*() {
        yield* TestClock.adjust("10 seconds")
        yield* eventually(() => passes().length >= 1, "the first periodic pass")
        // The passes run one after another on one fiber: one at the start would be logged by now.
        return passes()
      }).pipe(
        Effect.provide(
          kernel({ runDir: root, checkpointMode: "periodic", checkpointPeriod: "00:00:10" }, CheckpointFiles.none)
        ),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(seen, ["No tasks checkpointed in this pass"])
    }))

  it.scoped("BadCheckpoint for a listed dir that does not exist names <dir>/tasks.jsonl, at line 0", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const missing = path.join(root, "nope")
      const e = (yield* loadError(root, [missing])) as BadCheckpoint
      assert.strictEqual(e.path, path.join(missing, "tasks.jsonl"))
      assert.strictEqual(e.line, 0)
    }))
})
