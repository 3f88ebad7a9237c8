// kafkajs is CommonJS; Node's ESM loader cannot see `CompressionCodecs` among its named exports, so it is read
// from the module object, which works from ESM, CommonJS and bundlers alike.
import kafkajs from "kafkajs";

export { CompressionTypes } from "kafkajs";

/** kafkajs's codec registry (the same object users register lz4/zstd/snappy plugins in). */
export const CompressionCodecs: (typeof kafkajs)["CompressionCodecs"] = kafkajs.CompressionCodecs;
