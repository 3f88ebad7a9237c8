import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

/** The shared Redis the integration suites use. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * True when the shared Redis answers PING. With `CI=true` a missing Redis is an error, so integration suites
 * fail instead of silently skipping.
 */
export async function redisAvailable(url = REDIS_URL): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    if (process.env.CI === "true") {
      throw new Error(`Redis is required in CI but not reachable at ${url}: ${(error as Error).message}`);
    }
    return false;
  } finally {
    client.disconnect();
  }
}

/** A unique key (stream, group, user) so suites sharing one Redis never collide. */
export function uniqueName(prefix: string): string {
  return `streamll-test:${prefix}:${randomUUID().slice(0, 12)}`;
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

let redisServerPath: string | undefined;

// A test worker that dies (or a test that throws before its afterAll) must not leave servers running.
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** True when the `redis-server` binary is installed (private servers for TLS, fault and cluster tests). */
export function redisServerInstalled(): boolean {
  try {
    redisServerPath ??= execFileSync("which", ["redis-server"], { encoding: "utf8" }).trim();
    return redisServerPath !== "";
  } catch {
    if (process.env.CI === "true")
      throw new Error("redis-server is required in CI for the private-server tests");
    return false;
  }
}

export interface TlsFiles {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** A CA that did not sign the server certificate. */
  readonly otherCaCert: string;
  cleanup(): void;
}

/** Generates a CA, a server certificate for the host name `localhost` signed by it, and an unrelated second CA. */
export function generateTlsFiles(): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), "streamll-redis-tls-"));
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const subject = (cn: string) => ["-subj", `/CN=${cn}`];
  run(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
    ].concat(subject("streamll test CA")),
  );
  run(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "other.key",
      "-out",
      "other.crt",
      "-days",
      "2",
    ].concat(subject("streamll other CA")),
  );
  run(
    ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"].concat(
      subject("localhost"),
    ),
  );
  writeFileSync(join(dir, "san.ext"), "subjectAltName=DNS:localhost\n");
  run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  ]);
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    otherCaCert: join(dir, "other.crt"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface PrivateRedisOptions {
  /** Port to listen on; default a free one. Kept across restarts. */
  port?: number;
  /** Serve TLS only (port 0 for plain TCP) with these files. */
  tls?: TlsFiles;
  /** Run as a one-node Redis Cluster owning all 16384 slots. */
  cluster?: boolean;
  /**
   * Require this password (`requirepass`, the `default` user's password). The admin client authenticates with
   * it; ACL users can be added through {@link PrivateRedis.admin}. Only ever on a private server.
   */
  password?: string;
  /** Extra `redis-server` arguments. */
  args?: string[];
}

/** A `redis-server` child process owned by one test file. */
export class PrivateRedis {
  readonly port: number;
  readonly #options: PrivateRedisOptions;
  readonly #dir: string;
  #process: ChildProcess | undefined;

  private constructor(port: number, options: PrivateRedisOptions) {
    this.port = port;
    this.#options = options;
    this.#dir = mkdtempSync(join(tmpdir(), "streamll-redis-"));
  }

  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const server = new PrivateRedis(options.port ?? (await freePort()), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `${this.#options.tls ? "rediss" : "redis"}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  async start(): Promise<void> {
    const args = [
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      this.#dir,
      "--protected-mode",
      "no",
    ];
    const tls = this.#options.tls;
    if (tls) {
      args.push("--port", "0", "--tls-port", String(this.port), "--tls-cert-file", tls.serverCert);
      args.push(
        "--tls-key-file",
        tls.serverKey,
        "--tls-ca-cert-file",
        tls.caCert,
        "--tls-auth-clients",
        "no",
      );
    } else {
      args.push("--port", String(this.port));
    }
    if (this.#options.cluster) {
      args.push(
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(this.#dir, `nodes-${randomUUID()}.conf`),
      );
      // A lone node never learns its own address from peers; without this CLUSTER SLOTS reports an empty host.
      args.push("--cluster-announce-ip", "127.0.0.1");
    }
    if (this.#options.password !== undefined) args.push("--requirepass", this.#options.password);
    args.push(...(this.#options.args ?? []));
    const child = spawn(redisServerPath ?? "redis-server", args, { stdio: "ignore" });
    children.add(child);
    child.once("exit", () => children.delete(child));
    this.#process = child;
    await this.#waitForPing();
    if (this.#options.cluster) {
      const admin = this.admin();
      try {
        await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
        for (let i = 0; i < 100; i++) {
          const info = String(await admin.call("CLUSTER", "INFO"));
          if (info.includes("cluster_state:ok")) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        admin.disconnect();
      }
    }
  }

  /** A plain admin client for this server (caller disconnects it); it reconnects after a restart. */
  admin(reconnect = true): Redis {
    const tls = this.#options.tls;
    const client = new Redis({
      host: "127.0.0.1",
      port: this.port,
      maxRetriesPerRequest: reconnect ? 20 : 0,
      retryStrategy: reconnect ? () => 100 : () => null,
      ...(this.#options.password === undefined ? {} : { password: this.#options.password }),
      ...(tls ? { tls: { ca: readFileSync(tls.caCert), servername: "localhost" } } : {}),
    });
    client.on("error", () => undefined);
    return client;
  }

  async #waitForPing(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const client = this.admin(false);
      try {
        await client.ping();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        client.disconnect();
      }
    }
    throw new Error(`redis-server on port ${this.port} did not start`);
  }

  /** Kills the server abruptly (SIGKILL): connections drop without a goodbye. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
    this.#process = undefined;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A TCP server on loopback that accepts connections and never answers: a hung Redis. */
export async function startBlackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
