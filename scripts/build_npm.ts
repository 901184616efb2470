/**
 * Builds the npm package into `npm/` (dnt's job, done with the TypeScript compiler):
 *
 * - ESM JavaScript and `.d.ts` files compiled from `mod.ts`, `sql.ts` (the subpath
 *   `effect-dfk/sql`) and `src/**` (see `tsconfig.build.json`) and, when it exists, `cli/main.ts` with what it imports; relative `.ts` import specifiers become `.js`, in
 *   the JavaScript (`rewriteRelativeImportExtensions`) and in the declarations (a transformer
 *   here, since the compiler leaves those alone);
 * - a generated `package.json` (version from the root `package.json`, the one place it lives),
 *   with a `dfk` bin when `cli/main.ts` exists (`cli/main.js` reads its version from that
 *   generated file, `../package.json`); `effect` and `@effect/platform` are peer
 *   dependencies, the SQL packages optional peer dependencies (`peerDependenciesMeta`): only
 *   `effect-dfk/sql` and `dfk --store` use them, and nothing that `mod.js` or `cli/main.js`
 *   imports statically may import one (the build fails if it does);
 * - `README.md` and `LICENSE` copied from the repository root.
 *
 * The declarations describe the public API only: no public `.d.ts` may import one under
 * `src/internal/` or `cli/` (the build fails if one does), and those are left out; exports
 * marked `/** @internal *\/` are stripped (`stripInternal`).
 *
 * Usage: `tsx scripts/build_npm.ts [--out-dir <dir>]` (default `npm`, relative to the repo root).
 *
 * @module
 */
import * as fs from "node:fs"
import { builtinModules } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

/**
 * The repository root.
 */
export const rootDir: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/**
 * Peer dependencies of the library: the consumer brings its own Effect.
 */
export const peerDependencies: Readonly<Record<string, string>> = {
  "effect": "^3.22.4",
  "@effect/platform": "^0.97.2"
}

/**
 * Optional peer dependencies (`peerDependenciesMeta` `optional`), with the ranges of the root
 * `package.json`: `effect-dfk/sql` needs `@effect/sql`, and `dfk --store` a client
 * (`sqlite:` `@effect/sql-sqlite-node`, `postgres://` `@effect/sql-pg`), which it imports
 * only then. npm installs none of them with the package (better-sqlite3 is a native addon);
 * a user who wants them installs them, and npm checks their versions against these ranges.
 */
export const optionalPeerDependencyNames: ReadonlyArray<string> = [
  "@effect/sql",
  "@effect/sql-pg",
  "@effect/sql-sqlite-node"
]

/**
 * Runtime dependencies of the `dfk` CLI, added when `cli/main.ts` exists. Versions are read from
 * the root `package.json` (`devDependencies` or `dependencies`).
 */
export const cliDependencyNames: ReadonlyArray<string> = [
  "@effect/cli",
  "@effect/platform-node",
  "@effect/printer",
  "@effect/printer-ansi"
]

/**
 * What a build produced.
 */
export interface BuildResult {
  /** The absolute output directory. */
  readonly outDir: string
  /** The generated `package.json`. */
  readonly packageJson: Record<string, unknown>
  /** Whether the CLI was compiled. */
  readonly withCli: boolean
}

const readJson = (file: string): any => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (cause) {
    // eslint-disable-next-line preserve-caught-error -- the message carries the cause
    throw new Error(`Cannot read ${path.relative(rootDir, file)}: ${String(cause)}`)
  }
}

const isRelativeTs = (specifier: string): boolean =>
  (specifier.startsWith("./") || specifier.startsWith("../")) && /\.(m|c)?tsx?$/.test(specifier) &&
  !/\.d\.(m|c)?ts$/.test(specifier)

const toJs = (specifier: string): string =>
  specifier.replace(/\.(m|c)?tsx?$/, (_, m: string | undefined) => `.${m ?? ""}js`)

/** Whether a declaration file of the build is not part of the public API (src/internal/, cli/). */
const isPrivateDeclaration = (outDir: string, file: string): boolean => {
  const rel = path.relative(outDir, file).split(path.sep).join("/")
  return rel.startsWith("src/internal/") || rel.startsWith("cli/")
}

/**
 * A declaration transformer that rewrites relative `.ts` specifiers to `.js` in import and export
 * declarations, `import("...")` types and `declare module` names.
 */
const rewriteDeclarationSpecifiers: ts.TransformerFactory<ts.SourceFile | ts.Bundle> = (context) => {
  const f = context.factory
  const literal = (node: ts.Expression | undefined): node is ts.StringLiteral =>
    node !== undefined && ts.isStringLiteral(node) && isRelativeTs(node.text)
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isImportDeclaration(node) && literal(node.moduleSpecifier)) {
      return f.updateImportDeclaration(
        node,
        node.modifiers,
        node.importClause,
        f.createStringLiteral(toJs(node.moduleSpecifier.text)),
        node.attributes
      )
    }
    if (ts.isExportDeclaration(node) && literal(node.moduleSpecifier)) {
      return f.updateExportDeclaration(
        node,
        node.modifiers,
        node.isTypeOnly,
        node.exportClause,
        f.createStringLiteral(toJs(node.moduleSpecifier.text)),
        node.attributes
      )
    }
    if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && literal(node.argument.literal)
    ) {
      return f.updateImportTypeNode(
        node,
        f.updateLiteralTypeNode(node.argument, f.createStringLiteral(toJs(node.argument.literal.text))),
        node.attributes,
        node.qualifier ? (ts.visitNode(node.qualifier, visit) as ts.EntityName) : undefined,
        ts.visitNodes(node.typeArguments, visit) as ts.NodeArray<ts.TypeNode> | undefined,
        node.isTypeOf
      )
    }
    if (ts.isModuleDeclaration(node) && literal(node.name as ts.Expression)) {
      return f.updateModuleDeclaration(
        node,
        node.modifiers,
        f.createStringLiteral(toJs((node.name as ts.StringLiteral).text)),
        node.body ? (ts.visitNode(node.body, visit) as ts.ModuleBody) : undefined
      )
    }
    return ts.visitEachChild(node, visit, context)
  }
  return (node) => ts.visitNode(node, visit) as ts.SourceFile | ts.Bundle
}

const formatDiagnostics = (diagnostics: ReadonlyArray<ts.Diagnostic>): string =>
  ts.formatDiagnosticsWithColorAndContext(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => rootDir,
    getNewLine: () => "\n"
  })

/**
 * The package names a compiled ES module imports (static, re-export and dynamic imports with a
 * string literal), without subpaths.
 */
const importedPackages = (code: string): Array<string> => {
  const names = new Set<string>()
  const info = ts.preProcessFile(code, true, true)
  for (const { fileName } of info.importedFiles) {
    if (fileName.startsWith(".") || fileName.startsWith("/") || fileName.startsWith("node:")) continue
    const parts = fileName.split("/")
    const name = fileName.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!
    if (builtinModules.includes(name)) continue
    names.add(name)
  }
  return [...names]
}

/**
 * The specifiers a compiled ES module imports statically (import and export declarations),
 * not its dynamic `import()`s.
 */
const staticImports = (file: string, code: string): Array<string> => {
  const source = ts.createSourceFile(file, code, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS)
  const out: Array<string> = []
  for (const statement of source.statements) {
    if (
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier !== undefined && ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      out.push(statement.moduleSpecifier.text)
    }
  }
  return out
}

const packageOf = (specifier: string): string => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!
}

/**
 * The packages among `names` that `entry` (a compiled file under `outDir`) loads statically,
 * through its own imports or those of the package's files it imports, each with the file
 * that imports it.
 */
const staticallyLoaded = (outDir: string, entry: string, names: ReadonlyArray<string>): Array<string> => {
  const found: Array<string> = []
  const seen = new Set<string>()
  const queue = [path.join(outDir, entry)]
  while (queue.length > 0) {
    const file = queue.shift()!
    if (seen.has(file) || !fs.existsSync(file)) continue
    seen.add(file)
    for (const specifier of staticImports(file, fs.readFileSync(file, "utf8"))) {
      if (specifier.startsWith(".")) queue.push(path.resolve(path.dirname(file), specifier))
      else if (names.includes(packageOf(specifier))) found.push(`${path.relative(outDir, file)} imports ${specifier}`)
    }
  }
  return found
}

const listFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? listFiles(full) : [full]
  })

/**
 * Builds the npm package into `outDir` (emptied first). Throws on a type error or on a missing
 * input.
 */
export const build = (outDirOption = "npm"): BuildResult => {
  const outDir = path.resolve(rootDir, outDirOption)
  if (outDir === rootDir || rootDir.startsWith(outDir + path.sep)) {
    throw new Error(`Refusing to use ${outDir} as the output directory`)
  }
  const rootPackage = readJson(path.join(rootDir, "package.json"))
  const version: unknown = rootPackage.version
  if (typeof version !== "string" || version === "") throw new Error("package.json has no version")
  const withCli = fs.existsSync(path.join(rootDir, "cli", "main.ts"))

  // Compile.
  const configFile = path.join(rootDir, "tsconfig.build.json")
  const parsed = ts.getParsedCommandLineOfConfigFile(configFile, { outDir }, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(formatDiagnostics([d]))
    }
  })
  if (parsed === undefined) throw new Error("Cannot read tsconfig.build.json")
  if (parsed.errors.length > 0) throw new Error(formatDiagnostics(parsed.errors))
  fs.rmSync(outDir, { recursive: true, force: true })
  const rootNames = withCli ? [...parsed.fileNames, path.join(rootDir, "cli", "main.ts")] : parsed.fileNames
  const program = ts.createProgram({ rootNames, options: parsed.options })
  const emitted = program.emit(undefined, undefined, undefined, false, {
    afterDeclarations: [rewriteDeclarationSpecifiers]
  })
  const diagnostics = ts.sortAndDeduplicateDiagnostics([
    ...ts.getPreEmitDiagnostics(program),
    ...emitted.diagnostics
  ])
  if (diagnostics.length > 0 || emitted.emitSkipped) {
    throw new Error(`TypeScript failed:\n${formatDiagnostics(diagnostics)}`)
  }

  // Check that every relative specifier now ends in .js and find the packages the code imports.
  const imported = new Set<string>()
  for (const file of listFiles(outDir)) {
    if (!file.endsWith(".js") && !file.endsWith(".d.ts")) continue
    const code = fs.readFileSync(file, "utf8")
    for (const { fileName } of ts.preProcessFile(code, true, true).importedFiles) {
      if (isRelativeTs(fileName)) {
        throw new Error(`${path.relative(outDir, file)} still imports ${fileName}`)
      }
    }
    if (file.endsWith(".js")) { for (const name of importedPackages(code)) imported.add(name) }
  }

  // Declarations describe the public API only: none may import a file under src/internal/
  // or cli/ (checked here), so those files' own declarations are left out of the package.
  for (const file of listFiles(outDir)) {
    if (!file.endsWith(".d.ts") || isPrivateDeclaration(outDir, file)) continue
    for (const { fileName } of ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true).importedFiles) {
      if (!fileName.startsWith(".")) continue
      if (isPrivateDeclaration(outDir, path.resolve(path.dirname(file), fileName.replace(/\.js$/, ".d.ts")))) {
        throw new Error(
          `${path.relative(outDir, file)} imports ${fileName}: a public declaration refers to an internal one`
        )
      }
    }
  }
  for (const file of listFiles(outDir)) {
    if (file.endsWith(".d.ts") && isPrivateDeclaration(outDir, file)) fs.rmSync(file)
  }

  // Dependencies.
  const rootVersions: Record<string, string> = {
    ...rootPackage.dependencies,
    ...rootPackage.devDependencies
  }
  const optionalPeers: Record<string, string> = {}
  for (const name of optionalPeerDependencyNames) {
    const range = rootVersions[name]
    if (range === undefined) throw new Error(`${name} is an optional peer dependency but package.json does not list it`)
    optionalPeers[name] = range
  }
  // The core and the CLI load without them: only effect-dfk/sql and dfk --store need them.
  for (const entry of ["mod.js", ...(withCli ? ["cli/main.js"] : [])]) {
    const loaded = staticallyLoaded(outDir, entry, optionalPeerDependencyNames)
    if (loaded.length > 0) {
      throw new Error(`${entry} must load without the optional peer dependencies, but ${loaded.join(", ")}`)
    }
  }
  const dependencies: Record<string, string> = {}
  if (withCli) {
    for (const name of cliDependencyNames) {
      const range = rootVersions[name]
      if (range === undefined) throw new Error(`The CLI needs ${name} but package.json does not list it`)
      dependencies[name] = range
    }
  }
  for (const name of imported) {
    if (name === rootPackage.name || name in peerDependencies || name in optionalPeers || name in dependencies) continue
    const range = rootVersions[name]
    if (range === undefined) throw new Error(`The compiled code imports ${name}, which package.json does not list`)
    dependencies[name] = range
  }

  // The bin file.
  let bin: Record<string, string> | undefined
  if (withCli) {
    const mainJs = path.join(outDir, "cli", "main.js")
    if (!fs.existsSync(mainJs)) throw new Error("cli/main.ts compiled to no cli/main.js")
    const code = fs.readFileSync(mainJs, "utf8")
    if (!code.startsWith("#!")) fs.writeFileSync(mainJs, `#!/usr/bin/env node\n${code}`)
    fs.chmodSync(mainJs, 0o755)
    bin = { dfk: "cli/main.js" }
  }

  const sortKeys = (record: Record<string, string>) =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)))
  const packageJson: Record<string, unknown> = {
    name: "effect-dfk",
    version,
    description: rootPackage.description,
    license: "MIT",
    type: "module",
    main: "./mod.js",
    types: "./mod.d.ts",
    exports: {
      ".": { types: "./mod.d.ts", import: "./mod.js" },
      "./sql": { types: "./sql.d.ts", import: "./sql.js" },
      "./package.json": "./package.json"
    },
    ...(bin ? { bin } : {}),
    sideEffects: false,
    engines: rootPackage.engines,
    ...(Object.keys(dependencies).length > 0 ? { dependencies: sortKeys(dependencies) } : {}),
    peerDependencies: sortKeys({ ...peerDependencies, ...optionalPeers }),
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(sortKeys(optionalPeers)).map((name) => [name, { optional: true }])
    )
  }
  for (const key of ["keywords", "repository", "homepage", "bugs", "author"]) {
    if (rootPackage[key] !== undefined) packageJson[key] = rootPackage[key]
  }
  fs.writeFileSync(path.join(outDir, "package.json"), JSON.stringify(packageJson, null, 2) + "\n")

  for (const file of ["README.md", "LICENSE"]) {
    const source = path.join(rootDir, file)
    if (fs.existsSync(source)) fs.copyFileSync(source, path.join(outDir, file))
    else console.warn(`warning: ${file} not found at the repository root; the package has none`)
  }
  return { outDir, packageJson, withCli }
}

const isMain = process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)

if (isMain) {
  const args = process.argv.slice(2)
  const at = args.indexOf("--out-dir")
  const outDirArg = at >= 0 ? args[at + 1] : undefined
  if (at >= 0 && outDirArg === undefined) {
    console.error("--out-dir needs a value")
    process.exit(2)
  }
  try {
    const result = build(outDirArg)
    const rel = path.relative(process.cwd(), result.outDir) || "."
    console.log(
      `Built ${result.packageJson.name}@${result.packageJson.version} in ${rel}` +
        (result.withCli ? " (with the dfk CLI)" : "")
    )
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error))
    process.exit(1)
  }
}
