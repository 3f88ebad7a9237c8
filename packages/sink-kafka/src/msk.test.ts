import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError } from "@streamll/core";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createKafkaClient } from "./kafka-connection";
import {
  createMskIamTokenProvider,
  discoverMskBrokers,
  type MskAuthentication,
  mskBrokersFromArn,
  mskIam,
  mskScram,
  mskServerless,
  mskTls,
} from "./msk";
import { recordingLogger } from "./test-support/kafka-test-support";
import { readTlsFiles } from "./tls-files";

const FIXED_NOW = Date.UTC(2026, 10, 27, 10, 15, 30);
const CREDENTIALS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

function decodeToken(token: string): URL {
  expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
  return new URL(Buffer.from(token, "base64url").toString("utf8"));
}

describe("MSK IAM tokens (aws-msk-iam-sasl-signer-js)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("signs a kafka-cluster:Connect presigned URL for the region, valid 15 minutes", async () => {
    vi.useFakeTimers({ now: FIXED_NOW, toFake: ["Date"] });
    const provider = createMskIamTokenProvider({ region: "eu-west-1", credentials: CREDENTIALS });
    const { token, expiresAt } = await provider();
    const url = decodeToken(token);
    expect(url.protocol).toBe("https:");
    expect(url.host).toBe("kafka.eu-west-1.amazonaws.com");
    const query = url.searchParams;
    expect(query.get("Action")).toBe("kafka-cluster:Connect");
    expect(query.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(query.get("X-Amz-Credential")).toBe("AKIDEXAMPLE/20261127/eu-west-1/kafka-cluster/aws4_request");
    expect(query.get("X-Amz-Date")).toBe("20261127T101530Z");
    expect(query.get("X-Amz-Expires")).toBe("900");
    expect(query.get("X-Amz-SignedHeaders")).toBe("host");
    expect(query.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(query.get("User-Agent")).toMatch(/^aws-msk-iam-sasl-signer-js\//);
    expect(expiresAt).toBe(FIXED_NOW + 900_000);
    // Same credentials and clock give the same signature: the token is a pure function of both.
    const again = await provider();
    expect(again.token).toBe(token);
  });

  it("never outlives temporary credentials that expire sooner", async () => {
    vi.useFakeTimers({ now: FIXED_NOW, toFake: ["Date"] });
    const provider = createMskIamTokenProvider({
      region: "us-east-1",
      credentials: async () => ({
        ...CREDENTIALS,
        sessionToken: "session-token-value",
        expiration: new Date(FIXED_NOW + 300_000),
      }),
    });
    const { token, expiresAt } = await provider();
    const query = decodeToken(token).searchParams;
    expect(query.get("X-Amz-Expires")).toBe("300");
    expect(query.get("X-Amz-Security-Token")).toBe("session-token-value");
    expect(expiresAt).toBe(FIXED_NOW + 300_000);
  });

  it("caches the token until a minute before expiry, with one credentials provider for the client's life", async () => {
    vi.useFakeTimers({ now: FIXED_NOW, toFake: ["Date", "setTimeout", "clearTimeout"] });
    const credentialsCalls: number[] = [];
    const connection = mskIam({
      region: "eu-west-1",
      brokers: ["b-1.cluster.kafka.eu-west-1.amazonaws.com:9098"],
      credentials: async () => {
        credentialsCalls.push(Date.now());
        return CREDENTIALS;
      },
    });
    expect(connection.tls).toBe(true);
    expect(connection.sasl?.mechanism).toBe("oauthbearer");
    const client = createKafkaClient({ ...connection, logger: recordingLogger() });
    try {
      const first = await client.tokens!.get();
      // kafkajs asks on every handshake; the cache answers without signing again.
      for (let i = 0; i < 5; i++) expect((await client.tokens!.get()).password).toBe(first.password);
      expect(credentialsCalls).toHaveLength(1);
      const refreshed = new Promise<string>((resolve) =>
        client.tokens!.subscribe((c) => resolve(c.password)),
      );
      await vi.advanceTimersByTimeAsync(840_000 + 10);
      const next = await refreshed;
      expect(next).not.toBe(first.password);
      expect(credentialsCalls).toEqual([FIXED_NOW, FIXED_NOW + 840_000]);
      expect(decodeToken(next).searchParams.get("X-Amz-Date")).toBe("20261127T102930Z");
    } finally {
      client.close();
    }
  });

  it("MSK Serverless: IAM on the bootstrap server with 8 MiB messages; SCRAM uses SHA-512 over TLS", () => {
    const serverless = mskServerless({
      region: "us-east-1",
      bootstrapServer: "boot-abcd1234.c1.kafka-serverless.us-east-1.amazonaws.com:9098",
      credentials: CREDENTIALS,
    });
    expect(serverless).toMatchObject({
      brokers: ["boot-abcd1234.c1.kafka-serverless.us-east-1.amazonaws.com:9098"],
      tls: true,
      maxMessageBytes: 8 * 1024 * 1024,
      sasl: { mechanism: "oauthbearer" },
    });
    expect(mskScram({ brokers: ["b-1:9096"], username: "alice", password: "pw-secret" })).toEqual({
      brokers: ["b-1:9096"],
      tls: true,
      sasl: { mechanism: "scram-sha-512", username: "alice", password: "pw-secret" },
    });
    expect(() => mskServerless({ region: "us-east-1", bootstrapServer: "nope" })).toThrow(ConfigurationError);
    expect(() => createMskIamTokenProvider({ region: "Frankfurt" })).toThrow(/AWS region/);
  });
});

describe("MSK broker discovery (GetBootstrapBrokers through the real AWS SDK)", () => {
  const ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/events/2f0e8c2a-1b2c-4d5e-9f00-1234567890ab-2";
  const RESPONSE = {
    bootstrapBrokerString:
      "b-1.events.kafka.eu-west-1.amazonaws.com:9092,b-2.events.kafka.eu-west-1.amazonaws.com:9092",
    bootstrapBrokerStringTls:
      "b-1.events.kafka.eu-west-1.amazonaws.com:9094,b-2.events.kafka.eu-west-1.amazonaws.com:9094",
    bootstrapBrokerStringSaslScram: "b-1.events.kafka.eu-west-1.amazonaws.com:9096",
    bootstrapBrokerStringSaslIam:
      "b-1.events.kafka.eu-west-1.amazonaws.com:9098,b-2.events.kafka.eu-west-1.amazonaws.com:9098",
    bootstrapBrokerStringPublicSaslIam: "b-1-public.events.kafka.eu-west-1.amazonaws.com:9198",
    bootstrapBrokerStringPublicTls: "b-1-public.events.kafka.eu-west-1.amazonaws.com:9194",
  };
  let server: Server;
  let endpoint: string;
  const requests: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests.push(request);
      const expected = `/v1/clusters/${encodeURIComponent(ARN)}/bootstrap-brokers`;
      if (request.method !== "GET" || request.url !== expected) {
        response.writeHead(404, {
          "content-type": "application/json",
          "x-amzn-errortype": "NotFoundException",
        });
        response.end(JSON.stringify({ message: `no route for ${request.method} ${request.url}` }));
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(RESPONSE));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const discover = (authentication: MskAuthentication, publicAccess = false) =>
    discoverMskBrokers({ clusterArn: ARN, authentication, publicAccess, endpoint, credentials: CREDENTIALS });

  it("picks the bootstrap string matching the authentication", async () => {
    expect(await discover("iam")).toEqual([
      "b-1.events.kafka.eu-west-1.amazonaws.com:9098",
      "b-2.events.kafka.eu-west-1.amazonaws.com:9098",
    ]);
    expect(await discover("scram")).toEqual(["b-1.events.kafka.eu-west-1.amazonaws.com:9096"]);
    expect(await discover("tls")).toHaveLength(2);
    expect((await discover("plaintext"))[0]).toMatch(/:9092$/);
    expect(await discover("iam", true)).toEqual(["b-1-public.events.kafka.eu-west-1.amazonaws.com:9198"]);
    expect(await discover("tls", true)).toEqual(["b-1-public.events.kafka.eu-west-1.amazonaws.com:9194"]);
    // The SDK signed each call with SigV4 for the ARN's region and the kafka service.
    const authorization = String(requests.at(-1)?.headers.authorization);
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/kafka\/aws4_request/,
    );
  });

  it("fails with a ConfigurationError naming the missing field, a bad ARN, or plaintext public access", async () => {
    await expect(discover("scram", true)).rejects.toThrow(/BootstrapBrokerStringPublicSaslScram/);
    await expect(discover("plaintext", true)).rejects.toBeInstanceOf(ConfigurationError);
    await expect(
      discoverMskBrokers({ clusterArn: "arn:aws:s3:::bucket", authentication: "iam", endpoint }),
    ).rejects.toBeInstanceOf(ConfigurationError);
  });

  it("serves as the brokers function of a client, resolved on connect", async () => {
    const brokers = mskBrokersFromArn({
      clusterArn: ARN,
      authentication: "iam",
      endpoint,
      credentials: CREDENTIALS,
    });
    expect(await brokers()).toHaveLength(2);
  });
});

describe("MSK mutual TLS", () => {
  it("takes the tls options readTlsFiles() returns (the client certificate from PEM files)", () => {
    const dir = mkdtempSync(join(tmpdir(), "streamll-msk-tls-"));
    try {
      const file = (name: string): string => {
        const path = join(dir, name);
        writeFileSync(path, `-----BEGIN ${name}-----\n-----END ${name}-----\n`);
        return path;
      };
      const tls = readTlsFiles({ caFile: file("ca"), certFile: file("cert"), keyFile: file("key") });
      const options = mskTls({ brokers: ["b-1.example.kafka.eu-west-1.amazonaws.com:9094"], tls });
      expect(options.tls).toMatchObject({
        rejectUnauthorized: true,
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
