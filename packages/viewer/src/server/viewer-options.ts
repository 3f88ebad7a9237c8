import { ConfigurationError } from "@streamll/core";
import type { ModelPrice, PriceTable, ViewerLimits } from "../protocol";
import { DEFAULT_LIMITS } from "./execution-store";

/** Options of {@link startViewer} (and of `ViewerSink`, which adds its own). */
export interface ViewerOptions {
  /**
   * Interface to listen on. Default `127.0.0.1` (this machine only). Anything that is not a loopback address
   * makes the page reachable from the network (still behind the token) and prints a warning.
   */
  host?: string;
  /** Port to listen on. Default `0`: a free port picked by the system. */
  port?: number;
  /** The token the page and the event stream require. Default: 32 random characters, new for every run. */
  token?: string;
  /** Executions kept; the oldest is dropped when a new one starts beyond this. Default 1,000. */
  maxExecutions?: number;
  /** Characters of event JSON kept (about bytes); the oldest executions are dropped past it. Default 64 MiB. */
  maxBytes?: number;
  /** Events kept per execution (tokens and custom events beyond it are dropped and counted). Default 5,000. */
  maxEventsPerExecution?: number;
  /**
   * US dollars per million input/output tokens per model, for the cost column when events carry `data.usage`
   * with a model and token counts but no cost of their own.
   */
  prices?: PriceTable;
  /** Where the non-loopback warning and other notices go. Default: stderr. */
  onWarning?: (message: string) => void;
  /**
   * Keep the process alive while the viewer runs. Default `false`: the viewer never holds a process open that
   * has nothing else to do; `true` keeps it open until `close()` (to look at a finished script's run).
   */
  keepAlive?: boolean;
}

export const VIEWER_OPTION_KEYS = [
  "host",
  "port",
  "token",
  "maxExecutions",
  "maxBytes",
  "maxEventsPerExecution",
  "prices",
  "onWarning",
  "keepAlive",
] as const;

/** Resolved {@link ViewerOptions}. */
export interface ResolvedViewerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly limits: ViewerLimits;
  readonly prices: PriceTable;
  readonly onWarning: (message: string) => void;
  readonly keepAlive: boolean;
}

type Issue = { path: string; message: string };

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** Pushes an issue for every key of `value` not in `allowed`, naming the nearest allowed key. */
export function checkKnownKeys(
  value: object,
  allowed: readonly string[],
  prefix: string,
  issues: Issue[],
): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const nearest = [...allowed].sort((a, b) => distance(key, a) - distance(key, b))[0];
    const hint =
      nearest !== undefined && distance(key, nearest) <= 3 ? ` (did you mean \`${nearest}\`?)` : "";
    issues.push({
      path: `${prefix}${key}`,
      message: `unknown option${hint}; allowed: ${allowed.join(", ")}`,
    });
  }
}

function positiveInteger(value: unknown, path: string, fallback: number, issues: Issue[]): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    issues.push({ path, message: "must be a positive integer" });
    return fallback;
  }
  return value;
}

function checkPrices(prices: unknown, issues: Issue[]): PriceTable {
  if (prices === undefined) return {};
  if (typeof prices !== "object" || prices === null || Array.isArray(prices)) {
    issues.push({ path: "prices", message: "must be an object of model name → price" });
    return {};
  }
  const out: Record<string, ModelPrice> = {};
  for (const [model, price] of Object.entries(prices)) {
    const path = `prices.${model}`;
    if (typeof price !== "object" || price === null) {
      issues.push({ path, message: "must be { inputPerMillion, outputPerMillion }" });
      continue;
    }
    checkKnownKeys(price, ["inputPerMillion", "outputPerMillion"], `${path}.`, issues);
    const { inputPerMillion, outputPerMillion } = price as Record<string, unknown>;
    const valid = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (!valid(inputPerMillion) || !valid(outputPerMillion)) {
      issues.push({ path, message: "inputPerMillion and outputPerMillion must be numbers >= 0" });
      continue;
    }
    out[model] = { inputPerMillion: inputPerMillion as number, outputPerMillion: outputPerMillion as number };
  }
  return out;
}

/** Throws a `ConfigurationError` listing every issue, or does nothing. */
export function throwIfIssues(what: string, issues: readonly Issue[]): void {
  if (issues.length === 0) return;
  const detail = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
  throw new ConfigurationError(`invalid ${what} options: ${detail}`, issues);
}

/** Checks {@link ViewerOptions} (and any `extraKeys` the caller handles itself) and fills in defaults. */
export function resolveViewerOptions(
  options: ViewerOptions,
  what: string,
  extraKeys: readonly string[] = [],
): ResolvedViewerOptions {
  const issues: Issue[] = [];
  if (typeof options !== "object" || options === null) {
    throwIfIssues(what, [{ path: "(options)", message: "must be an object" }]);
  }
  checkKnownKeys(options, [...VIEWER_OPTION_KEYS, ...extraKeys], "", issues);
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || host.trim() === "")
    issues.push({ path: "host", message: "must be a host name or address" });
  const port = options.port ?? 0;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65_535) {
    issues.push({ path: "port", message: "must be an integer from 0 to 65535" });
  }
  const token = options.token;
  if (token !== undefined && (typeof token !== "string" || !/^[A-Za-z0-9_-]{16,128}$/.test(token))) {
    issues.push({ path: "token", message: "must be 16-128 characters of A-Z a-z 0-9 _ -" });
  }
  const limits: ViewerLimits = {
    maxExecutions: positiveInteger(
      options.maxExecutions,
      "maxExecutions",
      DEFAULT_LIMITS.maxExecutions,
      issues,
    ),
    maxBytes: positiveInteger(options.maxBytes, "maxBytes", DEFAULT_LIMITS.maxBytes, issues),
    maxEventsPerExecution: positiveInteger(
      options.maxEventsPerExecution,
      "maxEventsPerExecution",
      DEFAULT_LIMITS.maxEventsPerExecution,
      issues,
    ),
  };
  const prices = checkPrices(options.prices, issues);
  if (options.onWarning !== undefined && typeof options.onWarning !== "function") {
    issues.push({ path: "onWarning", message: "must be a function" });
  }
  if (options.keepAlive !== undefined && typeof options.keepAlive !== "boolean") {
    issues.push({ path: "keepAlive", message: "must be a boolean" });
  }
  throwIfIssues(what, issues);
  return {
    host,
    port,
    token,
    limits,
    prices,
    onWarning: options.onWarning ?? ((message) => void process.stderr.write(`streamll viewer: ${message}\n`)),
    keepAlive: options.keepAlive ?? false,
  };
}
