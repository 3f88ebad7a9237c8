import { execFile } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createConnection, type Socket } from "node:net";
import { promisify } from "node:util";
import { testId } from "./events";

const run = promisify(execFile);

export const BROKER_HOST = "127.0.0.1";
export const BROKER_PORT = 5672;

/** True when something accepts TCP connections on the broker port. */
export function brokerReachable(timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: BROKER_HOST, port: BROKER_PORT });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Whether integration suites run: they skip on a developer machine without a broker, but with CI=true a
 * missing broker is a failure (the suite runs and its first connection fails).
 */
export const skipWithoutBroker = !(await brokerReachable()) && process.env.CI !== "true";

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run("rabbitmqctl", ["--quiet", ...args], { timeout: 30_000 });
  return stdout;
}

/** A fresh vhost the guest user may use; deleting it removes every exchange and queue the test made. */
export async function createVhost(prefix = "streamll_test"): Promise<string> {
  const vhost = `${prefix}_${testId().replace(/[^A-Za-z0-9]/g, "x")}`;
  await rabbitmqctl("add_vhost", vhost);
  await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
  return vhost;
}

export async function deleteVhost(vhost: string): Promise<void> {
  await rabbitmqctl("delete_vhost", vhost).catch(() => {});
}

export function vhostUrl(vhost: string, user = "guest", password = "guest"): string {
  return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${BROKER_HOST}:${BROKER_PORT}/${encodeURIComponent(vhost)}`;
}

/** Polls until `check` returns true or the timeout passes. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The watermark the fault tests set to raise a memory alarm. */
export const ALARM_WATERMARK = "0.0000001";
/** RabbitMQ's default relative watermark. */
const DEFAULT_WATERMARK = ["0.4"];

/**
 * The broker's memory high watermark as `rabbitmqctl set_vm_memory_high_watermark` arguments. A value so low
 * that it can only be left over from an interrupted alarm test (a killed run skips its `finally`) is not
 * worth preserving: RabbitMQ's default is returned instead, so the restore heals the broker.
 */
export async function currentMemoryWatermark(): Promise<string[]> {
  const status = await rabbitmqctl("status");
  const relative = /Memory high watermark setting:\s*([0-9.]+)\s+of available memory/.exec(status);
  if (relative?.[1]) return Number(relative[1]) < 0.01 ? DEFAULT_WATERMARK : [relative[1]];
  const absolute = /Memory high watermark setting:\s*([0-9.]+)\s*(gb|mb|kb|bytes)?/i.exec(status);
  if (absolute?.[1]) {
    const units: Record<string, number> = { gb: 1e9, mb: 1e6, kb: 1e3, bytes: 1 };
    const bytes = Math.round(Number(absolute[1]) * (units[(absolute[2] ?? "bytes").toLowerCase()] ?? 1));
    return bytes < 64e6 ? DEFAULT_WATERMARK : ["absolute", String(bytes)];
  }
  throw new Error("cannot read the memory high watermark from rabbitmqctl status");
}

/** Raises a memory alarm on the whole broker. Always pair with `restoreMemoryWatermark` in a `finally`. */
export async function raiseMemoryAlarm(): Promise<void> {
  await rabbitmqctl("set_vm_memory_high_watermark", ALARM_WATERMARK);
}

/** Sets the watermark back; retried because a broker under an alarm can be slow to answer. */
export async function restoreMemoryWatermark(original: readonly string[]): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      await rabbitmqctl("set_vm_memory_high_watermark", ...original);
      return;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** The TCP sockets this process opens while `action` runs (Node's `net.client.socket` diagnostics channel). */
export async function socketsOpenedBy(action: () => Promise<void>): Promise<Socket[]> {
  const opened: Socket[] = [];
  const onSocket = (message: unknown): void => {
    opened.push((message as { socket: Socket }).socket);
  };
  subscribe("net.client.socket", onSocket);
  try {
    await action();
  } finally {
    unsubscribe("net.client.socket", onSocket);
  }
  return opened;
}
