// A producing process whose sink is always down (a retriable failure on every send, no client library):
// the delivery pipeline's own memory during an outage, for outage-memory.mjs.
import * as core from "@streamll/core";
import { serveProducer } from "../../../test-support/spill-producer.mjs";

await serveProducer(core, () => ({
  name: "down",
  async send() {
    throw new core.SinkError("broker unavailable", { retriable: true });
  },
  async close() {},
}));
