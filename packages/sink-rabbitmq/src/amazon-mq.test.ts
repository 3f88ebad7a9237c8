import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { inspect } from "node:util";
import type { STSClient } from "@aws-sdk/client-sts";
import { ConfigurationError, CredentialError } from "@streamll/core";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { amazonMqIamCredentials, oauth2ClientCredentials, type StsClientLike } from "./amazon-mq";

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

/** A local HTTP server standing in for AWS STS and an OAuth 2.0 token endpoint. */
describe("Amazon MQ / OAuth 2.0 credential providers", () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, _body, res) => res.end();
  const requests: { url: string; body: string; headers: IncomingMessage["headers"] }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      req.on("end", () => {
        requests.push({ url: req.url ?? "", body, headers: req.headers });
        handler(req, body, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const stsClientConfig = () => ({
    endpoint: base,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example-secret-key" },
    maxAttempts: 1,
  });

  it("amazonMqIamCredentials returns the STS web identity token as the password with its expiry", async () => {
    const expiration = new Date(Date.now() + 900_000);
    handler = (_req, _body, res) => {
      res.setHeader("content-type", "text/xml");
      res.end(
        `<GetWebIdentityTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetWebIdentityTokenResult>` +
          `<WebIdentityToken>eyJhbGciOiJSUzI1NiJ9.payload.signature</WebIdentityToken>` +
          `<Expiration>${expiration.toISOString()}</Expiration>` +
          `</GetWebIdentityTokenResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetWebIdentityTokenResponse>`,
      );
    };
    const provider = amazonMqIamCredentials({
      audience: "rabbitmq-broker",
      durationSeconds: 900,
      clientConfig: stsClientConfig(),
    });
    const credentials = await provider();
    expect(credentials.password).toBe("eyJhbGciOiJSUzI1NiJ9.payload.signature");
    expect(credentials.username).toBe("");
    expect(credentials.expiresAt).toBe(expiration.getTime());
    const request = requests.at(-1);
    const form = new URLSearchParams(request?.body ?? "");
    expect(form.get("Action")).toBe("GetWebIdentityToken");
    expect(form.get("Audience.member.1")).toBe("rabbitmq-broker");
    expect(form.get("SigningAlgorithm")).toBe("RS256");
    expect(form.get("DurationSeconds")).toBe("900");
    expect(request?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
  });

  it("amazonMqIamCredentials reports STS failures as CredentialError", async () => {
    handler = (_req, _body, res) => {
      res.statusCode = 403;
      res.setHeader("content-type", "text/xml");
      res.end(
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
          `<Code>OutboundWebIdentityFederationDisabledException</Code><Message>disabled</Message></Error>` +
          `<RequestId>2</RequestId></ErrorResponse>`,
      );
    };
    const provider = amazonMqIamCredentials({ audience: ["a"], clientConfig: stsClientConfig() });
    const error = await provider().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toMatch(/OutboundWebIdentityFederationDisabled/);
    expect((error as Error).message).not.toContain("example-secret-key");
  });

  it("amazonMqIamCredentials scrubs a secret the STS client's error quotes", async () => {
    const client: StsClientLike = {
      send: async () => {
        throw new Error("signature mismatch for sk-proj-PLANTEDSECRET1234567890abcdef");
      },
    };
    const error = await amazonMqIamCredentials({ audience: ["a"], client })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain("signature mismatch for sk-[REDACTED]");
    expect(inspect(error, { depth: 10 })).not.toContain("PLANTED");
  });

  it("amazonMqIamCredentials validates its options", () => {
    expect(() => amazonMqIamCredentials({ audience: "" })).toThrow(ConfigurationError);
    expect(() => amazonMqIamCredentials({ audience: "a", durationSeconds: 30 })).toThrow(ConfigurationError);
    expect(() => amazonMqIamCredentials({ audience: "a", durationSeconds: 7200 })).toThrow(
      ConfigurationError,
    );
  });

  it("oauth2ClientCredentials runs the client-credentials grant", async () => {
    handler = (_req, _body, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ access_token: "jwt-access-token", token_type: "Bearer", expires_in: 300 }));
    };
    const before = Date.now();
    const provider = oauth2ClientCredentials({
      tokenUrl: `${base}/oauth2/token`,
      clientId: "streamll",
      clientSecret: "client-Secret-42",
      scope: "rabbitmq.write:*/*",
      audience: "rabbitmq",
    });
    const credentials = await provider();
    expect(credentials.password).toBe("jwt-access-token");
    expect(Number(credentials.expiresAt)).toBeGreaterThanOrEqual(before + 300_000);
    const request = requests.at(-1);
    expect(request?.url).toBe("/oauth2/token");
    const form = new URLSearchParams(request?.body ?? "");
    expect(Object.fromEntries(form)).toEqual({
      grant_type: "client_credentials",
      scope: "rabbitmq.write:*/*",
      audience: "rabbitmq",
    });
    expect(request?.headers.authorization).toBe(
      `Basic ${Buffer.from("streamll:client-Secret-42").toString("base64")}`,
    );
  });

  it("oauth2ClientCredentials errors name the status, never the secret", async () => {
    handler = (_req, _body, res) => {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: "invalid_client" }));
    };
    const provider = oauth2ClientCredentials({
      tokenUrl: `${base}/token`,
      clientId: "c",
      clientSecret: "client-Secret-42",
    });
    const error = await provider().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain("HTTP 401");
    expect(inspect(error)).not.toContain("client-Secret-42");
    expect(() =>
      oauth2ClientCredentials({ tokenUrl: "http://idp.example.com/token", clientId: "c", clientSecret: "s" }),
    ).toThrow(ConfigurationError);
  });
});

it("takes the SDK's own STSClient as the client (its types are declared here, not imported)", () => {
  expectTypeOf<STSClient>().toExtend<StsClientLike>();
});
