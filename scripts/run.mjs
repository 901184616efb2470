/**
 * Runs one of the repository's TypeScript entry points (`examples/demo.ts`, `cli/main.ts`) on
 * plain `node`, from JavaScript compiled once and cached: `npm run demo` and `npm run dfk` go
 * through here (issue 15 item 3, start-up).
 *
 * Under tsx every start transpiles what it loads of the ~60 files of `mod.ts`, `src/` and
 * `cli/` again (about 0.9 s of a resumed demo run's 1.5 s: `bench/startup.ts`). Here the
 * first run transpiles them with TypeScript's `transpileModule` (no type check, as
 * `bench/compile.ts` and the npm build do; relative `.ts` imports rewritten to `.js`) into
 * `.tmp/js/<key>/`, where `<key>` is a hash of every file compiled (paths and bytes), of
 * `package.json` and of the compiler's version; later runs find that directory and import it
 * at once, and a changed source makes a new key, so it recompiles. The compiler is loaded
 * only to compile.
 *
 * This file is plain JavaScript (Node 20 runs no TypeScript on its own); `run.d.mts` types it
 * for the tests.
 *
 * Usage: `node scripts/run.mjs <entry.ts> [args…]`; the entry sees `process.argv` as under tsx
 * (`process.argv[1]` is its compiled file, so a child started as `process.argv[1]`, as the
 * demo's workers are, runs the same JavaScript).
 *
 * @module
 */
import console from "node:console"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath, pathToFileURL } from "node:url"

/** The repository root. */
export const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Bumped when the way files are compiled changes, so old caches are not reused. */
const COMPILE_VERSION = "1"

/** Directories whose `.ts` files are compiled (recursively), and single files. */
const SOURCE_DIRS = ["src", "cli"]
const SOURCE_FILES = ["mod.ts", "sql.ts", "examples/demo.ts"]

/** How many compiled trees `.tmp/js/` keeps (the newest), so a long-running process's lazy imports still resolve. */
const KEEP = 3

/**
 * The files compiled, relative to `root` with `/` separators, sorted: `mod.ts`, `sql.ts`,
 * `examples/demo.ts` and every `.ts` file under `src/` and `cli/` (none of the `.d.ts`).
 *
 * @param {string} root
 * @returns {Array<string>}
 */
export const sourceFiles = (root = rootDir) => {
  /** @type {Array<string>} */
  const out = []
  /** @param {string} rel */
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`
      if (entry.isDirectory()) walk(child)
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(child)
    }
  }
  for (const dir of SOURCE_DIRS) if (fs.existsSync(path.join(root, dir))) walk(dir)
  for (const file of SOURCE_FILES) if (fs.existsSync(path.join(root, file))) out.push(file)
  return out.sort()
}

/** Resolves the compiler from this repository's `node_modules`. */
const require = createRequire(import.meta.url)

/**
 * The compiler's version (`typescript/package.json`), read without loading the compiler.
 *
 * @returns {string}
 */
const compilerVersion = () => {
  try {
    return JSON.parse(fs.readFileSync(require.resolve("typescript/package.json"), "utf8")).version
  } catch {
    return "unknown"
  }
}

/**
 * The cache key of `root`'s sources: the sha256 (hex, first 16 characters) of every compiled
 * file's path and bytes, `package.json`'s bytes (the CLI imports it for its version), the
 * compiler's version and this script's compile version. Any change to a compiled file (an
 * edit, a file added, removed or renamed) gives another key.
 *
 * @param {string} root
 * @returns {string}
 */
export const cacheKey = (root = rootDir) => {
  const hash = createHash("sha256")
  hash.update(`effect-dfk run.mjs ${COMPILE_VERSION}\0typescript ${compilerVersion()}\0`)
  for (const file of [...sourceFiles(root), "package.json"]) {
    const bytes = fs.readFileSync(path.join(root, file))
    hash.update(`${file}\0${bytes.length}\0`)
    hash.update(bytes)
  }
  return hash.digest("hex").slice(0, 16)
}

/**
 * Where `root`'s compiled JavaScript is cached: `<root>/.tmp/js/` (gitignored).
 *
 * @param {string} root
 * @returns {string}
 */
export const cacheBase = (root = rootDir) => path.join(root, ".tmp", "js")

/**
 * Transpiles one TypeScript file to plain JavaScript at `to` (no type check; relative `.ts`
 * imports rewritten to `.js`), as the npm build does. `bench/compile.ts` uses it too.
 *
 * @param {string} from
 * @param {string} to
 */
export const transpileFile = (from, to) => {
  /** @type {typeof import("typescript")} */
  const ts = require("typescript")
  const js = ts.transpileModule(fs.readFileSync(from, "utf8"), {
    fileName: from,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      rewriteRelativeImportExtensions: true,
      verbatimModuleSyntax: true
    }
  }).outputText
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.writeFileSync(to, js)
}

/**
 * Transpiles `root`'s sources into `outDir` (as `.js`) and copies `package.json` there (its
 * `"type": "module"` makes the files ES modules, and `cli/main.js` reads its version from it).
 *
 * @param {string} root
 * @param {string} outDir
 */
const compileInto = async (root, outDir) => {
  for (const file of sourceFiles(root)) {
    transpileFile(path.join(root, file), path.join(outDir, file.replace(/\.ts$/, ".js")))
  }
  fs.copyFileSync(path.join(root, "package.json"), path.join(outDir, "package.json"))
}

/**
 * The directory of `root`'s compiled JavaScript for its sources as they are now: the cached
 * one if its key matches, else compiled first (into a directory of its own, renamed into place
 * once complete, so a concurrent run never sees half of it). Keeps the newest few trees.
 *
 * @param {string} root
 * @returns {Promise<{ readonly dir: string, readonly compiled: boolean }>}
 */
export const ensureCompiled = async (root = rootDir) => {
  const base = cacheBase(root)
  const dir = path.join(base, cacheKey(root))
  if (fs.existsSync(path.join(dir, "package.json"))) return { dir, compiled: false }
  fs.mkdirSync(base, { recursive: true })
  const tmp = fs.mkdtempSync(path.join(base, ".compiling-"))
  try {
    await compileInto(root, tmp)
    try {
      fs.renameSync(tmp, dir)
    } catch (error) {
      // Another run compiled the same key first: use its tree.
      if (!fs.existsSync(path.join(dir, "package.json"))) throw error
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  prune(base, dir)
  return { dir, compiled: true }
}

/**
 * Removes all but the newest `KEEP` compiled trees of `base` (never `current`).
 *
 * @param {string} base
 * @param {string} current
 */
const prune = (base, current) => {
  const trees = fs.readdirSync(base, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{16}$/.test(e.name) && path.join(base, e.name) !== current)
    .map((e) => ({ dir: path.join(base, e.name), mtimeMs: fs.statSync(path.join(base, e.name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs)
  for (const { dir } of trees.slice(KEEP - 1)) fs.rmSync(dir, { recursive: true, force: true })
}

/** A bad command line of this script (printed as its message alone). */
class UsageError extends Error {}

/**
 * Runs `entry` (a `.ts` path under `root`, e.g. `examples/demo.ts`) from the compiled tree
 * with `args` as its arguments.
 *
 * @param {string} entry
 * @param {ReadonlyArray<string>} args
 * @param {string} root
 */
export const run = async (entry, args, root = rootDir) => {
  // Relative to the working directory (as `node` takes a script), else to the repository root.
  const absolute = fs.existsSync(path.resolve(entry)) ? path.resolve(entry) : path.resolve(root, entry)
  const rel = path.relative(root, absolute).split(path.sep).join("/")
  if (!sourceFiles(root).includes(rel)) {
    throw new UsageError(`${entry} is not one of the compiled entry points (${SOURCE_FILES.join(", ")}, src/, cli/)`)
  }
  const { dir } = await ensureCompiled(root)
  const file = path.join(dir, rel.replace(/\.ts$/, ".js"))
  process.argv = [process.argv[0], file, ...args]
  await import(pathToFileURL(file).href)
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)

if (isMain) {
  const [entry, ...args] = process.argv.slice(2)
  if (entry === undefined) {
    console.error("Usage: node scripts/run.mjs <entry.ts> [args…]")
    process.exit(2)
  }
  try {
    await run(entry, args)
  } catch (error) {
    // Our own usage errors as one line; anything else (the entry failed to load) with its stack.
    console.error(error instanceof UsageError ? error.message : error instanceof Error ? error.stack : String(error))
    process.exit(error instanceof UsageError ? 2 : 1)
  }
}
