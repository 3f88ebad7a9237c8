import { deliveryOptionsSchema, sinkDeliveryOptionsSchema } from "../delivery/delivery-pipeline";
import type { DeliveryOptions, SinkDeliveryOptions } from "../delivery/delivery-types";
import type { Sink } from "../delivery/sink";
import type { StreamllEvent } from "../events/event-schema";
import { createKeyRedactor, type RedactFunction, type Redactor } from "../events/redact";
import { type EncodeLimits, encodeLimitsSchema } from "../events/sanitize-json";
import { editDistance, nearestName } from "../options/nearest-name";
import { v, validateOptions } from "../options/schema";
import { type VersionTrackingOptions, versionTrackingOptionsSchema } from "../version/options";
import { createVersionTracker, type VersionTracker } from "../version/version-tracker";

/**
 * Where streamll reports its own trouble (a failing sink, a throwing redact function, a bad environment
 * variable). Messages never contain secrets or event data.
 */
export interface StreamllLogger {
  warn(message: string, context?: object): void;
  error(message: string, context?: object): void;
}

/** A sink with its own delivery settings, merged over the top-level `delivery` defaults. */
export interface SinkEntry {
  sink: Sink;
  /** Delivery settings for this sink only; fields set here win over `StreamllOptions.delivery`. */
  delivery?: SinkDeliveryOptions;
}

/**
 * Which events are sent. All lists are exact, case-sensitive matches; an event must pass every list given.
 * Lists read only the type and operation an event is emitted with, so a declined event is never built.
 */
export interface EventFilterOptions {
  /** Only these `event_type`s pass (e.g. `["start", "end", "error"]` drops token events). */
  eventTypes?: readonly string[];
  /** These `event_type`s never pass (e.g. `["token"]`). */
  excludeEventTypes?: readonly string[];
  /**
   * Only events whose `operation` is in the list pass. Instrumented calls have `operation: null` unless
   * `InstrumentOptions.operation` is set, so this mostly selects `trace()` blocks.
   */
  operations?: readonly string[];
}

/** A predicate (return `false` to drop the event) or declarative lists. */
export type EventFilter = ((event: StreamllEvent) => boolean) | EventFilterOptions;

/** Everything `configure()` accepts. Every option is optional; explicit options win over environment variables. */
export interface StreamllOptions {
  /**
   * Where events go. Each entry is a sink or `{ sink, delivery }`; every sink gets its own bounded delivery
   * pipeline, so a slow broker never holds back the terminal. Calling `configure()` again replaces the sinks;
   * the old pipelines drain in the background. When empty or missing, `STREAMLL_SINK` decides; without it
   * events go nowhere (instrumentation is then almost free).
   */
  sinks?: ReadonlyArray<Sink | SinkEntry>;
  /** Delivery defaults for every sink (queue size, batching, retry, circuit breaker). */
  delivery?: DeliveryOptions;
  /**
   * Added to every event's `tags`. Merged over `STREAMLL_TAGS`, `STREAMLL_SERVICE` and `STREAMLL_ENV`; tags
   * given to `instrument()` or `trace()` win over these for their spans.
   */
  tags?: Record<string, string>;
  /** Record call arguments as `data.inputs` on start events. Default `true` (or `STREAMLL_INCLUDE_INPUTS`). */
  includeInputs?: boolean;
  /**
   * Record return values as `data.outputs` on end events, and emit token events for streams. Default `true`
   * (or `STREAMLL_INCLUDE_OUTPUTS`).
   */
  includeOutputs?: boolean;
  /**
   * Redaction applied to every event before it is filtered and encoded. A list of names replaces the value of
   * every key whose name contains one of them (case-insensitive, separators ignored, any depth of `data`) with
   * `"[REDACTED]"`, and the secret part of credential-shaped text in any string of `data` (URL passwords,
   * `Bearer`/`Basic` values, JWTs, `sk-…` keys, GitHub/GitLab/Slack tokens, AWS and Google key ids). A function
   * may rewrite the event or return `null` to drop it, and then alone decides what is hidden. Default
   * {@link DEFAULT_REDACT_KEYS}. A list you pass replaces the default, so spread `DEFAULT_REDACT_KEYS` into it to
   * keep those names; `[]` turns both key and value redaction off. Objects with methods (clients, services)
   * are never walked whatever this says: they are recorded as `{ "$type": ClassName }`.
   */
  redact?: Redactor;
  /**
   * Drops events before they are encoded (counted in `getEventStats().filtered`): lists of event types and
   * operations ({@link EventFilterOptions}, the cheapest: checked before the event is built), or a predicate
   * that is shown each event after redaction (return `false` to drop it; an edit it makes is sent when the event
   * stays valid, and an edit that breaks it drops the event, counted in `getEventStats().droppedInvalidEdit`).
   */
  eventFilter?: EventFilter;
  /**
   * `false` turns streamll off: instrumented functions call straight through and no event is built. Default
   * `true`, or `false` when `STREAMLL_DISABLED=1` is set and this option is not given.
   */
  enabled?: boolean;
  /** Size limits for event data (string length, depth, whole event bytes). */
  encode?: EncodeLimits;
  /** Receives streamll's own warnings. Default: one line per warning on stderr, prefixed `[streamll]`. */
  logger?: StreamllLogger;
  /**
   * The service this process is. Added as tag `service` (unless `tags.service` is set) and used as
   * `module_name` of events emitted outside any span. Default `STREAMLL_SERVICE`.
   */
  serviceName?: string;
  /** Deployment environment, added as tag `env` (unless `tags.env` is set). Default `STREAMLL_ENV`. */
  environment?: string;
  /**
   * Record which code produced each event: `code_signature`, `module_version` and `git_commit` on every event
   * of instrumented calls, plus one `version` event per new (module, code_signature). Off by default; `true`
   * means `{ strategy: "ast" }`. With it on, `configure()` computes the process's versions and the code
   * signatures of everything instrumented so far (once; the first AST parse of a process takes the longest), so
   * no instrumented call pays for them. See docs/guides/version-tracking.md.
   */
  versionTracking?: boolean | VersionTrackingOptions;
  /**
   * How long the `beforeExit` hook waits for pending events when the program ends without `shutdown()`.
   * Default 5 000 ms. The wait happens once per batch of new events, so a sink that stays down delays exit
   * by at most this much.
   */
  exitFlushTimeoutMs?: number;
}

/**
 * Names redacted by default: the parts of credential names. A key matches when its name contains one of them,
 * case-insensitively and ignoring `_`, `-`, `.` and spaces, so `apiKey`, `OPENAI_API_KEY`, `x-api-key` and
 * `openAICompatibleApiKey` all match `api_key`. `token` matches as a word of a longer name (`accessToken`,
 * `x-auth-token`, `id_token`), never counts of model tokens (`max_tokens`, `prompt_tokens`, `total_tokens`,
 * `token_count`, `token_index`) nor a bare `token` key (token events carry streamed text in it).
 */
export const DEFAULT_REDACT_KEYS: readonly string[] = Object.freeze([
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "secret",
  "token",
  "api_key",
  "access_key",
  "account_key",
  "subscription_key",
  "auth_key",
  "master_key",
  "app_key",
  "private_key",
  "jwt",
  "authorization",
  "cookie",
  "credential",
  "session_id",
]);

/** The sinks `STREAMLL_SINK` can name. */
export type EnvSinkKind = "terminal" | "jsonl" | "memory" | "none";

/** Settings read from environment variables. Bad values are reported in `warnings` and otherwise ignored. */
export interface EnvConfig {
  /** `STREAMLL_DISABLED` */
  disabled?: boolean;
  /** `STREAMLL_TAGS` plus `service` (`STREAMLL_SERVICE`) and `env` (`STREAMLL_ENV`). */
  tags: Record<string, string>;
  /** `STREAMLL_SERVICE` */
  serviceName?: string;
  /** `STREAMLL_ENV` */
  environment?: string;
  /** `STREAMLL_INCLUDE_INPUTS` */
  includeInputs?: boolean;
  /** `STREAMLL_INCLUDE_OUTPUTS` */
  includeOutputs?: boolean;
  /** `STREAMLL_SINK` */
  sink?: EnvSinkKind;
  /** `STREAMLL_JSONL_PATH`, default {@link DEFAULT_JSONL_PATH} */
  jsonlPath: string;
  /** One message per ignored variable. */
  warnings: string[];
}

/** The variables {@link loadEnvConfig} reads. */
const ENV_VARIABLES = [
  "STREAMLL_DISABLED",
  "STREAMLL_TAGS",
  "STREAMLL_SERVICE",
  "STREAMLL_ENV",
  "STREAMLL_INCLUDE_INPUTS",
  "STREAMLL_INCLUDE_OUTPUTS",
  "STREAMLL_SINK",
  "STREAMLL_JSONL_PATH",
] as const;

/**
 * The variable `name` was probably meant to be (`STREAMLL_SINKS` → `STREAMLL_SINK`), or `undefined`. Close
 * misses only, at most 2 edits or a different case: teams keep variables of their own under the prefix
 * (`STREAMLL_KAFKA_TOPIC`), which must not be reported.
 */
function meantVariable(name: string): string | undefined {
  const upper = name.toUpperCase();
  if (!upper.startsWith("STREAMLL_") || (ENV_VARIABLES as readonly string[]).includes(name)) return undefined;
  let best: string | undefined;
  let bestDistance = 3;
  for (const known of ENV_VARIABLES) {
    const distance = editDistance(upper, known, bestDistance);
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return best;
}

/** The file `STREAMLL_SINK=jsonl` appends to when `STREAMLL_JSONL_PATH` is not set. */
export const DEFAULT_JSONL_PATH = ".streamll/events.jsonl";

/** How long the `beforeExit` hook waits for pending events unless `exitFlushTimeoutMs` says otherwise. */
export const DEFAULT_EXIT_FLUSH_TIMEOUT_MS = 5_000;

/** The name of events emitted outside any span when no `serviceName` is configured. */
const DEFAULT_MODULE_NAME = "app";

const TRUE_WORDS = new Set(["1", "true", "yes", "on"]);
const FALSE_WORDS = new Set(["0", "false", "no", "off"]);
const ENV_SINKS: readonly EnvSinkKind[] = ["terminal", "jsonl", "memory", "none"];
const MAX_TAG_LENGTH = 256;

function envBoolean(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  warnings: string[],
): boolean | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (value === "") return undefined;
  if (TRUE_WORDS.has(value)) return true;
  if (FALSE_WORDS.has(value)) return false;
  // The value is not repeated: a secret pasted into the wrong variable must not reach the logs.
  warnings.push(`${name} ignored: expected one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(", ")}`);
  return undefined;
}

function envString(env: Readonly<Record<string, string | undefined>>, name: string, warnings: string[]) {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const value = raw.trim();
  if (value === "") return undefined;
  if (value.length > MAX_TAG_LENGTH) {
    warnings.push(`${name} ignored: longer than ${MAX_TAG_LENGTH} characters`);
    return undefined;
  }
  return value;
}

/**
 * Reads streamll's environment variables. Never throws: a bad value becomes one entry in `warnings` and is
 * ignored, so a typo cannot crash the host at startup.
 *
 * | variable | meaning |
 * |---|---|
 * | `STREAMLL_DISABLED` | `1`/`true` turns streamll off |
 * | `STREAMLL_TAGS` | `k=v,k2=v2` added to every event |
 * | `STREAMLL_SERVICE` | tag `service` |
 * | `STREAMLL_ENV` | tag `env` |
 * | `STREAMLL_INCLUDE_INPUTS` / `STREAMLL_INCLUDE_OUTPUTS` | `0`/`false` to leave arguments / results out |
 * | `STREAMLL_SINK` | `terminal`, `jsonl`, `memory` or `none`, used when no sink is configured in code |
 * | `STREAMLL_JSONL_PATH` | file for `STREAMLL_SINK=jsonl` |
 *
 * A variable one or two edits from one of these (`STREAMLL_SINKS`, `streamll_sink`) is reported too.
 */
export function loadEnvConfig(env: Readonly<Record<string, string | undefined>> = process.env): EnvConfig {
  const warnings: string[] = [];
  const config: EnvConfig = { tags: {}, jsonlPath: DEFAULT_JSONL_PATH, warnings };
  try {
    const disabled = envBoolean(env, "STREAMLL_DISABLED", warnings);
    if (disabled !== undefined) config.disabled = disabled;
    const includeInputs = envBoolean(env, "STREAMLL_INCLUDE_INPUTS", warnings);
    if (includeInputs !== undefined) config.includeInputs = includeInputs;
    const includeOutputs = envBoolean(env, "STREAMLL_INCLUDE_OUTPUTS", warnings);
    if (includeOutputs !== undefined) config.includeOutputs = includeOutputs;

    const rawTags = env.STREAMLL_TAGS;
    if (rawTags !== undefined && rawTags.trim() !== "") {
      // Bad entries are named by position, not repeated: a tag value may be a secret.
      const bad: number[] = [];
      rawTags.split(",").forEach((entry, index) => {
        const trimmed = entry.trim();
        if (trimmed === "") return;
        const eq = trimmed.indexOf("=");
        const key = eq > 0 ? trimmed.slice(0, eq).trim() : "";
        const value = eq > 0 ? trimmed.slice(eq + 1).trim() : "";
        if (key === "" || key.length > MAX_TAG_LENGTH || value.length > MAX_TAG_LENGTH) bad.push(index + 1);
        // Defined, not assigned: `__proto__=x` is a tag like any other, not the object's prototype.
        else
          Object.defineProperty(config.tags, key, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
      });
      if (bad.length > 0) {
        const which = `${bad.length === 1 ? "entry" : "entries"} ${bad.join(", ")}`;
        warnings.push(
          `STREAMLL_TAGS ${which} (counting from 1) ignored: expected key=value pairs separated by commas, key and value at most ${MAX_TAG_LENGTH} characters`,
        );
      }
    }

    const service = envString(env, "STREAMLL_SERVICE", warnings);
    if (service !== undefined) {
      config.serviceName = service;
      config.tags.service = service;
    }
    const environment = envString(env, "STREAMLL_ENV", warnings);
    if (environment !== undefined) {
      config.environment = environment;
      config.tags.env = environment;
    }

    const rawSink = env.STREAMLL_SINK;
    if (rawSink !== undefined && rawSink.trim() !== "") {
      const sink = rawSink.trim().toLowerCase();
      if ((ENV_SINKS as readonly string[]).includes(sink)) config.sink = sink as EnvSinkKind;
      else {
        const near = nearestName(sink, ENV_SINKS);
        const hint = near === undefined ? "" : `; did you mean ${near}?`;
        warnings.push(`STREAMLL_SINK ignored: expected one of ${ENV_SINKS.join(", ")}${hint}`);
      }
    }
    const path = env.STREAMLL_JSONL_PATH;
    if (path !== undefined && path.trim() !== "") config.jsonlPath = path.trim();

    for (const name of Object.keys(env)) {
      const meant = meantVariable(name);
      if (meant !== undefined)
        warnings.push(`${name} ignored: not a streamll variable; did you mean ${meant}?`);
    }
  } catch (error) {
    // A hostile env object (a Proxy with throwing traps) must not take the host down either.
    warnings.push(`environment could not be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return config;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Duck-typed: sinks from other packages (or another copy of this one) must be accepted. */
function isSink(value: unknown): value is Sink {
  if (!isObject(value)) return false;
  const candidate = value as Partial<Sink>;
  return (
    typeof candidate.name === "string" &&
    typeof candidate.send === "function" &&
    typeof candidate.close === "function"
  );
}

const SINK_EXPECTATION = "a Sink (an object with name, send() and close())";

const sinkSchema = v.custom<Sink>(
  SINK_EXPECTATION,
  isSink,
  (value) => isObject(value) && !("sink" in value) && ("send" in value || "close" in value),
);

const sinkEntrySchema = v.object<SinkEntry>(
  { sink: sinkSchema, delivery: sinkDeliveryOptionsSchema.optional() },
  { expected: "{ sink, delivery }" },
);

const eventFilterOptionsSchema = v.object<EventFilterOptions>({
  eventTypes: v.array(v.string()).optional(),
  excludeEventTypes: v.array(v.string()).optional(),
  operations: v.array(v.string()).optional(),
});

const loggerSchema = v.custom<StreamllLogger>(
  "an object with warn() and error() methods",
  (value) => isObject(value) && typeof value.warn === "function" && typeof value.error === "function",
);

/** Everything `configure()` accepts. */
export const streamllOptionsSchema = v.object<StreamllOptions>(
  {
    sinks: v
      .array(v.union(sinkSchema, sinkEntrySchema))
      .refine((sinks, report) => {
        const seen = new Map<Sink, number>();
        sinks.forEach((entry, index) => {
          const sink = isSink(entry) ? entry : entry.sink;
          const first = seen.get(sink);
          if (first === undefined) seen.set(sink, index);
          else report(`the same sink instance is already sinks[${first}]; list each sink once`, index);
        });
      })
      .optional(),
    delivery: deliveryOptionsSchema.optional(),
    tags: v.record(v.string()).optional(),
    includeInputs: v.boolean().optional(),
    includeOutputs: v.boolean().optional(),
    redact: v
      .union(v.array(v.string()), v.fn<RedactFunction>("a function (event) => event | null"))
      .optional(),
    eventFilter: v
      .union(
        v.fn<(event: StreamllEvent) => boolean>("a function (event) => boolean"),
        eventFilterOptionsSchema,
      )
      .optional(),
    enabled: v.boolean().optional(),
    encode: encodeLimitsSchema.optional(),
    logger: loggerSchema.optional(),
    serviceName: v.string({ min: 1, max: 256 }).optional(),
    environment: v.string({ min: 1, max: 256 }).optional(),
    versionTracking: v.union(v.boolean(), versionTrackingOptionsSchema).optional(),
    exitFlushTimeoutMs: v
      .number({ min: 0, max: 600_000, expected: "a number of milliseconds from 0 to 600000 (10 minutes)" })
      .optional(),
  },
  { expected: "an options object" },
);

/** Options after validation, with sink entries normalised to `{ sink, delivery }`. */
export interface ParsedOptions extends Omit<StreamllOptions, "sinks"> {
  sinks: SinkEntry[];
}

/**
 * Validates `configure()` options. Throws one `ConfigurationError` naming every bad option and what is allowed,
 * e.g. `sinks[1]: expected a Sink (an object with name, send() and close()) or { sink, delivery }, got 42`.
 */
export function parseOptions(options: unknown): ParsedOptions {
  const { sinks, ...rest } = validateOptions("streamll", streamllOptionsSchema, options ?? {});
  const entries: SinkEntry[] = (sinks ?? []).map((entry) =>
    isSink(entry) ? { sink: entry } : { sink: entry.sink, delivery: entry.delivery },
  );
  return { ...rest, sinks: entries };
}

/** The settings the runtime reads on every event, with defaults and environment applied. */
export interface ResolvedConfig {
  readonly enabled: boolean;
  readonly tags: Readonly<Record<string, string>>;
  readonly includeInputs: boolean;
  readonly includeOutputs: boolean;
  readonly redact: RedactFunction | undefined;
  /** An `eventFilter` function: it sees the built event (and may edit it). */
  readonly filter: ((event: StreamllEvent) => boolean) | undefined;
  /**
   * An `eventFilter` given as lists: it reads only the event's type and operation, so it is checked before the
   * event is built.
   */
  readonly select: ((eventType: string, operation: string | null) => boolean) | undefined;
  readonly encode: EncodeLimits | undefined;
  readonly logger: StreamllLogger;
  /** `module_name` of events emitted outside any span. */
  readonly defaultModuleName: string;
  readonly exitFlushTimeoutMs: number;
  /** Fills the version fields of instrumented calls; null when version tracking is off. */
  readonly versionTracker: VersionTracker | null;
}

function writeStderr(level: string, message: string, context?: object): void {
  try {
    // Messages from other parts of streamll may carry their own "streamll:" prefix; one prefix is enough.
    let line = `[streamll] ${level}${message.replace(/^streamll:\s*/, "")}`;
    if (context !== undefined) {
      try {
        line += ` ${JSON.stringify(context)}`;
      } catch {
        // Context is a diagnostic extra; an unserialisable one is left out.
      }
    }
    process.stderr.write(`${line.replace(/\s*[\r\n]+\s*/g, " ")}\n`);
  } catch {
    // Logging must never throw into the host.
  }
}

/** The default logger: one line per message on stderr, prefixed `[streamll]`. */
export const stderrLogger: StreamllLogger = Object.freeze({
  warn: (message: string, context?: object) => writeStderr("", message, context),
  error: (message: string, context?: object) => writeStderr("error: ", message, context),
});

function buildSelect(
  filter: EventFilter | undefined,
): ((eventType: string, operation: string | null) => boolean) | undefined {
  if (filter === undefined || typeof filter === "function") return undefined;
  const include = filter.eventTypes === undefined ? undefined : new Set(filter.eventTypes);
  const exclude = filter.excludeEventTypes === undefined ? undefined : new Set(filter.excludeEventTypes);
  const operations = filter.operations === undefined ? undefined : new Set(filter.operations);
  if (include === undefined && exclude === undefined && operations === undefined) return undefined;
  return (eventType, operation) =>
    (include === undefined || include.has(eventType)) &&
    (exclude === undefined || !exclude.has(eventType)) &&
    (operations === undefined || (operation !== null && operations.has(operation)));
}

/** Applies defaults and environment to validated options. Explicit options win over the environment. */
export function resolveConfig(options: Omit<ParsedOptions, "sinks">, env: EnvConfig): ResolvedConfig {
  const serviceName = options.serviceName ?? env.serviceName;
  const named: Record<string, string> = {};
  if (options.serviceName !== undefined) named.service = options.serviceName;
  if (options.environment !== undefined) named.env = options.environment;
  // Spread, not Object.assign: a tag named `__proto__` (parsed JSON has own keys of that name) stays a tag.
  const tags: Record<string, string> = { ...env.tags, ...named, ...options.tags };
  const redact = options.redact ?? DEFAULT_REDACT_KEYS;
  return Object.freeze({
    enabled: options.enabled ?? env.disabled !== true,
    tags: Object.freeze(tags),
    includeInputs: options.includeInputs ?? env.includeInputs ?? true,
    includeOutputs: options.includeOutputs ?? env.includeOutputs ?? true,
    redact:
      typeof redact === "function"
        ? // Tags objects are shared between events, and a user's function may mutate what it receives.
          (event) => redact({ ...event, tags: { ...event.tags } })
        : redact.length === 0
          ? undefined
          : createKeyRedactor(redact as readonly string[]),
    filter: typeof options.eventFilter === "function" ? options.eventFilter : undefined,
    select: buildSelect(options.eventFilter),
    // A frozen copy: the encoder then checks these limits once, not on every event.
    encode: options.encode === undefined ? undefined : Object.freeze({ ...options.encode }),
    logger: options.logger ?? stderrLogger,
    defaultModuleName: serviceName ?? DEFAULT_MODULE_NAME,
    exitFlushTimeoutMs: options.exitFlushTimeoutMs ?? DEFAULT_EXIT_FLUSH_TIMEOUT_MS,
    versionTracker: createVersionTracker(options.versionTracking),
  });
}
