/**
 * DESIGN.md §4 (checkpoint file format), checked through the public API: the exact line the
 * kernel writes, lines written by other tools, and the CheckpointStore service the kernel
 * hands plain entries to.
 */
import { assert, describe, it } from "@effect/vitest"
import { App, BadCheckpoint, CheckpointError, CheckpointFiles, CheckpointStore, Dfk } from "effect-dfk"
import type { CheckpointEntry, CheckpointStoreService } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs, checkpointEntries, exists, tmpDir, withKernel } from "../util.ts"
import { expectedKey, kernel, makeDouble, stats, tasksFile, writeCheckpoint } from "./helpers.ts"

// ---------------------------------------------------------------------------------------------
// §4 file format and CheckpointStore
// ---------------------------------------------------------------------------------------------

describe("§4 checkpoint file format", () => {
  it.scoped("each line is exactly {v, hash, app, version, input, result, time} in that order, UTF-8, newline-terminated", () =>
    Effect.gen(function*() {
      const c = { n: 0 }
      const app = App.make(
        {
          name: "fmt",
          input: Schema.Struct({ b: Schema.String, a: Schema.Number, skip: Schema.optional(Schema.Number) }),
          output: Schema.Struct({ z: Schema.Number, y: Schema.Array(Schema.String) }),
          cache: true,
          ignoreForCache: ["skip"]
        },
        ({ a, b }) => Effect.sync(() => (c.n++, { z: a, y: [b, "\u00e9"] }))
      )
      const v7 = makeDouble(c, "fmt2", "7")
      const { runDir } = yield* withKernel(
        { checkpointMode: "task_exit" },
        Effect.zipRight(app({ b: "caf\u00e9 \ud83d\ude00", a: 1.5e-7, skip: 3 }), v7(1))
      )
      const bytes = fs.readFileSync(tasksFile(runDir))
      const text = bytes.toString("utf8")
      assert.isTrue(text.endsWith("\n"))
      assert.isTrue(
        bytes.includes(Buffer.from("caf\u00e9 \ud83d\ude00", "utf8")),
        "non-ASCII stored as UTF-8, not escaped"
      )
      const [l1, l2] = text.split("\n")
      const iso = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z"
      const h1 = expectedKey("fmt", null, { a: 1.5e-7, b: "caf\u00e9 \ud83d\ude00" })
      assert.match(
        l1!,
        new RegExp(
          `^\\{"v":1,"hash":"${h1}","app":"fmt","version":null,"input":\\{"a":1\\.5e-7,"b":"caf\u00e9 \ud83d\ude00"\\},"result":\\{"y":\\["caf\u00e9 \ud83d\ude00","\u00e9"\\],"z":1\\.5e-7\\},"time":"${iso}"\\}$`,
          "u"
        )
      )
      const h2 = expectedKey("fmt2", "7", 1)
      assert.match(
        l2!,
        new RegExp(`^\\{"v":1,"hash":"${h2}","app":"fmt2","version":"7","input":1,"result":2,"time":"${iso}"\\}$`)
      )
      for (const e of checkpointEntries(runDir)) assert.strictEqual(new Date(e.time).toISOString(), e.time)
    }))

  it.scopedLive("the time field is the wall-clock time of the run (not a fixed or simulated time)", () =>
    Effect.gen(function*() {
      const before = Date.now()
      const { runDir } = yield* withKernel({ checkpointMode: "task_exit" }, makeDouble({ n: 0 })(1)).pipe(
        Effect.provide(captureLogs().layer) // the live logger would print the passes
      )
      const after = Date.now()
      const t = Date.parse(checkpointEntries(runDir)[0]!.time)
      // A bracket, not a duration: a second of slack either side for clocks read differently.
      assert.isAtLeast(t, before - 1000)
      assert.isAtMost(t, after + 1000)
    }))

  it.scoped("lines written by another tool (any key order, extra whitespace) load", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const dir = path.join(root, "cp")
      const hash = expectedKey("double", null, 5)
      writeCheckpoint(dir, [
        `{ "time": "2020-01-01T00:00:00.000Z", "result": 77, "input": 5, "version": null, "app": "double", "hash": "${hash}", "v": 1 }`
      ])
      const c = { n: 0 }
      const { value } = yield* withKernel({}, makeDouble(c)(5), CheckpointFiles.layer([dir]))
      assert.strictEqual(value, 77)
      assert.strictEqual(c.n, 0)
    }))
})

describe("§4 CheckpointStore service", () => {
  /** A store that keeps a JSON copy of each entry it is handed, as a database would. */
  const recordingStore = () => {
    const dirs = new Map<string, Array<CheckpointEntry>>()
    const service: CheckpointStoreService = {
      append: (dir, entries) =>
        Effect.sync(() => {
          dirs.set(dir, [...(dirs.get(dir) ?? []), ...entries.map((e) => JSON.parse(JSON.stringify(e)))])
        }),
      load: (dir, onEntry) =>
        Effect.suspend(() => {
          const list = dirs.get(dir)
          if (list === undefined) return Effect.fail(new BadCheckpoint({ path: dir, line: 0, reason: "none" }))
          list.forEach(onEntry)
          return Effect.void
        }),
      exists: (dir) => Effect.sync(() => dirs.has(dir))
    }
    return { dirs, service, layer: Layer.succeed(CheckpointStore, service) }
  }

  it.scoped("a provided store receives plain entries (hash, app, version, input, result, time) and serves resumes", () =>
    Effect.gen(function*() {
      const store = recordingStore()
      const c = { n: 0 }
      const d = makeDouble(c)
      const root = yield* tmpDir
      const r0 = yield* Effect.zipRight(Effect.zip(d(1), d(2)), Dfk.runDir).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "dfk_exit" }, CheckpointFiles.none)),
        Effect.provide(store.layer)
      )
      assert.isFalse(exists(tasksFile(r0)), "nothing written to the file system")
      const stored = store.dirs.get(path.join(r0, "checkpoint"))!
      assert.deepStrictEqual(
        stored.map(({ time, ...rest }): Record<string, unknown> => ({ ...rest, time: typeof time })),
        [1, 2].map((x) => ({
          hash: expectedKey("double", null, x),
          app: "double",
          version: null,
          input: x,
          result: x * 2,
          time: "string"
        }))
      )
      // Default resume goes through the store too.
      const v = yield* Effect.all([d(1), d(2)]).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "manual" })),
        Effect.provide(store.layer)
      )
      assert.deepStrictEqual(v, [2, 4])
      assert.strictEqual(c.n, 2)
    }))

  it.scoped("a failing store: Dfk.checkpoint fails with CheckpointError and the entries stay pending", () =>
    Effect.gen(function*() {
      let fail = true
      const good = recordingStore()
      const service: CheckpointStoreService = {
        ...good.service,
        append: (dir, entries) =>
          fail
            ? Effect.fail(new CheckpointError({ path: dir, reason: "disk full" }))
            : good.service.append(dir, entries)
      }
      const root = yield* tmpDir
      const out = yield* Effect.gen(function*() {
        yield* makeDouble({ n: 0 })(1)
        const e = yield* Effect.flip(Dfk.checkpoint)
        const s1 = yield* Dfk.stats
        fail = false
        yield* Dfk.checkpoint
        return { e, s1, s2: yield* Dfk.stats }
      }).pipe(
        Effect.provide(kernel({ runDir: root, checkpointMode: "manual" }, CheckpointFiles.none)),
        Effect.provide(Layer.succeed(CheckpointStore, service))
      )
      assert.instanceOf(out.e, CheckpointError)
      assert.deepStrictEqual(out.s1, stats(1, 0, 1, 0, 1))
      assert.deepStrictEqual(out.s2, stats(1, 0, 1, 1, 0))
    }))
})
