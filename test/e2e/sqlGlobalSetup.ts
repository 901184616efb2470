/**
 * vitest `globalSetup` (vitest.config's `test.globalSetup`): one PostgreSQL server for the whole
 * run, its URL handed to the test files as `inject("dfkPgUrl")` (read it through `pgUrl()` of
 * `sqlHarness.ts`), stopped and removed in teardown.
 *
 * - `DFK_TEST_PG_URL` set: that server is used (the URL must be able to `CREATE DATABASE`), none
 *   is started;
 * - otherwise a server is started (`postgresServer.ts`, ~0.6 s) only when the run includes a test
 *   file whose name contains `Sql` (`SqlStore.test.ts`, …), or with `DFK_TEST_PG=1`; in watch
 *   mode, at the first rerun that includes one;
 * - `DFK_TEST_PG_DEBUG=1` prints how long starting and stopping took.
 *
 * @module
 */
import type { TestProject } from "vitest/node"
import { startPostgres } from "./postgresServer.ts"
import type { PostgresServer } from "./postgresServer.ts"

/** Whether a test file needs the server: its name contains `Sql`. */
export const needsPostgres = (file: string): boolean => /Sql[^/\\]*$/.test(file)

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DFK_TEST_PG_URL
  if (external !== undefined && external !== "") {
    project.provide("dfkPgUrl", external)
    return async () => {}
  }
  const debug = process.env.DFK_TEST_PG_DEBUG === "1"
    ? (message: string) => console.error(`[sqlGlobalSetup] ${message}`)
    : () => {}
  let server: Promise<PostgresServer> | undefined
  const start = async () => {
    const t0 = performance.now()
    server ??= startPostgres()
    const { timings, url } = await server
    debug(
      `PostgreSQL started in ${Math.round(performance.now() - t0)} ms ` +
        `(initdb ${Math.round(timings.initdb)} ms, server ${Math.round(timings.start)} ms)`
    )
    project.provide("dfkPgUrl", url)
  }
  if (process.env.DFK_TEST_PG === "1" || project.vitest.state.getPaths().some(needsPostgres)) await start()
  project.onTestsRerun(async (specs) => {
    if (specs.some((spec) => needsPostgres(spec.moduleId))) await start()
  })
  return async () => {
    const running = server
    server = undefined
    if (running === undefined) return
    const t0 = performance.now()
    await (await running).stop()
    debug(`PostgreSQL stopped and removed in ${Math.round(performance.now() - t0)} ms`)
  }
}
