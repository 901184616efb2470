/**
 * effect-dfk: Parsl's DataFlowKernel memoization ("AppCaching") and checkpointing, as
 * Effects. Apps are named, schema-typed Effect programs; the `Dfk` kernel memoizes their
 * results, shares in-flight calls, writes checkpoints and resumes from them.
 *
 * @module
 */
export * as App from "./src/App.ts"
export * as CheckpointFile from "./src/CheckpointFile.ts"
export { CheckpointFiles, getAllCheckpoints, getLastCheckpoint } from "./src/CheckpointFiles.ts"
export { CheckpointStore } from "./src/CheckpointStore.ts"
export type {
  AppendOptions,
  CheckpointEntry,
  CheckpointStoreService,
  Durability,
  EncodedEntry,
  LookupScope,
  StoreBatch,
  StoreClaims,
  StoreQueue,
  StoreRuns
} from "./src/CheckpointStore.ts"
export { Dfk } from "./src/Dfk.ts"
export type {
  CheckpointMode,
  DfkConfig,
  DfkDetailedStats,
  DfkService,
  DfkStats,
  ProgressOptions,
  ResolvedDfkConfig
} from "./src/Dfk.ts"
export { AppCacheError, BadCheckpoint, CheckpointError, ConfigurationError } from "./src/errors.ts"
export type { DfkError } from "./src/errors.ts"
export * as Explanation from "./src/Explanation.ts"
export * as File from "./src/File.ts"
export * as Memo from "./src/Memo.ts"
export * as Metrics from "./src/Metrics.ts"
export * as RunDirs from "./src/RunDirs.ts"
