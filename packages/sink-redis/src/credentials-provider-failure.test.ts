// A credentials provider that keeps failing is reported where connection errors go (onError, or console.warn
// without one), once per streak of failures and without secrets: before, only `lastError` in the metrics showed
// it, while the pipeline retried the sends quietly.
import { inspect } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RedisSinkError } from "./redis-errors";
import { RedisSink } from "./redis-sink";
import { sendContext, sequence } from "./test-support/events";
import { freePort } from "./test-support/redis-servers";
import { waitUntil } from "./test-support/wait";

const ISSUED = "issued-password-PLANTED-0123456789";
const BEARER = "PLANTEDbearer0123456789abcdef";

const isProviderReport = (message: string) => message.startsWith("Redis credentials provider failed");

describe("a failing credentials provider (RedisSink)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("is reported to onError once per streak of failures, without secrets", async () => {
    let failing = true;
    let issued = false;
    const provider = async () => {
      if (failing) {
        // A provider's message may echo what it handed out before, or the token it used itself.
        throw new Error(`IdP unreachable (last issued ${issued ? ISSUED : "nothing"}, Bearer ${BEARER})`);
      }
      issued = true;
      return { password: ISSUED, expiresAt: Date.now() + 1_500 };
    };
    const errors: RedisSinkError[] = [];
    // Nothing listens on the port: once a credential is fetched, the send waits briefly for the server.
    const sink = new RedisSink({
      port: await freePort(),
      connectTimeoutMs: 200,
      credentials: { provider, refreshAheadMs: 1 },
      onError: (error) => errors.push(error),
    });
    const providerReports = () => errors.filter((error) => isProviderReport(error.message));
    const send = () =>
      sink.send(sequence(1), sendContext()).then(
        () => undefined,
        (error: unknown) => error,
      );
    try {
      expect(await send()).toMatchObject({ message: expect.stringMatching(/credential provider failed/) });
      await send();
      await send();
      expect(providerReports()).toHaveLength(1);
      expect(providerReports()[0]?.retriable).toBe(true);

      // A successful fetch ends the streak; the credential expires, the provider fails again: a new streak.
      failing = false;
      expect(await send()).toMatchObject({ message: expect.stringMatching(/not ready/) });
      failing = true;
      await waitUntil(async () => {
        await send();
        return providerReports().length === 2;
      }, "the second streak to be reported");

      const seen = errors.map((error) => `${error.message} ${inspect(error, { depth: 5 })}`).join("\n");
      expect(seen).not.toContain(ISSUED);
      expect(seen).not.toContain(BEARER);
    } finally {
      await sink.close();
    }
  });

  it("goes to console.warn once when there is no onError", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const sink = new RedisSink({
      port: await freePort(),
      connectTimeoutMs: 200,
      credentials: async () => {
        throw new Error(`IdP unreachable (Bearer ${BEARER})`);
      },
    });
    try {
      for (let i = 0; i < 3; i++) {
        await expect(sink.send(sequence(1), sendContext())).rejects.toThrow(/credential provider failed/);
      }
      const lines = warn.mock.calls.map((args) => args.map(String).join(" "));
      expect(lines.filter((line) => line.includes("Redis credentials provider failed"))).toHaveLength(1);
      expect(lines.join("\n")).not.toContain(BEARER);
    } finally {
      await sink.close();
    }
  });
});
