// One RedisEventReader process of a consumer group, for the group tests and the scale-out benchmark.
// Runs the built package (`pnpm build` first); configured by the parent through ReaderGroup.
import { serveReader } from "../../../test-support/reader-process.mjs";
import { RedisEventReader } from "../dist/index.js";

await serveReader((options, handle) => {
  const reader = new RedisEventReader({
    ...options,
    onError: (error) => process.stderr.write(`reader error: ${error.message}\n`),
  });
  return {
    run: () => reader.run((event) => handle(event.event_id)),
    stop: () => reader.stop(),
    stats: () => reader.getStats(),
    ready: () => reader.ready(),
  };
});
