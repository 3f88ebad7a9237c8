// One KafkaEventReader process of a consumer group, for the group tests and the scale-out benchmark.
// Runs the built package (`pnpm build` first); configured by the parent through ReaderGroup.
import { serveReader } from "../../../test-support/reader-process.mjs";
import { KafkaEventReader } from "../dist/index.js";

const log = (message) => process.stderr.write(`kafka: ${message}\n`);

await serveReader((options, handle) => {
  const reader = new KafkaEventReader({ ...options, logger: { warn: log, error: log } });
  return {
    run: () => reader.run((record) => handle(record.event.event_id)),
    stop: () => reader.close(),
    stats: () => reader.getStats(),
  };
});
