import { ConfigurationError } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { makeEvent } from "./__fixtures__/events";
import { compileRoutingKey, DEFAULT_ROUTING_KEY_TEMPLATE, sanitizeRoutingKeyPart } from "./routing-key";

describe("routing keys", () => {
  it("uses streamll.{module_name}.{event_type} by default", () => {
    const key = compileRoutingKey(DEFAULT_ROUTING_KEY_TEMPLATE);
    expect(key(makeEvent({ module_name: "RAG", event_type: "token" }))).toBe("streamll.RAG.token");
  });

  it("keeps each placeholder one word: dots, wildcards and whitespace become _", () => {
    const key = compileRoutingKey(DEFAULT_ROUTING_KEY_TEMPLATE);
    expect(key(makeEvent({ module_name: "app.rag *#\tx", event_type: "a.b" }))).toBe(
      "streamll.app_rag____x.a_b",
    );
    expect(sanitizeRoutingKeyPart("")).toBe("_");
    expect(sanitizeRoutingKeyPart("#")).toBe("_");
  });

  it("supports other fields and tags; null fields and missing tags become none", () => {
    const key = compileRoutingKey("{tags.env}.{operation}.{method_name}.{tags.missing}");
    const event = makeEvent({ tags: { env: "prod.eu" }, operation: null, method_name: "forward" });
    expect(key(event)).toBe("prod_eu.none.forward.none");
  });

  it("rejects unknown placeholders and stray braces at construction", () => {
    expect(() => compileRoutingKey("streamll.{module}")).toThrow(ConfigurationError);
    expect(() => compileRoutingKey("streamll.{module_name")).toThrow(ConfigurationError);
    expect(() => compileRoutingKey("")).toThrow(ConfigurationError);
  });

  it("cuts keys to 255 bytes without splitting a character", () => {
    const key = compileRoutingKey("streamll.{module_name}");
    const result = key(makeEvent({ module_name: "é".repeat(300) }));
    expect(Buffer.byteLength(result, "utf8")).toBeLessThanOrEqual(255);
    expect(result.endsWith("é")).toBe(true);
  });

  it("keeps the template's words when a long value has to be cut (a binding on .error still matches)", () => {
    const key = compileRoutingKey("streamll.{module_name}.{event_type}.{tags.team}");
    for (const moduleName of ["é".repeat(300), "x".repeat(512)]) {
      const result = key(
        makeEvent({ module_name: moduleName, event_type: "error", tags: { team: "search" } }),
      );
      expect(Buffer.byteLength(result, "utf8")).toBeLessThanOrEqual(255);
      expect(result).toMatch(/^streamll\.[^.]+\.error\.search$/);
      expect(Buffer.byteLength(result, "utf8")).toBeGreaterThan(240);
    }
    // Two long values share what the template leaves.
    const both = key(
      makeEvent({ module_name: "m".repeat(400), event_type: "t".repeat(400), tags: { team: "s" } }),
    );
    const [, moduleWord, typeWord, team] = both.split(".");
    expect(team).toBe("s");
    expect(Math.abs((moduleWord?.length ?? 0) - (typeWord?.length ?? 0))).toBeLessThanOrEqual(1);
  });

  it("a fixed template is returned as is", () => {
    expect(compileRoutingKey("all.events")(makeEvent())).toBe("all.events");
  });
});
