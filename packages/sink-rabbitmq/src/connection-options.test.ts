import { ConfigurationError } from "@streamll/core";
import { describe, expect, it } from "vitest";
import { redactSecrets, resolveConnection, validateConnectionOptions } from "./connection-options";

describe("connection options", () => {
  it("never echoes a URL's scheme unless it is a common one (`user:password@host` parses with the user as scheme)", () => {
    const messageOf = (url: string): string => {
      try {
        resolveConnection({ url });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigurationError);
        return JSON.stringify({ message: (error as Error).message, stack: (error as Error).stack });
      }
      throw new Error("no error thrown");
    };
    const leaked = messageOf("PLANTED-S3CRET-7c1d:x@host");
    expect(leaked).toContain("(got another scheme)");
    expect(leaked.toLowerCase()).not.toContain("planted-s3cret");
    expect(messageOf("http://host/")).toContain("(got http://)");
  });

  it("parses a CloudAMQP-style URL with an encoded vhost and password", () => {
    const resolved = resolveConnection({
      url: "amqps://user1:p%40ss%2Fword@bunny.rmq.cloudamqp.com/vh%2Fone?heartbeat=15",
    });
    expect(resolved.target).toMatchObject({
      protocol: "amqps",
      hostname: "bunny.rmq.cloudamqp.com",
      port: 5671,
      vhost: "vh/one",
      username: "user1",
      password: "p@ss/word",
      heartbeat: 15,
      frameMax: 131_072,
    });
    expect(resolved.description).toBe("amqps://bunny.rmq.cloudamqp.com:5671/vh%2Fone");
    expect(resolved.description).not.toContain("p@ss");
    expect(resolved.secrets).toContain("p@ss/word");
    expect(resolved.secrets).toContain("p%40ss%2Fword");
  });

  it("defaults to a local broker with guest/guest, heartbeats on and frameMax 131072", () => {
    const { target, socketOptions } = resolveConnection({});
    expect(target).toMatchObject({
      protocol: "amqp",
      hostname: "localhost",
      port: 5672,
      vhost: "/",
      username: "guest",
    });
    expect(target.heartbeat).toBe(30);
    expect(target.frameMax).toBe(131_072);
    expect(socketOptions.servername).toBeUndefined();
  });

  it("TLS verifies by default: no rejectUnauthorized override, SNI set for host names, not for IPs", () => {
    const byName = resolveConnection({
      hostname: "b-1234.mq.us-east-1.amazonaws.com",
      tls: true,
      username: "u",
      password: "p",
    });
    expect(byName.target.protocol).toBe("amqps");
    expect(byName.target.port).toBe(5671);
    expect(byName.socketOptions.rejectUnauthorized).toBeUndefined();
    expect(byName.socketOptions.servername).toBe("b-1234.mq.us-east-1.amazonaws.com");
    const byIp = resolveConnection({ url: "amqps://u:p@10.0.0.5:5671/" });
    expect(byIp.socketOptions.servername).toBeUndefined();
    const custom = resolveConnection({
      url: "amqps://u:p@host/",
      tls: { ca: "PEM", rejectUnauthorized: false },
    });
    expect(custom.socketOptions.ca).toBe("PEM");
    expect(custom.socketOptions.rejectUnauthorized).toBe(false);
  });

  it("a plain amqp connection carries no TLS options", () => {
    const { socketOptions } = resolveConnection({ url: "amqp://u:p@host/", tls: false });
    expect(socketOptions.ca).toBeUndefined();
    expect(socketOptions.servername).toBeUndefined();
  });

  it("a credential from a provider replaces the URL's password and keeps its user unless given", () => {
    const resolved = resolveConnection({ url: "amqps://svc:old@host/" }, { password: "token-123" });
    expect(resolved.target.username).toBe("svc");
    expect(resolved.target.password).toBe("token-123");
    const withUser = resolveConnection({ url: "amqps://svc:old@host/" }, { username: "", password: "jwt" });
    expect(withUser.target.username).toBe("");
  });

  it("rejects bad options without echoing the URL", () => {
    expect(() => validateConnectionOptions({ url: "http://u:secret@host" })).toThrow(ConfigurationError);
    try {
      validateConnectionOptions({ url: "amqp://u:sec%ZZret@host" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).not.toContain("sec");
    }
    expect(() => validateConnectionOptions({ url: "amqp://host", tls: true })).toThrow(/amqps/);
    expect(() => validateConnectionOptions({ frameMax: 100 })).toThrow(ConfigurationError);
    expect(() => validateConnectionOptions({ reconnect: { jitter: 2 } })).toThrow(ConfigurationError);
  });

  it("redacts secrets and URL user-info from messages", () => {
    const text = "failed amqps://user:hunter2@host:5671/ with hunter2 and h%40x";
    expect(redactSecrets(text, ["hunter2", "h%40x"])).toBe("failed amqps://***@host:5671/ with *** and ***");
  });
});
