import { request } from "node:http";
import { ConfigurationError } from "@streamll/core";
import { afterEach, describe, expect, it } from "vitest";
import { execution, ragExecution } from "../../test/support/events";
import { openEventStream } from "../../test/support/sse";
import { waitUntil } from "../../test/support/wait";
import { CONTENT_SECURITY_POLICY } from "./security";
import { startViewer, type ViewerServer } from "./viewer-server";

const servers: ViewerServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Parameters<typeof startViewer>[0] = {}): Promise<ViewerServer> {
  const server = await startViewer({ onWarning: () => undefined, ...options });
  servers.push(server);
  return server;
}

const base = (server: ViewerServer) => `http://127.0.0.1:${server.port}`;

function feed(server: ViewerServer, events: readonly object[]): void {
  for (const event of events) server.ingest(JSON.stringify(event));
}

/** A raw request, to set headers fetch does not let us set (Host). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("viewer server", () => {
  it("listens on 127.0.0.1 on a free port and prints a URL that carries the token", async () => {
    const a = await start();
    const b = await start();
    expect(a.host).toBe("127.0.0.1");
    expect(a.port).toBeGreaterThan(0);
    expect(a.port).not.toBe(b.port);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a.token).not.toBe(b.token);
    expect(a.url).toBe(`http://127.0.0.1:${a.port}/?token=${a.token}`);
  });

  it("serves the page, its script and its styles with a strict CSP, and refuses every request without the token", async () => {
    const server = await start();
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<style>|\son\w+=/);
    for (const asset of ["app.js", "app.css"]) {
      const response = await fetch(`${base(server)}/${asset}?token=${server.token}`);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(1_000);
    }
    // The token with its last character changed (to `x`, or to `y` when it already ends in `x`).
    const nearMiss = `${server.token.slice(0, -1)}${server.token.endsWith("x") ? "y" : "x"}`;
    for (const path of [
      "/",
      "/index.html",
      "/app.js",
      "/events",
      "/api/compare",
      "/api/status",
      "/nothing",
    ]) {
      for (const query of ["", "?token=", `?token=${nearMiss}`, "?token=wrong"]) {
        const response = await fetch(`${base(server)}${path}${query}`);
        expect(response.status, `${path}${query}`).toBe(403);
        expect(await response.text()).not.toContain(server.token);
      }
    }
    // The token also works as a bearer token, for scripts.
    const status = await fetch(`${base(server)}/api/status`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(status.status).toBe(200);
    // Auth schemes are case-insensitive, and an empty `?token=` does not hide a valid header.
    for (const [query, authorization, expected] of [
      ["", `bearer ${server.token}`, 200],
      ["", `BEARER  ${server.token}`, 200],
      ["?token=", `Bearer ${server.token}`, 200],
      ["?token=", `Bearer ${nearMiss}`, 403],
      ["", `Basic ${server.token}`, 403],
      ["", "Bearer ", 403],
    ] as const) {
      const response = await fetch(`${base(server)}/api/status${query}`, { headers: { authorization } });
      expect(response.status, `${query} ${authorization.split(" ")[0]}`).toBe(expected);
    }
    expect((await fetch(`${base(server)}/nothing?token=${server.token}`)).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
  });

  it("answers only requests addressed to localhost (DNS rebinding)", async () => {
    const server = await start();
    const path = `/?token=${server.token}`;
    expect(await rawGet(server.port, path, { host: `127.0.0.1:${server.port}` })).toBe(200);
    expect(await rawGet(server.port, path, { host: `localhost:${server.port}` })).toBe(200);
    expect(await rawGet(server.port, path, { host: `evil.example:${server.port}` })).toBe(421);
  });

  it("streams what it holds on connect, then live events in order, as Server-Sent Events", async () => {
    const server = await start();
    const first = ragExecution();
    feed(server, first);
    const stream = await openEventStream(`${base(server)}/events?token=${server.token}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const hello = await stream.waitFor((m) => m.event === "hello", "hello");
    expect(JSON.parse(hello.data)).toMatchObject({ limits: { maxExecutions: 1_000 } });
    await stream.waitFor((m) => m.event === "events", "the held events");
    expect(stream.events()).toHaveLength(first.length);
    const second = ragExecution({ error: true });
    feed(server, second);
    await stream.waitFor(() => stream.events().length === first.length + second.length, "the live events");
    expect(stream.events().map((event) => (event as unknown as { event_id: string }).event_id)).toEqual(
      [...first, ...second].map((event) => event.event_id),
    );
    await stream.waitFor((m) => m.event === "status" && JSON.parse(m.data).stats.executions === 2, "status");
    stream.close();
  });

  it("skips and counts lines that are not streamll events", async () => {
    const server = await start();
    expect(server.ingest("not json")).toBe(false);
    expect(server.ingest(JSON.stringify({ hello: "world" }))).toBe(false);
    expect(server.ingest(JSON.stringify(execution()[0]))).toBe(true);
    expect(server.stats).toMatchObject({ received: 3, invalid: 2, events: 1, executions: 1 });
  });

  it("keeps only the last maxExecutions executions, tells the page which it dropped, and stays within maxBytes", async () => {
    const server = await start({ maxExecutions: 5, maxBytes: 200_000 });
    const stream = await openEventStream(`${base(server)}/events?token=${server.token}`);
    const executions = Array.from({ length: 12 }, () => ragExecution());
    for (const events of executions) feed(server, events);
    expect(server.stats.executions).toBe(5);
    expect(server.stats.evictedExecutions).toBe(7);
    const evicted = await stream.waitFor((m) => m.event === "evict", "evictions");
    expect(JSON.parse(evicted.data)[0]).toBe(executions[0]![0]!.execution_id);
    const held = new Set(executions.slice(-5).map((events) => events[0]!.execution_id));
    // A fresh page gets exactly the five newest.
    const fresh = await openEventStream(`${base(server)}/events?token=${server.token}`);
    await fresh.waitFor((m) => m.event === "status", "the snapshot");
    expect(new Set(fresh.events().map((event) => event.execution_id))).toEqual(held);
    stream.close();
    fresh.close();

    // Bytes: many executions of big events never hold more than maxBytes.
    const big = await start({ maxBytes: 100_000 });
    for (let i = 0; i < 50; i++) {
      feed(big, execution({ inputs: { document: "x".repeat(5_000) } }));
      expect(big.stats.bytes).toBeLessThanOrEqual(100_000);
    }
    expect(big.stats.evictedExecutions).toBeGreaterThan(30);
  });

  it("caps events per execution: tokens past the limit are dropped and counted, the span tree is kept", async () => {
    const server = await start({ maxEventsPerExecution: 20 });
    const events = execution({ tokens: Array.from({ length: 100 }, (_, i) => `t${i} `) });
    feed(server, events);
    const stats = server.stats;
    expect(stats.droppedEvents).toBe(100 + 2 - 20 - 1);
    // start (kept) + 19 tokens + the end event, which is kept past the limit.
    expect(stats.events).toBe(21);
    const stream = await openEventStream(`${base(server)}/events?token=${server.token}`);
    const status = await stream.waitFor((m) => m.event === "status", "status");
    expect(JSON.parse(status.data).droppedByExecution).toEqual({
      [events[0]!.execution_id]: stats.droppedEvents,
    });
    expect(stream.events().at(-1)?.event_type).toBe("end");
    stream.close();
  });

  it("never blocks the producer: a page that stops reading is disconnected, not buffered without bound", async () => {
    const server = await start({ maxExecutions: 100_000, maxBytes: 1_000_000_000 });
    const port = server.port;
    // A client that connects and never reads.
    const socket = await new Promise<import("node:net").Socket>((resolve) => {
      const req = request({ host: "127.0.0.1", port, path: `/events?token=${server.token}` }, (res) => {
        res.pause();
        resolve(res.socket);
      });
      req.end();
    });
    socket.pause();
    const line = JSON.stringify({ ...execution()[0], data: { filler: "y".repeat(4_000) } });
    const started = performance.now();
    let slowest = 0;
    for (let round = 0; round < 60; round++) {
      const t = performance.now();
      for (let i = 0; i < 200; i++) {
        server.ingest(line.replace(/"execution_id":"[^"]+"/, `"execution_id":"exec${round}x${i}abc"`));
      }
      slowest = Math.max(slowest, performance.now() - t);
      await new Promise((resolve) => setTimeout(resolve, 60));
      if (server.stats.slowClientsDropped > 0) break;
    }
    expect(server.stats.slowClientsDropped).toBe(1);
    expect(server.stats.clients).toBe(0);
    expect(performance.now() - started).toBeLessThan(60_000);
    socket.destroy();
  });

  it("sends a snapshot bigger than the slow-page limit whole, as fast as the page reads it, then live events", async () => {
    const server = await start();
    const pad = "y".repeat(20_000);
    const held = Array.from({ length: 1_000 }, () => execution({ inputs: { pad } }));
    for (const events of held) feed(server, events);
    expect(server.stats.bytes).toBeGreaterThan(20_000_000);
    const stream = await openEventStream(`${base(server)}/events?token=${server.token}`);
    // Arrives while the snapshot is still being written: it follows the snapshot, counted as a live event.
    const live = execution();
    feed(server, live);
    // Only small messages are searched: this helper parses slowly, and the snapshot's messages are big.
    const lastId = live.at(-1)!.event_id;
    await stream.waitFor(
      (m) => m.event === "events" && m.data.length < 10_000 && m.data.includes(lastId),
      "the snapshot and the live event",
      20_000,
    );
    expect(stream.events().map((event) => (event as unknown as { event_id: string }).event_id)).toEqual(
      [...held.flat(), ...live].map((event) => event.event_id),
    );
    expect(stream.messages.filter((m) => m.event === "hello")).toHaveLength(1);
    expect(server.stats).toMatchObject({ clients: 1, slowClientsDropped: 0 });
    stream.close();
  });

  it("drops a page that stops reading during a big snapshot once what arrived since passes the limit", async () => {
    const server = await start({ maxExecutions: 100_000, maxBytes: 1_000_000_000 });
    const pad = "y".repeat(20_000);
    for (let i = 0; i < 1_000; i++) feed(server, execution({ inputs: { pad } }));
    const socket = await new Promise<import("node:net").Socket>((resolve) => {
      const req = request(
        { host: "127.0.0.1", port: server.port, path: `/events?token=${server.token}` },
        (res) => {
          res.pause();
          resolve(res.socket);
        },
      );
      req.end();
    });
    socket.pause();
    // Nothing new: the page is merely slow, and keeps its place.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.stats).toMatchObject({ clients: 1, slowClientsDropped: 0 });
    const line = JSON.stringify({ ...execution()[0], data: { filler: "z".repeat(100_000) } });
    // 25 MB arrives, past the 16 MiB limit.
    for (let i = 0; i < 250 && server.stats.slowClientsDropped === 0; i++) {
      server.ingest(line.replace(/"execution_id":"[^"]+"/, `"execution_id":"live${i}abcdefgh"`));
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitUntil(() => server.stats.slowClientsDropped > 0, "the slow page to be dropped");
    expect(server.stats.slowClientsDropped).toBe(1);
    expect(server.stats.clients).toBe(0);
    socket.destroy();
  });

  it("computes the version comparison of streamll compare over the executions held", async () => {
    const server = await start();
    const call = (codeSignature: string, durationMs: number) =>
      execution({ module: "RAGPipeline", codeSignature, durationMs, children: [{ module: "Retriever" }] });
    for (let i = 0; i < 12; i++) feed(server, call("sig-fast-aaaa", 100 + i));
    for (let i = 0; i < 12; i++) feed(server, call("sig-slow-bbbb", 300 + i));
    const response = await fetch(`${base(server)}/api/compare?module=RAGPipeline&token=${server.token}`);
    expect(response.status).toBe(200);
    const report = (await response.json()) as {
      versions: { code_signature: string; calls: number }[];
      comparisons: { baseline: string; candidate: string; duration: { verdict: string } }[];
    };
    expect(report.versions.map((v) => v.code_signature)).toEqual(["sig-fast-aaaa", "sig-slow-bbbb"]);
    expect(report.comparisons[0]).toMatchObject({
      baseline: "sig-fast-aaaa",
      candidate: "sig-slow-bbbb",
      duration: { verdict: "regression" },
    });
  });

  it("warns when listening beyond this machine, and rejects bad options naming them", async () => {
    const warnings: string[] = [];
    await start({ host: "0.0.0.0", onWarning: (message) => warnings.push(message) });
    expect(warnings.join("\n")).toMatch(/listening on 0\.0\.0\.0, not only on this machine/);
    const quiet: string[] = [];
    await start({ host: "127.0.0.1", onWarning: (message) => quiet.push(message) });
    expect(quiet).toEqual([]);
    await expect(startViewer({ maxExecution: 5 } as never)).rejects.toThrow(
      /maxExecution: unknown option; did you mean `maxExecutions`\? \(allowed: host, port, /,
    );
    await expect(startViewer({ port: 70_000 })).rejects.toBeInstanceOf(ConfigurationError);
    await expect(startViewer({ prices: { m: { inputPerMillion: 1 } } } as never)).rejects.toThrow(
      /prices\.m/,
    );
  });

  it("closes every event stream and the port on close()", async () => {
    const server = await start();
    const stream = await openEventStream(`${base(server)}/events?token=${server.token}`);
    await stream.waitFor((m) => m.event === "hello", "hello");
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
    stream.close();
  });
});
