/**
 * Shared helpers for the tests: temporary run dirs, log capture and file reading.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { CheckpointFiles, Dfk } from "effect-dfk"
import type { DfkConfig } from "effect-dfk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A fresh temporary directory, removed when the scope closes. */
export const tmpDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** The platform services for the tests. */
export const platform = NodeContext.layer

/** Reads the entries of a `tasks.jsonl` file. */
export const readEntries = (file: string): Array<Record<string, any>> =>
  fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

/** The entries of the checkpoint of a run dir. */
export const checkpointEntries = (runDir: string): Array<Record<string, any>> =>
  readEntries(path.join(runDir, "checkpoint", "tasks.jsonl"))

/** Whether a path exists. */
export const exists = (p: string): boolean => fs.existsSync(p)

/** A logger that records every message (as text) with its level, and a layer installing it. */
export const captureLogs = () => {
  const lines: Array<{ level: string; message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    lines.push({ level: logLevel.label, message: parts.map(String).join(" ") })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) as Layer.Layer<never> }
}

/**
 * Runs `effect` under a fresh kernel (closed when `effect` ends) in a temporary run dir that
 * lives as long as the test's scope; returns the result and the run dir.
 */
export const withKernel = <A, E>(
  config: DfkConfig,
  effect: Effect.Effect<A, E, Dfk>,
  files: Layer.Layer<CheckpointFiles, never, never> = CheckpointFiles.none
) =>
  Effect.gen(function*() {
    const dir = yield* tmpDir
    const layer = Dfk.layer({ runDir: dir, ...config }).pipe(
      Layer.provide(files),
      Layer.provide(platform)
    )
    const result = yield* Effect.provide(Effect.zip(effect, Dfk.runDir), layer)
    return { value: result[0], runDir: result[1], root: dir }
  })

/**
 * Waits (in real time, up to 10 s) until `condition` holds: for work that a forked fiber
 * finishes with real I/O after the TestClock has moved.
 */
export const eventually = (condition: () => boolean, what = "the condition"): Effect.Effect<void> =>
  Effect.promise(async () => {
    const deadline = Date.now() + 10_000
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })

/** How a wrapped file system writes some bytes: `write` does the real write. */
export type WriteHook = (
  method: "writeFile" | "writeAll",
  file: string,
  data: Uint8Array,
  write: (bytes: Uint8Array) => Effect.Effect<void, any>
) => Effect.Effect<void, any>

/**
 * `NodeFileSystem` with `writeFile` and the writes through open files (opened before a fault
 * too: the store keeps its file open) going through `hooks.write`; `hooks.sync` wraps the
 * sync of an open file, and `hooks.more` overrides other methods.
 */
export const interceptedFileSystem = (hooks: {
  readonly write: WriteHook
  readonly sync?: (file: string, sync: Effect.Effect<void, PlatformError>) => Effect.Effect<void, PlatformError>
  readonly more?: (real: FileSystem.FileSystem) => Partial<FileSystem.FileSystem>
}): Layer.Layer<FileSystem.FileSystem> =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real): FileSystem.FileSystem => ({
      ...real,
      writeFile: (file, data, options) =>
        hooks.write("writeFile", file, data, (bytes) => real.writeFile(file, bytes, options)),
      open: (file, options) =>
        Effect.map(real.open(file, options), (handle) =>
          new Proxy(handle, {
            get: (target, key) => {
              if (key === "writeAll") {
                return (data: Uint8Array) => hooks.write("writeAll", file, data, (bytes) => target.writeAll(bytes))
              }
              if (key === "sync" && hooks.sync !== undefined) return hooks.sync(file, target.sync)
              return Reflect.get(target, key)
            }
          })),
      ...hooks.more?.(real)
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))
