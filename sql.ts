/**
 * `effect-dfk/sql`: the SQL checkpoint store (DESIGN §7), for workflows shared by many
 * processes or machines. Needs `@effect/sql` and a client package (`@effect/sql-sqlite-node`,
 * `@effect/sql-pg`, …), which are optional peer dependencies of `effect-dfk`.
 *
 * @module
 */
export * as SqlStore from "./src/SqlStore.ts"
export type { SqlStoreOptions } from "./src/SqlStore.ts"
