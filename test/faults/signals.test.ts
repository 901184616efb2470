/**
 * Signals and crashes: a real child process runs a workflow under `NodeRuntime.runMain`
 * (test/fixtures/signal-workflow.ts) and is stopped by SIGINT, SIGTERM or SIGKILL. Whatever
 * the child reported done before the signal must be in its checkpoint afterwards.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll } from "vitest"
import { CheckpointStore } from "../../mod.ts"
import { doneOf, makeTempDir, readJsonLines, startFixture, valueOf } from "../fixtures/child.ts"

const FIXTURE = "signal-workflow.ts"
const temps: Array<string> = []
afterAll(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})

const tempRunDir = () => {
  const dir = makeTempDir("effect-dfk-signals-")
  temps.push(dir)
  return path.join(dir, "runinfo")
}

const storeLayer = Layer.provide(CheckpointStore.layerFileSystem, NodeContext.layer)

/** Loads a checkpoint dir through the default store; returns the entries' `input.i`. */
const loadWithStore = (dir: string) =>
  Effect.runPromiseExit(
    Effect.gen(function*() {
      const store = yield* CheckpointStore
      const seen: Array<number> = []
      yield* store.load(dir, (entry) => {
        seen.push((entry.input as { i: number }).i)
      })
      return seen
    }).pipe(Effect.provide(storeLayer))
  )

/** The entries of a checkpoint file, checked: each `sig_square` entry holds `i * i`, no key twice. */
const checkpointInputs = (file: string, allowTornTail: boolean) => {
  const { entries, tail } = readJsonLines(file)
  if (!allowTornTail) assert.strictEqual(tail, "", `${file} ends with an unterminated line`)
  const inputs = new Set<number>()
  const hashes = new Set<string>()
  for (const e of entries) {
    assert.strictEqual(e.v, 1)
    assert.strictEqual(e.app, "sig_square")
    assert.strictEqual(e.result, e.input.i * e.input.i)
    assert.isFalse(hashes.has(e.hash), `key ${e.hash} is written twice in ${file}`)
    hashes.add(e.hash)
    inputs.add(e.input.i)
  }
  return { inputs, entries, tail }
}

describe("signals under NodeRuntime.runMain", () => {
  const cases = [
    { mode: "dfk_exit", signal: "SIGINT", code: 130 },
    { mode: "dfk_exit", signal: "SIGTERM", code: 143 },
    { mode: "periodic", signal: "SIGINT", code: 130 },
    { mode: "periodic", signal: "SIGTERM", code: 143 }
  ] as const

  for (const { code, mode, signal } of cases) {
    it(`${signal} during a ${mode} run: every result reported done is checkpointed, exit code ${code}`, async () => {
      const runDir = tempRunDir()
      const count = 400
      const child = startFixture(FIXTURE, [mode, runDir, String(count), "25", "4"])
      await child.waitFor((lines) => doneOf(lines).length >= 20, "20 tasks were done")
      child.signal(signal)
      const exit = await child.exited
      const done = doneOf(child.lines)
      assert.strictEqual(exit.code, code, `exit ${JSON.stringify(exit)}; stderr:\n${child.stderr()}`)
      // The signal came in the middle of the run, not after it.
      assert.isBelow(done.length, count)
      assert.isUndefined(valueOf(child.lines, "bodies"))

      const ownRunDir = valueOf(child.lines, "runDir")
      assert.strictEqual(ownRunDir, path.join(runDir, "000"))
      const checkpointDir = path.join(ownRunDir!, "checkpoint")
      const { inputs } = checkpointInputs(path.join(checkpointDir, "tasks.jsonl"), false)
      const missing = done.filter((i) => !inputs.has(i))
      assert.deepStrictEqual(missing, [], `results reported done but not checkpointed after ${signal}`)

      // The file loads cleanly.
      const loaded = await loadWithStore(checkpointDir)
      assert.isTrue(Exit.isSuccess(loaded), String(loaded))
      if (Exit.isSuccess(loaded)) assert.strictEqual(loaded.value.length, inputs.size)
    })
  }

  it("SIGKILL during a task_exit run of 200 tasks: nothing reported done is lost, a rerun runs only the rest", async () => {
    const runDir = tempRunDir()
    const count = 200
    const child = startFixture(FIXTURE, ["task_exit", runDir, String(count), "30", "4"])
    await child.waitFor((lines) => doneOf(lines).length >= 40, "40 tasks were done")
    child.signal("SIGKILL")
    const exit = await child.exited
    assert.strictEqual(exit.signal, "SIGKILL", `the child was not killed: ${JSON.stringify(exit)}`)
    const done = doneOf(child.lines)
    assert.isBelow(done.length, count, "the child finished before SIGKILL")

    const checkpointDir = path.join(runDir, "000", "checkpoint")
    // At most a torn last line; every complete line parses and is a valid entry.
    const { entries, inputs, tail } = checkpointInputs(path.join(checkpointDir, "tasks.jsonl"), true)
    const missing = done.filter((i) => !inputs.has(i))
    assert.deepStrictEqual(missing, [], "tasks reported done but not in the checkpoint after SIGKILL")

    const loaded = await loadWithStore(checkpointDir)
    assert.isTrue(Exit.isSuccess(loaded), `the checkpoint does not load: ${String(loaded)}`)
    if (Exit.isSuccess(loaded)) {
      // A torn tail that happens to be complete JSON would be one more entry.
      assert.include([entries.length, entries.length + (tail === "" ? 0 : 1)], loaded.value.length)
    }

    // The rerun resumes from every checkpoint under runDir (the default) and runs only the rest.
    const rerun = startFixture(FIXTURE, ["task_exit", runDir, String(count), "1", "8"])
    const rerunExit = await rerun.exited
    assert.strictEqual(rerunExit.code, 0, rerun.stderr())
    const bodies = Number(valueOf(rerun.lines, "bodies"))
    const stats = JSON.parse(valueOf(rerun.lines, "stats")!)
    const resumed = Exit.isSuccess(loaded) ? new Set(loaded.value).size : -1
    assert.strictEqual(bodies, count - resumed, `the rerun ran ${bodies} bodies; ${resumed} were checkpointed`)
    assert.strictEqual(stats.fromCheckpoint, resumed)
    assert.strictEqual(stats.misses, count - resumed)
    assert.strictEqual(doneOf(rerun.lines).length, count)

    // The rerun's own checkpoint now holds all 200 results (carried forward and new).
    assert.strictEqual(valueOf(rerun.lines, "runDir"), path.join(runDir, "001"))
    const second = checkpointInputs(path.join(runDir, "001", "checkpoint", "tasks.jsonl"), false)
    assert.strictEqual(second.inputs.size, count)
    assert.strictEqual(second.entries.length, count)
  })
})
