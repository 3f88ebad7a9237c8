// One RabbitMQEventReader process of a group of competing consumers, for the group tests and the scale-out
// benchmark. Runs the built package (`pnpm build` first); configured by the parent through ReaderGroup.
import { serveReader } from "../../../test-support/reader-process.mjs";
import { RabbitMQEventReader } from "../dist/index.js";

await serveReader((options, handle) => {
  const reader = new RabbitMQEventReader({
    ...options,
    logger: { warn: (message) => process.stderr.write(`reader: ${message}\n`) },
  });
  return {
    run: () => reader.run(({ event }) => handle(event.event_id)),
    stop: () => reader.stop(),
    stats: () => reader.getStats(),
    ready: () => reader.ready(),
  };
});
