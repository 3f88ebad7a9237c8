import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { KAFKA_PLAINTEXT_BROKERS } from "../test/broker";

const run = promisify(execFile);
const dist = fileURLToPath(new URL("../dist/index.js", import.meta.url));

describe("kafkajs request queue", () => {
  it("produces to the real broker without a TimeoutNegativeWarning, and the process's own warnings still show", async () => {
    expect(existsSync(dist), "build the package first (pnpm build)").toBe(true);
    const script = `
      const { KafkaSink } = await import(${JSON.stringify(dist)});
      const { encodeEvent } = await import("@streamll/core");
      const sink = new KafkaSink({ brokers: ${JSON.stringify(KAFKA_PLAINTEXT_BROKERS)}, topic: "streamll_negative_timer_test", createTopic: true });
      const event = { schema_version: "1.0", event_id: "evt_00000001", execution_id: "exe_00000001", span_id: "spn_00000001",
        parent_span_id: null, timestamp: new Date().toISOString(), module_name: "m", method_name: null, event_type: "start",
        operation: null, module_version: null, code_signature: null, git_commit: null, data: {}, tags: {} };
      for (let i = 0; i < 5; i++) await sink.send([encodeEvent(event)], { signal: new AbortController().signal, attempt: 1 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.emitWarning("the application's own warning", "AppWarning");
      await sink.close();
    `;
    const { stderr } = await run(process.execPath, ["--input-type=module", "-e", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      timeout: 60_000,
    });
    expect(stderr).not.toContain("TimeoutNegativeWarning");
    expect(stderr).toContain("AppWarning: the application's own warning");
  }, 90_000);
});
