/**
 * A small workflow for the cross-runtime test: runs 6 cached apps with task_exit
 * checkpoints under the run dir given as argv[2], resuming from every earlier checkpoint,
 * and prints one JSON line: the runtime (`node20`, `node24`, `deno`, `bun`), how many bodies
 * ran, the results and hashes.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { App, Dfk, Memo } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const runDir = process.argv[2] ?? "runinfo"

/** `deno`, `bun`, or `node<major>` (`node20`, `node24`). */
const runtimeName = (): string => {
  if (typeof (globalThis as { Deno?: unknown }).Deno === "object") return "deno"
  if (typeof (globalThis as { Bun?: unknown }).Bun === "object") return "bun"
  return `node${process.versions.node.split(".")[0]}`
}
let bodies = 0

const stats = App.make(
  {
    name: "stats",
    input: Schema.Struct({ xs: Schema.Array(Schema.Number), label: Schema.String }),
    output: Schema.Struct({ sum: Schema.Number, mean: Schema.Number, text: Schema.String }),
    cache: true,
    version: "1"
  },
  ({ label, xs }) =>
    Effect.sync(() => {
      bodies++
      const sum = xs.reduce((a, b) => a + b, 0)
      return { sum, mean: sum / xs.length, text: `${label}: ${sum} — ünïcödé ✓` }
    })
)

const inputs = Array.from({ length: 6 }, (_, i) => ({ xs: [i, i + 0.5, 1e21, -0.25], label: `set ${i}` }))

const program = Effect.gen(function*() {
  const results = yield* Effect.forEach(inputs, (input) => stats(input), { concurrency: 3 })
  const hashes = yield* Effect.forEach(inputs, (input) => Memo.key({ name: "stats", version: "1", input }))
  const s = yield* Dfk.detailedStats
  return {
    runtime: runtimeName(),
    bodies,
    fromCheckpoint: s.fromCheckpoint,
    runDir: yield* Dfk.runDir,
    results,
    hashes
  }
})

program.pipe(
  Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
  Effect.provide(NodeContext.layer),
  Effect.runPromise
).then((out) => console.log(JSON.stringify(out)), (e) => {
  console.error(e)
  process.exit(1)
})
