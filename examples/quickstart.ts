import { Effect, Schema } from "effect"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { App, Dfk } from "effect-dfk"

// An app: a named, schema-typed Effect program.
const slowDouble = App.make(
  {
    name: "slow_double",
    input: Schema.Struct({ x: Schema.Number, sleepMs: Schema.optional(Schema.Number) }),
    output: Schema.Number,
    cache: true,                 // AppCaching for this app (default false, as in Parsl)
    ignoreForCache: ["sleepMs"], // input keys left out of the memo hash
    // version: "2",             // optional: part of the hash, bump it when the body changes
  },
  ({ x, sleepMs = 1000 }) => Effect.sleep(sleepMs).pipe(Effect.as(x * 2))
)

// A workflow: plain Effect composition.
const workflow = Effect.gen(function* () {
  const doubled = yield* Effect.forEach([0, 1, 2, 3, 4], (x) => slowDouble({ x }), {
    concurrency: "unbounded"
  })
  const dir = yield* Dfk.checkpoint // manual checkpoint; returns the checkpoint dir
  yield* Effect.log(`checkpointed to ${dir}`)
  return doubled
})

workflow.pipe(
  // With a checkpoint mode set, the kernel resumes from every checkpoint under runDir.
  Effect.provide(Dfk.layer({ runDir: "runinfo", checkpointMode: "dfk_exit" })),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
