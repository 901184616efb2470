/**
 * DESIGN.md §1 (what a user writes), checked through the public API: the wiring of its example.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformPath from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import { CheckpointFiles, Dfk } from "effect-dfk"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { platform, tmpDir } from "../util.ts"
import { makeDouble } from "./helpers.ts"

describe("§1 wiring", () => {
  it.scoped("CheckpointFiles provided outside Effect.provide(Dfk.layer(...)) is read, as in DESIGN's example", () =>
    Effect.gen(function*() {
      const root = yield* tmpDir
      const c = { n: 0 }
      const d = makeDouble(c)
      const run = (files: Layer.Layer<CheckpointFiles, never, FileSystem.FileSystem | PlatformPath.Path>) =>
        d(1).pipe(
          Effect.provide(Dfk.layer({ runDir: root, checkpointMode: "dfk_exit" })),
          Effect.provide(files),
          Effect.provide(platform)
        )
      yield* run(CheckpointFiles.last(root))
      yield* run(CheckpointFiles.last(root))
      assert.strictEqual(c.n, 1)
      yield* run(CheckpointFiles.none)
      assert.strictEqual(c.n, 2)
    }))
})
