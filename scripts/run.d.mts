/**
 * Types of `run.mjs` (plain JavaScript, so that `npm run demo` and `npm run dfk` start on
 * plain `node`): see that file.
 *
 * @module
 */

/** The repository root. */
export declare const rootDir: string;

/** Transpiles one TypeScript file to plain JavaScript at `to` (relative `.ts` imports rewritten to `.js`). */
export declare const transpileFile: (from: string, to: string) => void;

/** The files compiled, relative to `root` with `/` separators, sorted. */
export declare const sourceFiles: (root?: string) => Array<string>;

/** The cache key of `root`'s sources (16 hex characters): changes with any compiled file, `package.json` or the compiler. */
export declare const cacheKey: (root?: string) => string;

/** Where `root`'s compiled JavaScript is cached: `<root>/.tmp/js/`. */
export declare const cacheBase: (root?: string) => string;

/** The compiled tree for `root`'s sources as they are now, compiled first if it was not cached. */
export declare const ensureCompiled: (root?: string) => Promise<{ readonly dir: string; readonly compiled: boolean }>;

/** Runs `entry` (a `.ts` path under `root`) from the compiled tree with `args`. */
export declare const run: (entry: string, args: ReadonlyArray<string>, root?: string) => Promise<void>;
