// A producing process of the disk-spill outage tests (see test-support/spill-producer.mjs). Runs the built
// packages (`pnpm build` first).
import * as core from "@streamll/core";
import { serveProducer } from "../../../test-support/spill-producer.mjs";
import { RabbitMQSink } from "../dist/index.js";

await serveProducer(core, (options, logger) => new RabbitMQSink({ ...options, logger }));
