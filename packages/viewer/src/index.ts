export type {
  HelloMessage,
  ModelPrice,
  PriceTable,
  SourceStatus,
  StatusMessage,
  ViewerLimits,
  ViewerStats,
} from "./protocol";
export { DEFAULT_LIMITS } from "./server/execution-store";
export type { ViewerOptions } from "./server/viewer-options";
export { startViewer, ViewerServer } from "./server/viewer-server";
export { ViewerSink, type ViewerSinkOptions } from "./sinks/viewer-sink";
export {
  type FileFollower,
  type FollowFileOptions,
  type FollowState,
  followFile,
} from "./sources/follow-file";
export { type LineSink, readLines } from "./sources/read-stream";
