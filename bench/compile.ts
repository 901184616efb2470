/**
 * Transpiles the library (`mod.ts`, `sql.ts`, `src/`) and the benchmarks' child scripts to plain JavaScript
 * with TypeScript's `transpileModule` (no type check; `.ts` imports rewritten to `.js`),
 * as the npm build does, and imports it from there. The benchmarks measure that
 * JavaScript, not tsx's on-the-fly output (tsx wraps every function expression in a
 * `__name` helper call, which costs in closures made per call), and the load
 * benchmark's child processes run it on plain `node`, so their peak RSS does not include
 * tsx's loader thread (about 70 MB).
 *
 * @module
 */
import { readdirSync, rmSync } from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type * as LibraryModule from "../mod.ts"
import { transpileFile } from "../scripts/run.mjs"
import type * as SqlModule from "../sql.ts"
import type * as Canonical from "../src/internal/canonical.ts"
import { DATA_DIR, ROOT } from "./util.ts"

/** The library's public module, as `mod.ts` types it. */
export type Library = typeof LibraryModule

/** The library's `effect-dfk/sql` module, as `sql.ts` types it. */
export type SqlLibrary = typeof SqlModule

/** The internal key module, as `src/internal/canonical.ts` types it. */
export type CanonicalModule = typeof Canonical

/** A compiled library tree, imported. */
export interface Compiled {
  /** The source tree it was compiled from (holds `mod.ts` and `src/`). */
  readonly srcRoot: string
  /** Where the JavaScript is. */
  readonly outDir: string
  /** `mod.ts`. */
  readonly lib: Library
  /** `sql.ts` (`effect-dfk/sql`). */
  readonly sqlLib: SqlLibrary
  /** `src/internal/canonical.ts`. */
  readonly canonical: CanonicalModule
  /** The compiled `bench/load-child.ts`, run by `node <child> …`. */
  readonly loadChild: string
  /** The compiled `bench/fanout-child.ts`, run by `node <child> …`. */
  readonly fanoutChild: string
  /** The compiled `test/fixtures/sql-worker.ts` (B9), run by `node <worker>` with its `SQLW_*` environment. */
  readonly sqlWorker: string
  /** The compiled `bench/startup-child.ts` (B10), run by `node <child> …`. */
  readonly startupChild: string
}

const transpile = transpileFile

/**
 * Transpiles `srcRoot`'s `mod.ts` and `src/**` (and this repository's child scripts) into
 * `bench/.data/js-<name>/`, then imports it.
 */
export const compileLibrary = async (srcRoot: string = ROOT): Promise<Compiled> => {
  const root = path.resolve(srcRoot)
  const name = root === path.resolve(ROOT) ? "main" : path.basename(root)
  const outDir = path.join(DATA_DIR, `js-${name}`)
  rmSync(outDir, { recursive: true, force: true })
  transpile(path.join(root, "mod.ts"), path.join(outDir, "mod.js"))
  transpile(path.join(root, "sql.ts"), path.join(outDir, "sql.js"))
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = path.join(rel, e.name)
      if (e.isDirectory()) walk(child)
      else if (e.name.endsWith(".ts")) {
        transpile(path.join(root, child), path.join(outDir, child.replace(/\.ts$/, ".js")))
      }
    }
  }
  walk("src")
  transpile(path.join(ROOT, "bench", "child-util.ts"), path.join(outDir, "bench", "child-util.js"))
  // The SQL client of a store string, which the SQL worker and the startup child open their store over.
  transpile(path.join(ROOT, "cli", "sqlClient.ts"), path.join(outDir, "cli", "sqlClient.js"))
  const loadChild = path.join(outDir, "bench", "load-child.js")
  transpile(path.join(ROOT, "bench", "load-child.ts"), loadChild)
  const fanoutChild = path.join(outDir, "bench", "fanout-child.js")
  transpile(path.join(ROOT, "bench", "fanout-child.ts"), fanoutChild)
  const sqlWorker = path.join(outDir, "test", "fixtures", "sql-worker.js")
  transpile(path.join(ROOT, "test", "fixtures", "sql-worker.ts"), sqlWorker)
  const startupChild = path.join(outDir, "bench", "startup-child.js")
  transpile(path.join(ROOT, "bench", "startup-child.ts"), startupChild)
  const lib = (await import(pathToFileURL(path.join(outDir, "mod.js")).href)) as Library
  const sqlLib = (await import(pathToFileURL(path.join(outDir, "sql.js")).href)) as SqlLibrary
  const canonical = (await import(
    pathToFileURL(path.join(outDir, "src", "internal", "canonical.js")).href
  )) as CanonicalModule
  return { srcRoot: root, outDir, lib, sqlLib, canonical, loadChild, fanoutChild, sqlWorker, startupChild }
}
