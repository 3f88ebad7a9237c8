/**
 * Vitest global setup: makes sure the harness broker runs before any Kafka suite, so `vitest run` (and
 * `pnpm test`) works on a machine where nobody started it. `kafka.sh start` is idempotent and takes a lock:
 * when the broker is already up it returns at once, when another process is starting it, it waits.
 *
 * A broker this setup started is stopped again afterwards (the machine is left as found), unless
 * `STREAMLL_KEEP_KAFKA=1`. If the broker cannot be started the whole run fails — never skips — which is
 * what CI (`CI=true`) requires; the error carries the script's output (Java, Maven or port problems).
 */
import { isBrokerReachable, kafkaHarness } from "./broker";

const START_TIMEOUT_MS = 15 * 60_000;
let startedHere = false;

export async function setup(): Promise<void> {
  if (await isBrokerReachable(["plaintext", "sasl_ssl", "oauth", "ssl"])) return;
  process.stderr.write(
    "[sink-kafka tests] starting the Kafka harness broker (scripts/kafka/kafka.sh start)\n",
  );
  await kafkaHarness("start", START_TIMEOUT_MS);
  startedHere = true;
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.STREAMLL_KEEP_KAFKA === "1") return;
  await kafkaHarness("stop").catch((error: unknown) => {
    process.stderr.write(`[sink-kafka tests] could not stop the broker: ${String(error)}\n`);
  });
}
