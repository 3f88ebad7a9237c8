import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { EncodedEvent, Sink } from "../delivery/sink";
import { JsonlFileSink } from "../sinks/jsonl-file-sink";
import { MemorySink } from "../sinks/memory-sink";
import { TerminalSink } from "../sinks/terminal-sink";
import type { StreamllLogger } from "./configure";
import { instrument } from "./instrument";
import { configure, flush, shutdown } from "./runtime";
import { emit, trace } from "./trace";

// Each secret is unique, so finding any part of one anywhere names the leak.
const API_KEY = "sk-test-PLANTEDapikey0123456789abcdef";
const BEARER = "PLANTEDbearer0123456789.abcDEF";
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJQTEFOVEVEand0In0.PLANTEDjwtSignature0123456789abc";
const URL_PASSWORD = "PLANTEDurlpassword42";
const PLANTED = [API_KEY, "PLANTEDapikey", BEARER, "PLANTEDbearer", JWT, "PLANTEDjwt", URL_PASSWORD];

/** A provider client as AI SDKs make them: the key on the instance, methods on the prototype. */
class AcmeAIClient {
  readonly apiKey: string;
  readonly config: { baseURL: string; headers: Record<string, string> };
  constructor(apiKey: string) {
    this.apiKey = apiKey;
    this.config = { baseURL: "https://api.acme.test", headers: { "x-api-key": apiKey } };
  }
  async complete(prompt: string): Promise<{ text: string; usage: Record<string, number> }> {
    return {
      text: `answer to ${prompt}`,
      usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 },
    };
  }
}

class Summarizer {
  async forward(client: AcmeAIClient, input: { question: string; request: Record<string, unknown> }) {
    const reply = await trace("call-model", () => client.complete(input.question));
    emit("request_sent", {
      headers: { Authorization: `Bearer ${BEARER}`, Accept: "application/json" },
      note: `retrying with token ${JWT}`,
      dsn: `postgres://app:${URL_PASSWORD}@db.internal:5432/app`,
      client,
    });
    if (input.question === "fail") {
      throw new Error(`upstream refused Bearer ${BEARER} for redis://default:${URL_PASSWORD}@cache:6379`);
    }
    return { answer: reply.text, usage: reply.usage, client };
  }
}

class Collector extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += chunk.toString("utf8");
    callback();
  }
}

/** Keeps every encoded event exactly as sinks receive it. */
class WireSink implements Sink {
  readonly name = "wire";
  readonly batches: EncodedEvent[] = [];
  async send(batch: readonly EncodedEvent[]): Promise<void> {
    this.batches.push(...batch);
  }
  async close(): Promise<void> {}
}

let dir: string | undefined;

afterEach(async () => {
  await shutdown(2_000);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("a planted secret", () => {
  it("reaches no event, no sink output and no log line: clients become descriptors, credentials are scrubbed", async () => {
    dir = await mkdtemp(join(tmpdir(), "streamll-planted-"));
    const path = join(dir, "events.jsonl");
    const memory = new MemorySink();
    const wire = new WireSink();
    const terminal = new Collector();
    const logged: string[] = [];
    const logger: StreamllLogger = { warn: (m) => logged.push(m), error: (m) => logged.push(m) };
    const fast = { flushIntervalMs: 1 };
    configure({
      sinks: [
        { sink: memory, delivery: fast },
        { sink: wire, delivery: fast },
        { sink: new JsonlFileSink({ path }), delivery: fast },
        { sink: new TerminalSink({ stream: terminal, colors: false }), delivery: fast },
      ],
      logger,
    });

    const summarizer = instrument(new Summarizer());
    const client = new AcmeAIClient(API_KEY);
    const request = {
      apiKey: API_KEY,
      auth: { password: URL_PASSWORD },
      callback: `https://hooks:${URL_PASSWORD}@hooks.example.com/x`,
    };
    const result = await summarizer.forward(client, { question: "what?", request });
    await expect(summarizer.forward(client, { question: "fail", request })).rejects.toThrow(
      /upstream refused/,
    );
    expect(result.client).toBe(client);
    expect(await flush(5_000)).toBe(true);

    const events = memory.events;
    const call = (type: string) => events.find((e) => e.event_type === type && e.operation === null);
    const start = call("start");
    const end = call("end");
    const error = events.find((e) => e.event_type === "error");
    const sent = events.find((e) => e.event_type === "request_sent");
    // The client is recorded by its type only, never walked, wherever it appears.
    expect(start?.data.inputs).toEqual([
      { $type: "AcmeAIClient" },
      {
        question: "what?",
        request: {
          apiKey: "[REDACTED]",
          auth: "[REDACTED]",
          callback: "https://hooks:[REDACTED]@hooks.example.com/x",
        },
      },
    ]);
    expect(end?.data.outputs).toEqual({
      answer: "answer to what?",
      usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 },
      client: { $type: "AcmeAIClient" },
    });
    expect(sent?.data).toEqual({
      headers: { Authorization: "[REDACTED]", Accept: "application/json" },
      note: "retrying with token [REDACTED]",
      dsn: "postgres://app:[REDACTED]@db.internal:5432/app",
      client: { $type: "AcmeAIClient" },
    });
    expect(error?.data.error_message).toBe(
      "upstream refused Bearer [REDACTED] for redis://default:[redacted]@cache:6379",
    );

    const outputs = {
      wire: wire.batches.map((e) => e.json).join("\n"),
      file: await readFile(path, "utf8"),
      terminal: terminal.text,
      logs: logged.join("\n"),
    };
    expect(outputs.file.split("\n").filter(Boolean)).toHaveLength(events.length);
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of PLANTED) {
        expect(text.includes(secret), `${secret} in ${where}`).toBe(false);
      }
    }
  });

  it("reaches no event from a Map under a credential name or from error text that quotes a connection string", async () => {
    const password = "Pl4nted-Passw0rd-XYZ";
    const sink = new MemorySink();
    configure({
      sinks: [{ sink, delivery: { flushIntervalMs: 1 } }],
      logger: { warn() {}, error() {} },
    });
    const failing = instrument(
      async (_headers: Map<string, string>) => {
        const error = new Error(`cannot open Server=db;User Id=sa;Password=${password};`, {
          cause: `api_key=${password}`,
        });
        throw Object.assign(error, { code: `E_LOGIN password=${password}` });
      },
      { name: "db" },
    );
    const headers = new Map([
      ["Authorization", `Token ${password}`],
      ["x-api-key", password],
      ["accept", "application/json"],
    ]);
    emit("request", { headers, url: `https://api.example.com/v1/models?api_key=${password}` });
    await expect(failing(headers)).rejects.toThrow(password);
    emit("failed", { error: new Error(`GET /v1?access_token=${password} returned 401`) });
    await flush(2_000);
    const json = sink.events.map((event) => JSON.stringify(event)).join("\n");
    expect(json).not.toContain(password);
    const request = sink.events.find((event) => event.event_type === "request");
    expect(request?.data.headers).toEqual({
      $map: [
        ["Authorization", "[REDACTED]"],
        ["x-api-key", "[REDACTED]"],
        ["accept", "application/json"],
      ],
    });
    const error = sink.events.find((event) => event.event_type === "error");
    expect(error?.data.error_message).toBe("cannot open Server=db;User Id=sa;Password=[REDACTED];");
  });
});
