/**
 * The npm package as a consumer sees it: `scripts/build_npm.ts` builds it, `npm pack` packs
 * it, a temporary project installs the tarball next to `effect`, `@effect/platform` and
 * `@effect/platform-node`, a plain Node ESM script imports `effect-dfk` and resumes a workflow
 * from a checkpoint, and the repo's `tsc` type-checks consumer code against the built `.d.ts`.
 * The SQL packages are optional peers: `effect-dfk/sql` loads with `@effect/sql` installed, and
 * `dfk --store` names the client package it lacks.
 *
 * The install is offline: the temporary project gets a lock file cut from the repo's own
 * `package-lock.json`, so `npm ci --offline` needs only the tarballs that the repo's `npm ci`
 * put into the npm cache (a fresh CI cache has no registry metadata, so a plain
 * `npm install --offline` would fail there). If the cache lacks them, it retries with
 * `--prefer-offline`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const tsc = path.join(repo, "node_modules", "typescript", "bin", "tsc")
/**
 * The packages the consumer project installs next to effect-dfk: its peers, and of the
 * optional ones `@effect/sql` and `@effect/sql-pg` (pure JavaScript) but not
 * `@effect/sql-sqlite-node` (a native addon), so that `dfk --store sqlite:` finds it missing.
 */
const consumerDeps = ["effect", "@effect/platform", "@effect/platform-node", "@effect/sql", "@effect/sql-pg"] as const

interface RunResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command; never rejects (the exit code is in the result). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<RunResult> =>
  new Promise((resolve) => {
    execFile(command, [...args], { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } }, (
      error,
      stdout,
      stderr
    ) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })

/** Runs a command and fails with its output unless it exits with 0. */
const runOk = async (command: string, args: ReadonlyArray<string>, cwd: string): Promise<RunResult> => {
  const result = await run(command, args, cwd)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited with ${result.code}\n${result.stdout}\n${result.stderr}`)
  }
  return result
}

interface LockEntry {
  readonly version?: string
  readonly dependencies?: Record<string, string>
  readonly optionalDependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
  readonly [key: string]: unknown
}

/**
 * A `package.json` and `package-lock.json` for the consumer project: effect-dfk from the tarball,
 * and everything else (the consumer deps, the package's own dependencies and all their
 * dependencies and peers) cut from the repo's lock file, at the same paths.
 */
const consumerLock = (tarball: string, projectDir: string, builtPackage: LockEntry) => {
  const rootLock = JSON.parse(fs.readFileSync(path.join(repo, "package-lock.json"), "utf8"))
  const packages: Record<string, LockEntry> = rootLock.packages
  const resolveFrom = (from: string, name: string): string | undefined => {
    let location = from
    for (;;) {
      const candidate = `${location === "" ? "" : `${location}/`}node_modules/${name}`
      if (packages[candidate] !== undefined) return candidate
      if (location === "") return undefined
      const at = location.lastIndexOf("/node_modules/")
      location = at < 0 ? "" : location.slice(0, at)
    }
  }
  const tarballSpec = `file:${path.relative(projectDir, tarball)}`
  const dependencies: Record<string, string> = { "effect-dfk": tarballSpec }
  for (const name of consumerDeps) {
    const version = packages[`node_modules/${name}`]?.version
    if (version === undefined) throw new Error(`package-lock.json has no ${name}`)
    dependencies[name] = version
  }
  const dfkEntry: LockEntry = {
    ...builtPackage,
    resolved: tarballSpec,
    integrity: `sha512-${crypto.createHash("sha512").update(fs.readFileSync(tarball)).digest("base64")}`
  }
  const out: Record<string, LockEntry> = { "": { name: "consumer", dependencies } }
  const queue = Object.keys(dependencies).map((name) => `node_modules/${name}`)
  const seen = new Set<string>()
  while (queue.length > 0) {
    const location = queue.shift()!
    if (seen.has(location)) continue
    seen.add(location)
    const isDfk = location === "node_modules/effect-dfk"
    const entry = isDfk ? dfkEntry : packages[location]!
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry
    out[location] = rest
    const optionalPeers = new Set(
      Object.entries(entry.peerDependenciesMeta ?? {}).filter(([, meta]) => meta.optional).map(([name]) => name)
    )
    const optional = new Set([...Object.keys(entry.optionalDependencies ?? {}), ...optionalPeers])
    // An optional peer is installed only when something depends on it (then it is reached from there).
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((name) => !optionalPeers.has(name))
    ]
    for (const name of names) {
      // The tarball is not in the repo's tree: its dependencies resolve from the top.
      const target = resolveFrom(isDfk ? "" : location, name)
      if (target !== undefined) queue.push(target)
      else if (!optional.has(name)) throw new Error(`package-lock.json has no ${name} (needed by ${location})`)
    }
  }
  return {
    packageJson: { name: "consumer", private: true, type: "module", dependencies },
    lock: { name: "consumer", lockfileVersion: 3, requires: true, packages: out }
  }
}

/** The consumer's workflow: plain Node ESM, run twice against the same run directory. */
const workflowScript = `
import { Effect, Schema } from "effect"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { App, CheckpointFiles, Dfk } from "effect-dfk"

const runDir = process.argv[2]
let bodyRuns = 0

const square = App.make(
  { name: "square", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.sync(() => { bodyRuns++; return x * x })
)
const label = App.make(
  {
    name: "label",
    input: Schema.Struct({ n: Schema.Number, note: Schema.optional(Schema.String) }),
    output: Schema.String,
    cache: true,
    ignoreForCache: ["note"]
  },
  ({ n }) => Effect.sync(() => { bodyRuns++; return "n=" + n })
)

const workflow = Effect.gen(function* () {
  const squares = yield* Effect.forEach([1, 2, 3], (x) => square(x))
  const again = yield* square(2)
  const labelled = yield* label({ n: squares[2], note: "ignored" })
  return {
    squares,
    again,
    labelled,
    runDir: yield* Dfk.runDir,
    checkpointDir: (yield* Dfk).checkpointDir,
    stats: yield* Dfk.detailedStats
  }
})

const result = await Effect.runPromise(
  workflow.pipe(
    Effect.provide(Dfk.layer({ runDir, checkpointMode: "task_exit" })),
    Effect.provide(CheckpointFiles.last(runDir)),
    Effect.provide(NodeContext.layer)
  )
)
console.log("RESULT " + JSON.stringify({ ...result, bodyRuns }))
`

/** Consumer TypeScript that must compile against the built declarations. */
const goodConsumer = `
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Layer from "effect/Layer"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { App, AppCacheError, CheckpointFiles, CheckpointStore, Dfk, getLastCheckpoint, Memo } from "effect-dfk"
import type { CheckpointMode, DfkError, DfkStats } from "effect-dfk"
import { SqlStore } from "effect-dfk/sql"

export const double = App.make(
  { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.succeed(x * 2)
)
export const add = App.make(
  {
    name: "add",
    input: Schema.Struct({ a: Schema.Number, b: Schema.Number, note: Schema.optional(Schema.String) }),
    output: Schema.Number,
    cache: true,
    ignoreForCache: ["note"],
    version: "1"
  },
  ({ a, b }) => Effect.succeed(a + b)
)

const mode: CheckpointMode = "task_exit"
export const program: Effect.Effect<
  { readonly sum: number; readonly stats: DfkStats },
  DfkError | AppCacheError,
  FileSystem.FileSystem | Path.Path
> = Effect.gen(function* () {
  const x: number = yield* double(2)
  const sum: number = yield* add({ a: x, b: 1, note: "n" })
  const dir: string = yield* Dfk.checkpoint
  void dir
  return { sum, stats: yield* Dfk.detailedStats }
}).pipe(
  Effect.provide(Dfk.layer({ runDir: "runinfo", checkpointMode: mode })),
  Effect.provide(CheckpointFiles.last("runinfo"))
)
export const last: Effect.Effect<Array<string>, never, FileSystem.FileSystem | Path.Path> = getLastCheckpoint("runinfo")
export const memo: typeof Memo = Memo
export const store: Layer.Layer<CheckpointStore, SqlError, SqlClient> = SqlStore.layer({ tablePrefix: "app_", lease: "10 seconds" })
`

/** Consumer TypeScript with one wrong call: a string where the app's input schema wants a number. */
const wrongConsumer = `
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { App } from "effect-dfk"

const double = App.make(
  { name: "double", input: Schema.Number, output: Schema.Number, cache: true },
  (x) => Effect.succeed(x * 2)
)
export const wrong = double("three")
`

describe("the npm package", () => {
  let work = ""
  let packageDir = ""
  let project = ""
  let tarballFiles: Array<string> = []
  let tarball = ""
  let builtPackage: Record<string, any> = {}

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "effect-dfk-npm-"))
    packageDir = path.join(work, "npm")
    project = path.join(work, "consumer")
    fs.mkdirSync(project)

    // Build (into the temp dir, so as not to race with a `npm run build` in the repo) and pack.
    await runOk(process.execPath, ["--import", "tsx", "scripts/build_npm.ts", "--out-dir", packageDir], repo)
    builtPackage = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8"))
    const packed = await runOk("npm", ["pack", packageDir, "--pack-destination", work, "--json"], work)
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    tarballFiles = info!.files.map((file) => file.path).sort()
    tarball = path.join(work, info!.filename)

    // Install it into a consumer project, offline, from a lock file cut from the repo's.
    const { lock, packageJson } = consumerLock(tarball, project, {
      version: builtPackage.version,
      license: builtPackage.license,
      ...(builtPackage.dependencies ? { dependencies: builtPackage.dependencies } : {}),
      peerDependencies: builtPackage.peerDependencies,
      peerDependenciesMeta: builtPackage.peerDependenciesMeta,
      ...(builtPackage.bin ? { bin: builtPackage.bin } : {}),
      engines: builtPackage.engines
    })
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify(packageJson, null, 2))
    fs.writeFileSync(path.join(project, "package-lock.json"), JSON.stringify(lock, null, 2))
    const flags = ["--no-audit", "--no-fund", "--ignore-scripts"]
    const offline = await run("npm", ["ci", "--offline", ...flags], project)
    if (offline.code !== 0) {
      console.warn(`npm ci --offline failed, retrying with --prefer-offline:\n${offline.stderr}`)
      await runOk("npm", ["ci", "--prefer-offline", ...flags], project)
    }
    fs.writeFileSync(path.join(project, "workflow.mjs"), workflowScript)
  }, 240_000)

  afterAll(() => {
    if (work !== "") fs.rmSync(work, { recursive: true, force: true })
  })

  it("has a generated package.json and only compiled files", () => {
    assert.strictEqual(builtPackage.name, "effect-dfk")
    assert.strictEqual(builtPackage.version, JSON.parse(fs.readFileSync(path.join(repo, "deno.json"), "utf8")).version)
    assert.strictEqual(builtPackage.type, "module")
    assert.strictEqual(builtPackage.license, "MIT")
    assert.strictEqual(builtPackage.sideEffects, false)
    assert.deepStrictEqual(builtPackage.exports["."], { types: "./mod.d.ts", import: "./mod.js" })
    // The root's engines (the runtimes CI tests on) and its repository fields (placeholders
    // that the owner fills in) go into the package.
    const root = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8"))
    assert.deepStrictEqual(builtPackage.engines, root.engines)
    assert.strictEqual(builtPackage.engines.node, ">=20")
    for (const key of ["repository", "homepage", "bugs"]) {
      assert.isDefined(root[key], key)
      assert.deepStrictEqual(builtPackage[key], root[key], key)
    }
    assert.deepStrictEqual(builtPackage.exports["./sql"], { types: "./sql.d.ts", import: "./sql.js" })
    // The SQL packages are optional peers, with the repository's ranges; none is a dependency.
    const rootDev = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")).devDependencies
    const sqlPackages = ["@effect/sql", "@effect/sql-pg", "@effect/sql-sqlite-node"]
    assert.deepStrictEqual(builtPackage.peerDependencies, {
      "@effect/platform": "^0.97.2",
      ...Object.fromEntries(sqlPackages.map((name) => [name, rootDev[name]])),
      "effect": "^3.22.4"
    })
    assert.deepStrictEqual(
      builtPackage.peerDependenciesMeta,
      Object.fromEntries(sqlPackages.map((name) => [name, { optional: true }]))
    )
    for (const name of sqlPackages) assert.notProperty(builtPackage.dependencies ?? {}, name)

    for (
      const file of [
        "package.json",
        "LICENSE",
        "mod.js",
        "mod.d.ts",
        "sql.js",
        "sql.d.ts",
        "src/Dfk.js",
        "src/Dfk.d.ts"
      ]
    ) {
      assert.include(tarballFiles, file)
    }
    assert.strictEqual(tarballFiles.includes("README.md"), fs.existsSync(path.join(repo, "README.md")))
    const sources = tarballFiles.filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    assert.deepStrictEqual(sources, [])
    const dts = fs.readFileSync(path.join(packageDir, "mod.d.ts"), "utf8")
    assert.include(dts, `from "./src/Dfk.js"`)
    assert.notInclude(dts, `.ts"`)
    // The declarations describe the public API only: none under src/internal/ or cli/, and no
    // public one refers to an internal module.
    const declarations = tarballFiles.filter((file) => file.endsWith(".d.ts"))
    assert.deepStrictEqual(
      declarations.filter((file) => file.startsWith("src/internal/") || file.startsWith("cli/")),
      []
    )
    assert.isAbove(declarations.length, 5)
    for (const file of declarations) {
      assert.notInclude(fs.readFileSync(path.join(packageDir, file), "utf8"), "internal/", file)
    }

    const withCli = fs.existsSync(path.join(repo, "cli", "main.ts"))
    if (withCli) {
      const rootPackage = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8"))
      assert.deepStrictEqual(builtPackage.bin, { dfk: "cli/main.js" })
      for (const name of ["@effect/cli", "@effect/platform-node", "@effect/printer", "@effect/printer-ansi"]) {
        assert.strictEqual(builtPackage.dependencies?.[name], rootPackage.devDependencies[name])
      }
      const main = path.join(packageDir, "cli", "main.js")
      assert.isTrue(fs.readFileSync(main, "utf8").startsWith("#!/usr/bin/env node\n"))
      assert.notStrictEqual(fs.statSync(main).mode & 0o111, 0)
    } else {
      assert.isUndefined(builtPackage.bin)
      assert.isUndefined(builtPackage.dependencies)
    }
  })

  it("publint reports nothing and attw no problem for its ESM entry points", async () => {
    // --strict: a warning counts as an error; suggestions are printed but do not fail.
    const publint = await run(path.join(repo, "node_modules", ".bin", "publint"), ["run", tarball, "--strict"], work)
    assert.strictEqual(publint.code, 0, publint.stdout + publint.stderr)
    assert.include(publint.stdout, "All good!", publint.stdout)
    // The package is ESM only: CommonJS resolutions (node10, node16 from CJS) are not checked.
    const attw = await run(
      path.join(repo, "node_modules", ".bin", "attw"),
      [tarball, "--profile", "esm-only", "--format", "json"],
      work
    )
    assert.strictEqual(attw.code, 0, attw.stdout + attw.stderr)
    const { analysis } = JSON.parse(attw.stdout)
    const entrypoints = Object.keys(analysis.entrypoints).sort()
    assert.deepStrictEqual(entrypoints, [".", "./package.json", "./sql"])
    const esm = ["node16-esm", "bundler"]
    const problems = (analysis.problems as Array<{ kind: string; entrypoint?: string; resolutionKind?: string }>)
      .filter((problem) => problem.resolutionKind === undefined || esm.includes(problem.resolutionKind))
    assert.deepStrictEqual(problems, [])
    for (const entrypoint of [".", "./sql"]) {
      for (const kind of esm) {
        const resolution = analysis.entrypoints[entrypoint].resolutions[kind].resolution
        assert.isTrue(resolution.isTypeScript, `${entrypoint} (${kind}) resolves to declarations`)
        assert.match(resolution.fileName, /\.d\.ts$/)
      }
    }
  }, 120_000)

  it("runs from a plain Node ESM script and resumes from its checkpoint", async () => {
    const runDir = path.join(work, "runinfo")
    const runWorkflow = async () => {
      const { stdout } = await runOk(process.execPath, ["workflow.mjs", runDir], project)
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
      assert.isDefined(line, stdout)
      return JSON.parse(line!.slice("RESULT ".length))
    }
    const first = await runWorkflow()
    const second = await runWorkflow()

    const expected = { squares: [1, 4, 9], again: 4, labelled: "n=9" }
    for (const run of [first, second]) {
      assert.deepStrictEqual({ squares: run.squares, again: run.again, labelled: run.labelled }, expected)
    }
    // First run: three squares and one label ran; square(2) again was a memo hit.
    assert.strictEqual(first.bodyRuns, 4)
    assert.strictEqual(first.stats.misses, 4)
    assert.strictEqual(first.stats.hits, 1)
    assert.strictEqual(first.stats.fromCheckpoint, 0)
    assert.strictEqual(first.stats.checkpointed, 4)
    const entries = fs.readFileSync(path.join(first.checkpointDir, "tasks.jsonl"), "utf8").trim().split("\n")
    assert.strictEqual(entries.length, 4)

    // Second run: a new run directory, every body served from the first run's checkpoint.
    assert.notStrictEqual(second.runDir, first.runDir)
    assert.strictEqual(second.bodyRuns, 0)
    assert.strictEqual(second.stats.misses, 0)
    assert.strictEqual(second.stats.hits, 5)
    assert.isAtLeast(second.stats.fromCheckpoint, 4)
  }, 120_000)

  it("installs the dfk bin when the package has the CLI", async () => {
    const bin = path.join(project, "node_modules", ".bin", "dfk")
    if (!fs.existsSync(path.join(repo, "cli", "main.ts"))) {
      assert.isFalse(fs.existsSync(bin))
      return
    }
    // Runs with only the installed dependencies: @effect/cli and friends came with the package.
    const help = await runOk(bin, ["--help"], project)
    assert.include(help.stdout, "dfk")
  }, 120_000)

  it(
    "effect-dfk/sql loads with @effect/sql; dfk --store names a missing client and never prints the URL's password",
    async () => {
      fs.writeFileSync(
        path.join(project, "sql.mjs"),
        `import { SqlStore } from "effect-dfk/sql"\nconsole.log(typeof SqlStore.layer, typeof SqlStore.make)\n`
      )
      const loaded = await runOk(process.execPath, ["sql.mjs"], project)
      assert.strictEqual(loaded.stdout.trim(), "function function")
      if (!fs.existsSync(path.join(repo, "cli", "main.ts"))) return
      const bin = path.join(project, "node_modules", ".bin", "dfk")
      const sqlite = await run(bin, ["--store", "sqlite:dfk.db", "runs"], project)
      assert.strictEqual(sqlite.code, 1, sqlite.stdout + sqlite.stderr)
      assert.strictEqual(
        sqlite.stderr.trim(),
        "dfk: --store sqlite: needs @effect/sql-sqlite-node: npm install @effect/sql-sqlite-node"
      )
      // @effect/sql-pg is installed: it is imported, and the connection (to a closed port) fails.
      const pg = await run(bin, ["runs", "nightly", "--store", "postgres://dfk:s3cret-pw@127.0.0.1:9/nightly"], project)
      assert.strictEqual(pg.code, 1, pg.stdout + pg.stderr)
      assert.include(pg.stderr, "dfk: Cannot open the store postgres://127.0.0.1:9/nightly: ")
      assert.notInclude(pg.stdout + pg.stderr, "s3cret")
    },
    120_000
  )

  it("type-checks consumer code against the built declarations", async () => {
    const compilerOptions = {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2022"],
      types: [],
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      skipLibCheck: true
    }
    fs.writeFileSync(path.join(project, "good.ts"), goodConsumer)
    fs.writeFileSync(path.join(project, "wrong.ts"), wrongConsumer)
    // One program for both files (effect's declarations load once): good.ts must have no error.
    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({ compilerOptions, files: ["good.ts", "wrong.ts"] })
    )
    const result = await run(process.execPath, [tsc, "-p", "tsconfig.json", "--pretty", "false"], project)
    const errors = result.stdout.split("\n").filter((line) => line.includes("error TS"))
    assert.notStrictEqual(result.code, 0, "wrong.ts should not compile")
    assert.deepStrictEqual(errors.filter((line) => !line.startsWith("wrong.ts(")), [], "good.ts should compile")
    assert.strictEqual(errors.length, 1, result.stdout)
    assert.include(errors[0], "wrong.ts(10,")
    assert.include(errors[0], "Argument of type 'string' is not assignable to parameter of type 'number'")
  }, 120_000)
})
