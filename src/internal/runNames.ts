/**
 * Run names for stores that keep runs themselves (memory, SQL): `<runDir>/<NNN>` and
 * `<run>/checkpoint` as `path.join` (POSIX) makes them, without the Path service.
 */

/** `runDir` as `path.join` would give it: no trailing or doubled slashes, no "." segments. */
export const normalRunDir = (runDir: string): string => {
  const absolute = runDir.startsWith("/")
  const joined = runDir.split("/").filter((p) => p !== "" && p !== ".").join("/")
  return absolute ? "/" + joined : joined === "" ? "." : joined
}

/** The name of run number `n`: at least three digits. */
export const runName = (n: number): string => String(n).padStart(3, "0")

/** The path of run number `n` under a normalized `runDir`. */
export const runPath = (runDir: string, n: number): string =>
  (runDir === "." ? "" : runDir === "/" ? "/" : runDir + "/") + runName(n)

/**
 * The run of a checkpoint dir `<runDir>/<NNN>/checkpoint`: its `runDir` (normalized), number
 * and path; `undefined` for a dir of another shape.
 */
export const runOfCheckpointDir = (
  dir: string
): { readonly runDir: string; readonly n: number; readonly run: string } | undefined => {
  const parts = normalRunDir(dir).split("/")
  if (parts.length < 2 || parts[parts.length - 1] !== "checkpoint") return undefined
  const name = parts[parts.length - 2]!
  if (!/^[0-9]+$/.test(name)) return undefined
  const head = parts.slice(0, -2).join("/")
  const runDir = head === "" ? (dir.startsWith("/") ? "/" : ".") : head
  return { runDir, n: Number(name), run: runPath(runDir, Number(name)) }
}
