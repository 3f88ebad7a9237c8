import { describe, expect, it } from "vitest";
import { describeDiagnostic } from "./diagnostics";

describe("describeDiagnostic", () => {
  const base = {
    type: "sink-failed",
    sink: "redis",
    code: "CONFIGURATION_INVALID",
    at: "2026-12-07T00:00:00.000Z",
  } as const;

  it("tells the fix once, after the message", () => {
    const line = describeDiagnostic({ ...base, message: "WRONGPASS", fix: "check the password" });
    expect(line).toContain("WRONGPASS. Fix: check the password.");
  });

  it("does not repeat a fix the message already gives", () => {
    const fix = "npm install @aws-sdk/client-sts";
    const line = describeDiagnostic({
      ...base,
      message: `Amazon MQ IAM needs the optional package @aws-sdk/client-sts, not installed: ${fix}`,
      fix,
    });
    expect(line.split(fix)).toHaveLength(2);
  });
});
