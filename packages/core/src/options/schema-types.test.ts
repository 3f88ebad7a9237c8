import { describe, expect, it } from "vitest";
import { type Infer, v } from "./schema";

/**
 * The schema of an options interface must match it exactly; these lines are checked by `tsc` (the package's
 * typecheck), and each `@ts-expect-error` fails the build if the mistake below it stops being an error.
 */
interface Example {
  url?: string;
  port: number;
  tls?: boolean | { ca?: string };
  mode?: "fail" | "wait";
  tags?: readonly string[];
}

const tls = v.object<{ ca?: string }>({ ca: v.string().optional() });

describe("schema types", () => {
  it("accept a schema that matches its interface exactly", () => {
    const schema = v.object<Example>({
      url: v.string().optional(),
      port: v.integer(),
      tls: v.union(v.boolean(), tls).optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
    });
    const check: Infer<typeof schema> = { port: 1 };
    expect(schema.keys).toEqual(["url", "port", "tls", "mode", "tags"]);
    expect(check.port).toBe(1);
  });

  it("reject schemas that drifted from their interface", () => {
    // @ts-expect-error a key of the interface is missing from the schema
    v.object<Example>({ port: v.integer() });
    v.object<Example>({
      url: v.string().optional(),
      port: v.integer(),
      tls: v.union(v.boolean(), tls).optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
      // @ts-expect-error a key the interface does not have
      extra: v.string().optional(),
    });
    v.object<Example>({
      // @ts-expect-error a different value type
      url: v.integer().optional(),
      port: v.integer(),
      tls: v.union(v.boolean(), tls).optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
    });
    v.object<Example>({
      url: v.string().optional(),
      // @ts-expect-error an optional schema for a required key
      port: v.integer().optional(),
      tls: v.union(v.boolean(), tls).optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
    });
    v.object<Example>({
      // @ts-expect-error a required schema for an optional key
      url: v.string(),
      port: v.integer(),
      tls: v.union(v.boolean(), tls).optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
    });
    v.object<Example>({
      url: v.string().optional(),
      port: v.integer(),
      tls: v.union(v.boolean(), tls).optional(),
      // @ts-expect-error an enum with a value the type does not have
      mode: v.oneOf(["fail", "wait", "drop"]).optional(),
      tags: v.array(v.string()).optional(),
    });
    v.object<Example>({
      url: v.string().optional(),
      port: v.integer(),
      // @ts-expect-error a union missing one of the type's alternatives
      tls: tls.optional(),
      mode: v.oneOf(["fail", "wait"]).optional(),
      tags: v.array(v.string()).optional(),
    });
  });
});
