import { describe, expect, it } from "vitest";
import { optionIssues } from "./schema";
import { tlsConnectionOptionsSchema } from "./tls-options";

describe("tlsConnectionOptionsSchema", () => {
  it("accepts PEM text, Buffers and lists of them for the certificate keys", () => {
    const pem = "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----";
    const options = {
      ca: [pem, Buffer.from(pem)],
      cert: Buffer.from(pem),
      key: [{ pem, passphrase: "p" }],
      pfx: Buffer.from("x"),
      crl: pem,
    };
    expect(optionIssues(tlsConnectionOptionsSchema, options, "tls")).toEqual([]);
  });

  it("rejects the wrong kind of value when configured, not at the first connection", () => {
    const issues = optionIssues(tlsConnectionOptionsSchema, { ca: 5, cert: [{ path: "/x" }] }, "tls");
    expect(issues.map((issue) => issue.path)).toEqual(["tls.ca", "tls.cert"]);
    expect(issues[0]?.message).toBe("expected PEM text or a Buffer, or a list of them, got a number");
  });

  it("checks the keys of { pem, passphrase } and { buf, passphrase } items like any option's", () => {
    const secret = "PLANTED-PASSPHRASE-41c9";
    const issues = optionIssues(
      tlsConnectionOptionsSchema,
      { key: ["PEM", { pem: "PEM", pasphrase: secret }], pfx: [{ buff: Buffer.from("x"), passphrase: "p" }] },
      "tls",
    );
    expect(issues.map((issue) => issue.path)).toEqual([
      "tls.key[1].pasphrase",
      "tls.pfx[0].buff",
      "tls.pfx[0].buf",
    ]);
    expect(issues[0]?.message).toContain("did you mean `passphrase`?");
    expect(JSON.stringify(issues)).not.toContain(secret);
    expect(
      optionIssues(
        tlsConnectionOptionsSchema,
        { key: [{ pem: Buffer.from("PEM") }], pfx: [{ buf: "x" }] },
        "tls",
      ),
    ).toEqual([]);
    expect(optionIssues(tlsConnectionOptionsSchema, { key: [7] }, "tls")[0]?.path).toBe("tls.key[0]");
  });
});
