import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ConfigurationError, configure, encodeEvent, instrument, SinkError, shutdown } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { execution } from "../../test/support/events";
import { openEventStream } from "../../test/support/sse";
import { startViewer } from "../server/viewer-server";
import { ViewerSink } from "./viewer-sink";

const run = promisify(execFile);
const APP = fileURLToPath(new URL("../../test/fixtures/sink-app.mjs", import.meta.url));
const BUILT = existsSync(fileURLToPath(new URL("../../dist/index.js", import.meta.url)));

afterEach(async () => {
  await shutdown(2_000);
});

describe("ViewerSink", () => {
  it("shows the process's own events live: configure({ sinks: [new ViewerSink()] }) gives the URL", async () => {
    const urls: string[] = [];
    const sink = new ViewerSink({ onUrl: (url) => urls.push(url) });
    configure({ sinks: [{ sink, delivery: { flushIntervalMs: 10 } }] });
    const server = await sink.ready;
    expect(urls).toEqual([server.url]);
    expect(sink.url).toBe(server.url);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    const stream = await openEventStream(server.url.replace("/?", "/events?"));
    const qa = instrument(
      new (class Qa {
        async forward(question: string) {
          return `answer to ${question}`;
        }
      })(),
    );
    await qa.forward("why");
    await stream.waitFor(() => stream.events().some((event) => event.event_type === "end"), "the end event");
    expect(stream.events().map((event) => event.event_type)).toEqual(["start", "end"]);
    await shutdown(2_000);
    await stream.waitFor(
      (m) => m.event === "status" && JSON.parse(m.data).source.state === "ended",
      "the ended status",
    );
    stream.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });

  it("rejects unknown options when constructed, naming the nearest one", () => {
    expect(() => new ViewerSink({ prot: 8080 } as never)).toThrow(ConfigurationError);
    expect(() => new ViewerSink({ prot: 8080 } as never)).toThrow(
      /prot: unknown option; did you mean `port`\? \(allowed: host, port, /,
    );
    expect(() => new ViewerSink({ onURL: () => undefined } as never)).toThrow(/did you mean `onUrl`/);
  });

  it("reports a port it cannot take once, and fails its batches for good instead of retrying them", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    const warnings: string[] = [];
    const sink = new ViewerSink({
      port,
      onWarning: (message) => warnings.push(message),
      onUrl: () => undefined,
    });
    await expect(sink.ready).rejects.toThrow(/EADDRINUSE/);
    const error = await sink.send([encodeEvent(execution()[0]!)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as SinkError).retriable).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not start.*EADDRINUSE/);
    await sink.close();
    blocker.close();
  });

  it.skipIf(!BUILT && process.env.CI !== "true")(
    "prints the URL and never keeps a process alive, with or without shutdown()",
    async () => {
      for (const mode of ["shutdown", "no-shutdown"]) {
        const started = Date.now();
        const { stderr } = await run(process.execPath, [APP, mode], { timeout: 20_000 });
        expect(stderr).toMatch(/^streamll viewer: http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}\n/);
        // The exit hook flushes for a moment at most; nothing waits on the viewer.
        expect(Date.now() - started).toBeLessThan(15_000);
      }
    },
  );
});

describe("the host option never shows a password or token it holds", () => {
  const SECRET = "hunter2PLANTEDsecret";

  it.each([
    `redis://bob:${SECRET}@127.0.0.1:6379`,
    `bob:${SECRET}@127.0.0.1`,
    `http://127.0.0.1/?token=${SECRET}`,
  ])("refuses %s as a ConfigurationError that does not repeat it", async (host) => {
    const warnings: string[] = [];
    let thrown: unknown;
    try {
      new ViewerSink({ host, onWarning: (message) => warnings.push(message) });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect(String(thrown)).toContain("expected a host name or IP address");
    expect(JSON.stringify(thrown)).not.toContain(SECRET);
    expect(String(thrown)).not.toContain(SECRET);
    const started = await startViewer({ host }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(ConfigurationError);
    expect(String(started)).not.toContain(SECRET);
    expect(warnings).toEqual([]);
  });

  it("says a host name that does not resolve without repeating it (a token can look like one)", async () => {
    const host = `sk-live-${SECRET}.invalid`;
    const warnings: string[] = [];
    const sink = new ViewerSink({ host, onWarning: (message) => warnings.push(message) });
    const failed = await sink.ready.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failed)).toContain("the host option does not resolve to an address");
    expect(String(failed)).not.toContain(SECRET);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).not.toContain(SECRET);
    expect((failed as { code?: string }).code).toMatch(/^(ENOTFOUND|EAI_AGAIN|EAI_FAIL)$/);
    await sink.close();
  });
});
