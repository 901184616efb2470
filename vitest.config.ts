import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object"
  ? "deno"
  : typeof (globalThis as { Bun?: unknown }).Bun === "object"
  ? "bun"
  : "node"

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-dfk\/sql$/, replacement: fileURLToPath(new URL("./sql.ts", import.meta.url)) },
      { find: /^effect-dfk$/, replacement: fileURLToPath(new URL("./mod.ts", import.meta.url)) }
    ]
  },
  test: {
    // CI asks for a JSON report too (one per runtime: the suite runs under Node and Deno, a
    // subset under Node 24 and Bun),
    // to print the "N passed, N failed" line.
    reporters: process.env.VITEST_JSON_REPORT
      ? ["default", ["json", { outputFile: `${process.env.VITEST_JSON_REPORT}.${runtime}.json` }]]
      : ["default"],
    include: ["test/**/*.test.ts"],
    // One PostgreSQL server for the run, started only if a test file's name contains "Sql"
    // (or DFK_TEST_PG_URL names one): its URL reaches the tests as inject("dfkPgUrl").
    globalSetup: ["test/e2e/sqlGlobalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
