/**
 * SqlStore (`effect-dfk/sql`) on SQLite and on a real PostgreSQL server: the one store suite,
 * and what a SQL store adds (runs named by the database, lookups on demand, claims).
 */
import { describe } from "@effect/vitest"
import * as Layer from "effect/Layer"
import { SqlStore } from "effect-dfk/sql"
import { storeSuite } from "./contract/storeSuite.ts"
import { pgLayer, sqliteAvailable, sqliteLayer, sqliteSuite } from "./e2e/sqlHarness.ts"

describe.skipIf(!sqliteAvailable)(sqliteSuite("SqlStore on SQLite"), () => {
  storeSuite("SqlStore.layer (SQLite)", Layer.suspend(() => SqlStore.layer().pipe(Layer.provide(sqliteLayer()))))
})

describe("SqlStore on PostgreSQL", () => {
  storeSuite("SqlStore.layer (PostgreSQL)", Layer.suspend(() => SqlStore.layer().pipe(Layer.provide(pgLayer()))))
})
