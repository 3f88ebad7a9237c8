/** Number and time formatting for the page. */

import type { SourceStatus } from "../protocol";
import type { ExecutionSummary } from "./model";

export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1_000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1_000).toFixed(ms < 9_995 ? 2 : 1)} s`;
  // Past a minute, two units (the larger one whole), so a span running for days reads "340 d 9 h", not
  // "490139 min 36 s". Rounded in the smaller unit first, so 59.6 s is "1 min 0 s", never "0 min 60 s".
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  const hours = Math.round(ms / 3_600_000);
  return `${formatCount(Math.floor(hours / 24))} d ${hours % 24} h`;
}

/** An event's time relative to its execution's start: `+12 ms`, or `-1.00 ms` for one stamped before it. */
export function formatOffset(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  return `${ms < 0 ? "-" : "+"}${formatDuration(Math.abs(ms))}`;
}

/**
 * The tokens column: usage tokens, else streamed tokens. When the viewer kept fewer token events than the
 * stream's end event reports (the per-execution limit dropped some), says how many were kept.
 */
export function formatTokens(
  summary: Pick<ExecutionSummary, "tokens" | "tokensFrom" | "tokensKept">,
): string {
  if (summary.tokens === null) return "—";
  if (summary.tokensFrom !== "stream") return formatCount(summary.tokens);
  const kept = summary.tokensKept === null ? "" : ` (${formatCount(summary.tokensKept)} kept)`;
  return `${formatCount(summary.tokens)} streamed${kept}`;
}

/** The header's source: `file: <path>`, `sink: <name>`, or `stdin`; then whether it ended, and its error. */
export function formatSource(source: SourceStatus): string {
  const name = source.kind === "stdin" ? "stdin" : `${source.kind}: ${source.label}`;
  const ended = source.state === "ended" ? " (ended)" : "";
  return `${name}${ended}${source.error === undefined ? "" : ` — ${source.error}`}`;
}

export function formatTime(ms: number): string {
  if (!Number.isFinite(ms) || ms === 0) return "—";
  const date = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function formatCost(usd: number | null): string {
  if (usd === null) return "—";
  if (usd === 0) return "$0";
  if (usd < 0.01) return `$${usd.toPrecision(2)}`;
  return `$${usd.toFixed(usd < 10 ? 3 : 2)}`;
}

export function formatCount(n: number | null): string {
  return n === null ? "—" : n.toLocaleString("en-US");
}

/** `1 execution`, `2 executions`, `1,000 events`. */
export function formatCountOf(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${n === 1 ? "" : "s"}`;
}

export function formatPercent(fraction: number | null): string {
  if (fraction === null || !Number.isFinite(fraction)) return "—";
  return `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)} %`;
}

export function formatP(p: number | null): string {
  if (p === null || !Number.isFinite(p)) return "—";
  return p < 0.0001 ? "< 0.0001" : p.toFixed(4);
}

export function shortSignature(signature: string | null): string {
  return signature === null ? "—" : signature.slice(0, 10);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
