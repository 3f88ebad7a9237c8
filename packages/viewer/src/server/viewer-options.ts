import { type AnySchema, v, validateOptions } from "@streamll/core/internal";
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

/**
 * A host name or an IP address (with an optional zone, e.g. `fe80::1%eth0`), at most 253 characters. Anything
 * else is refused without being repeated, by the API and `--host` alike: a URL or `user:pass@host` pasted in
 * the wrong place holds a password, and the listen error would print it.
 */
const HOST_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?|\[?[0-9a-f:.]+(?:%[\w.-]+)?\]?)$/i;

/** True when `host` looks like a host name or an IP address (see {@link HOST_PATTERN}). */
export function isHostShaped(host: string): boolean {
  return HOST_PATTERN.test(host);
}

/** `ViewerOptions` as the viewer, `ViewerSink` and `streamll-view --prices` check them. */
export const viewerOptionsSchema = v.object<ViewerOptions>({
  // The schema's message says what was expected, never the value given.
  host: v.string({ pattern: HOST_PATTERN, expected: "a host name or IP address" }).optional(),
  port: v.integer({ min: 0, max: 65_535 }).optional(),
  token: v
    .string({ pattern: /^[A-Za-z0-9_-]{16,128}$/, expected: "16-128 characters of A-Z a-z 0-9 _ -" })
    .optional(),
  maxExecutions: v.integer({ min: 1 }).optional(),
  maxBytes: v.integer({ min: 1 }).optional(),
  maxEventsPerExecution: v.integer({ min: 1 }).optional(),
  prices: v
    .record(
      v.object<ModelPrice>({
        inputPerMillion: v.number({ min: 0 }),
        outputPerMillion: v.number({ min: 0 }),
      }),
    )
    .optional(),
  onWarning: v.fn<(message: string) => void>().optional(),
  keepAlive: v.boolean().optional(),
});

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

/**
 * Checks {@link ViewerOptions} (with `schema`, which may extend them, e.g. `ViewerSink`'s) and fills in
 * defaults. Throws a `ConfigurationError` naming every problem.
 */
export function resolveViewerOptions(
  options: ViewerOptions,
  what: string,
  schema: AnySchema = viewerOptionsSchema,
): ResolvedViewerOptions {
  validateOptions(what, schema, options);
  return {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    token: options.token,
    limits: {
      maxExecutions: options.maxExecutions ?? DEFAULT_LIMITS.maxExecutions,
      maxBytes: options.maxBytes ?? DEFAULT_LIMITS.maxBytes,
      maxEventsPerExecution: options.maxEventsPerExecution ?? DEFAULT_LIMITS.maxEventsPerExecution,
    },
    prices: options.prices ?? {},
    onWarning: options.onWarning ?? ((message) => void process.stderr.write(`streamll viewer: ${message}\n`)),
    keepAlive: options.keepAlive ?? false,
  };
}
