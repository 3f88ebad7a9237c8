import type { SinkMetrics } from "./delivery-types";

/**
 * One line per sink for an end-of-run summary:
 * `kafka:events: emitted 1200, delivered 1180, dropped 20 (queue-full 20), pending 0, batches 4, retried 0,
 * circuit closed`, followed by the spill's counts when the sink has one
 * (`, spilled 800, replayed 800, recovered 0, on disk 0 (0 B)`).
 */
export function formatSinkMetrics(metrics: SinkMetrics): string {
  const drops = Object.entries(metrics.droppedByReason)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(", ");
  let line =
    `${metrics.sink}: emitted ${metrics.emitted}, delivered ${metrics.delivered}, dropped ${metrics.dropped}` +
    `${drops === "" ? "" : ` (${drops})`}, pending ${metrics.pending}, batches ${metrics.batchesSent}, ` +
    `retried ${metrics.retried}, circuit ${metrics.breakerState}`;
  const spill = metrics.spill;
  if (spill !== null) {
    line +=
      `, spilled ${metrics.spilled}, replayed ${metrics.replayed}, recovered ${metrics.recovered}, ` +
      `on disk ${spill.pending} (${formatBytes(spill.bytes)})` +
      (spill.corrupted > 0 ? `, corrupted records skipped ${spill.corrupted}` : "");
  }
  if (metrics.failed !== null) line += `, failed: ${metrics.failed.message}`;
  return line;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
