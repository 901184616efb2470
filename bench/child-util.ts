/**
 * What the benchmarks' child processes (`load-child.ts`, `fanout-child.ts`) share: their own
 * peak RSS. Compiled next to them by `compile.ts`.
 *
 * @module
 */
import { readFileSync } from "node:fs"

/** Bytes as MiB, one decimal. */
export const mb = (bytes: number): number => Math.round(bytes / 2 ** 20 * 10) / 10

/**
 * Peak RSS of this process, in bytes. On Linux, `VmHWM` of /proc/self/status: the high-water
 * mark of this process image. Not `resourceUsage().maxRSS`: on Linux that survives fork and
 * exec, so a child reports at least its parent's RSS at the time it was spawned.
 */
export const peakRss = (): number => {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))
    if (m !== null) return Number(m[1]) * 1024
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024
}
