import { createHash, createHmac } from "node:crypto";
import { ConfigurationError, CredentialError, createRefreshingCredentials } from "@streamll/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createElastiCacheIamToken,
  ELASTICACHE_REFRESH_AHEAD_MS,
  ELASTICACHE_TOKEN_TTL_SECONDS,
  elastiCacheIamAuth,
} from "./elasticache";

const AWS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE/+token=",
};
const SIGNING_DATE = new Date("2026-01-02T03:04:05.000Z");

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** SigV4 query signing written out from the AWS specification, independent of @smithy/signature-v4. */
function expectedSignature(
  host: string,
  params: Map<string, string>,
  secret: string,
  region: string,
): string {
  const canonicalQuery = [...params.entries()]
    .filter(([key]) => key !== "X-Amz-Signature")
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
  const emptyPayloadHash = createHash("sha256").update("").digest("hex");
  const canonicalRequest = ["GET", "/", canonicalQuery, `host:${host}`, "", "host", emptyPayloadHash].join(
    "\n",
  );
  const amzDate = params.get("X-Amz-Date") ?? "";
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/elasticache/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  const kDate = hmac(`AWS4${secret}`, day);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, "elasticache");
  const kSigning = hmac(kService, "aws4_request");
  return createHmac("sha256", kSigning).update(stringToSign).digest("hex");
}

function parseToken(token: string): { host: string; params: Map<string, string>; order: string[] } {
  const [host, query] = token.split("/?");
  const params = new Map<string, string>();
  const order: string[] = [];
  for (const part of (query ?? "").split("&")) {
    const [key, value] = part.split("=");
    const name = decodeURIComponent(key ?? "");
    order.push(name);
    params.set(name, decodeURIComponent(value ?? ""));
  }
  return { host: host ?? "", params, order };
}

describe("createElastiCacheIamToken", () => {
  it("produces a presigned connect URL without scheme, signed exactly as SigV4 specifies", async () => {
    const token = await createElastiCacheIamToken({
      userId: "streamll-writer",
      cacheName: "My-Replication-Group",
      region: "eu-west-1",
      credentials: AWS,
      signingDate: SIGNING_DATE,
    });
    expect(token.startsWith("my-replication-group/?")).toBe(true);
    expect(token).not.toContain("http");
    const { host, params, order } = parseToken(token);
    expect(host).toBe("my-replication-group");
    expect(order.slice(0, 2)).toEqual(["Action", "User"]);
    expect(params.get("Action")).toBe("connect");
    expect(params.get("User")).toBe("streamll-writer");
    expect(params.has("ResourceType")).toBe(false);
    expect(params.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(params.get("X-Amz-Credential")).toBe("AKIDEXAMPLE/20260102/eu-west-1/elasticache/aws4_request");
    expect(params.get("X-Amz-Date")).toBe("20260102T030405Z");
    expect(params.get("X-Amz-Expires")).toBe(String(ELASTICACHE_TOKEN_TTL_SECONDS));
    expect(params.get("X-Amz-Security-Token")).toBe(AWS.sessionToken);
    expect(params.get("X-Amz-SignedHeaders")).toBe("host");
    expect(params.get("X-Amz-Signature")).toBe(
      expectedSignature(host, params, AWS.secretAccessKey, "eu-west-1"),
    );
    // The session token's reserved characters are percent-encoded in the token itself.
    expect(token).toContain("X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2F%2Btoken%3D");
  });

  it("adds ResourceType=ServerlessCache for serverless caches and omits the security token for long-term keys", async () => {
    const token = await createElastiCacheIamToken({
      userId: "u1",
      cacheName: "events-cache",
      region: "us-east-1",
      serverless: true,
      credentials: { accessKeyId: AWS.accessKeyId, secretAccessKey: AWS.secretAccessKey },
      signingDate: SIGNING_DATE,
      expiresInSeconds: 300,
    });
    const { host, params } = parseToken(token);
    expect(params.get("ResourceType")).toBe("ServerlessCache");
    expect(params.has("X-Amz-Security-Token")).toBe(false);
    expect(params.get("X-Amz-Expires")).toBe("300");
    expect(params.get("X-Amz-Signature")).toBe(
      expectedSignature(host, params, AWS.secretAccessKey, "us-east-1"),
    );
  });

  it("rejects bad parameters with a ConfigurationError", async () => {
    const base = { userId: "u", cacheName: "c", region: "r", credentials: AWS };
    await expect(createElastiCacheIamToken({ ...base, userId: "" })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(createElastiCacheIamToken({ ...base, expiresInSeconds: 901 })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
  });
});

describe("elastiCacheIamAuth", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("returns user id + token valid 15 minutes (or until the AWS credentials expire)", async () => {
    const now = SIGNING_DATE.getTime();
    const auth = elastiCacheIamAuth({
      userId: "streamll-writer",
      cacheName: "events",
      region: "eu-west-1",
      credentials: AWS,
      clock: () => now,
    });
    expect(auth.refreshAheadMs).toBe(ELASTICACHE_REFRESH_AHEAD_MS);
    const credentials = await auth.provider();
    expect(credentials.username).toBe("streamll-writer");
    expect(credentials.expiresAt).toBe(now + 900_000);
    expect(credentials.password).toBe(
      await createElastiCacheIamToken({
        userId: "streamll-writer",
        cacheName: "events",
        region: "eu-west-1",
        credentials: AWS,
        signingDate: SIGNING_DATE,
      }),
    );

    const shortLived = elastiCacheIamAuth({
      userId: "u",
      cacheName: "events",
      region: "eu-west-1",
      credentials: async () => ({ ...AWS, expiration: new Date(now + 120_000) }),
      clock: () => now,
    });
    expect((await shortLived.provider()).expiresAt).toBe(now + 120_000);
  });

  it("is refreshed 5 minutes before expiry: every 10 minutes, each time with a newly signed token", async () => {
    vi.useFakeTimers({ now: SIGNING_DATE });
    const loadAws = vi.fn(async () => AWS);
    const auth = elastiCacheIamAuth({
      userId: "u",
      cacheName: "events",
      region: "eu-west-1",
      credentials: loadAws,
    });
    const cache = createRefreshingCredentials(auth.provider, { refreshAheadMs: auth.refreshAheadMs ?? 0 });
    const seen: string[] = [];
    cache.subscribe((c) => seen.push(c.password));
    const first = await cache.get();
    expect(loadAws).toHaveBeenCalledTimes(1);

    await vi.advanceTimersByTimeAsync(10 * 60_000 - 1);
    expect(loadAws).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(loadAws).toHaveBeenCalledTimes(2);
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toBe(first.password);
    expect(seen[0]).toContain("X-Amz-Date=20260102T031405Z");

    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(loadAws).toHaveBeenCalledTimes(3);
    cache.close();
  });

  it("uses the AWS default credential chain when no credentials are given", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "secret-from-environment");
    vi.stubEnv("AWS_SESSION_TOKEN", "");
    try {
      const auth = elastiCacheIamAuth({ userId: "u", cacheName: "events", region: "eu-west-1" });
      const { password } = await auth.provider();
      expect(password).toContain("X-Amz-Credential=AKIDFROMENVIRONMENT%2F");
      expect(password).not.toContain("secret-from-environment");
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("reports credential failures without secrets", async () => {
    const auth = elastiCacheIamAuth({
      userId: "u",
      cacheName: "events",
      region: "eu-west-1",
      credentials: async () => {
        throw new Error("no web identity token file");
      },
    });
    const error = await auth.provider().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain("Could not load AWS credentials");
  });
});
