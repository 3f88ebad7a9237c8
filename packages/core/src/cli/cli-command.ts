import { type ParseArgsConfig, parseArgs } from "node:util";
import { scrubSecrets } from "../delivery/backoff";
import { nearestName } from "../options/nearest-name";
import type { CliIo } from "./cli-io";

/** A command-line mistake (bad option, missing value): the tool prints it with the usage text and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** `scheme://user-info@`: connection URLs carry passwords; command output must never echo them. */
const URL_USER_INFO = /([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi;

/**
 * Removes the user info of every URL in `text`, every non-empty known secret, and anything credential-shaped
 * ({@link scrubSecrets}: `sk-…` keys, tokens, long random strings), which a user may have typed where an option
 * name or a host belongs.
 */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  // Known secrets first, whole, before a pattern could change part of one.
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length > 0) out = out.split(secret).join("***");
  }
  return scrubSecrets(out).replace(URL_USER_INFO, "$1***@");
}

/**
 * `parseArgs` (strict, its default), with Node's unknown-option error (whose hint about positionals is long and ends
 * in an unbalanced quote) replaced by a {@link UsageError} naming the option probably meant
 * (`Unknown option '--prot'; did you mean --port?`), or else, for a tool that takes positionals, how to pass
 * one that starts with `-`.
 */
export function parseCommandArgs<const T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    // Strict is parseArgs' default: unknown options and missing values are errors.
    return parseArgs(config);
  } catch (error) {
    const option =
      (error as { code?: unknown }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
        ? /^Unknown option '([^']+)'/.exec((error as Error).message)?.[1]
        : undefined;
    if (option === undefined) throw error;
    const meant = option.startsWith("--")
      ? nearestName(option.slice(2), Object.keys(config.options ?? {}))
      : undefined;
    if (meant !== undefined) throw new UsageError(`Unknown option '${option}'; did you mean --${meant}?`);
    throw new UsageError(
      config.allowPositionals === true
        ? `Unknown option '${option}' (for an argument that starts with "-", put "--" before it)`
        : `Unknown option '${option}'`,
    );
  }
}

/** Parses an option value as a whole number `>= min`, or throws a {@link UsageError} naming the option. */
export function wholeNumber(name: string, text: string, min = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`${name} must be a whole number >= ${min}, got ${shownNumber(text)}`);
  }
  return value;
}

/**
 * A value given for a numeric option, as an error may show it: quoted when it looks like a number (`"10s"`,
 * `"-3"`), else only called "a value that is not a number": someone may have typed a secret in the wrong place.
 */
export function shownNumber(text: string): string {
  return text.length <= 24 && /^[-+]?[\d.,_]*\d[\d.,_eE]*[a-z%]{0,3}$/.test(text)
    ? `"${text}"`
    : "a value that is not a number";
}

/**
 * The secret held by the environment variable named by `--password-env`. Secrets come from the environment,
 * never from argv, where `ps` and shell history would show them.
 */
export function passwordFromEnv(variable: string, env: CliIo["env"]): string {
  const password = env?.[variable];
  if (password === undefined || password === "") {
    // Someone may pass the password itself (`--password-env "$PW"`): only a name shaped like an environment
    // variable's (upper case, digits, `_`) is repeated.
    if (/^[A-Z_][A-Z0-9_]{0,127}$/.test(variable) && scrubSecrets(variable) === variable) {
      throw new UsageError(`--password-env: environment variable ${variable} is not set or empty`);
    }
    throw new UsageError(
      "--password-env: the variable it names is not set or empty (the name is not shown: it does not look like an environment variable's name; pass the variable's name, not the password)",
    );
  }
  return password;
}

/** `1 event`, `2 events`, `2 entries`. */
export function plural(n: number, word: string): string {
  if (n === 1) return word;
  return word.endsWith("y") ? `${word.slice(0, -1)}ies` : `${word}s`;
}

/** One tool with one command, e.g. `streamll-kafka export`, or a tool without one, e.g. `streamll-view`. */
export interface CommandSpec<Options extends { readonly password?: string | undefined }> {
  /** The bin name, e.g. `streamll-kafka`. */
  readonly tool: string;
  /**
   * The single command it runs, e.g. `export`. Omitted for a tool whose options follow its name directly
   * (`streamll-view events.jsonl`): then `parse` sees every argument and handles `--help` itself.
   */
  readonly command?: string;
  readonly version: string;
  readonly usage: string;
  /** Parses the arguments after the command; throws on mistakes; `"help"` for `--help`. */
  parse(args: readonly string[], env: CliIo["env"]): Options | "help";
  /** Runs the command and resolves to the exit status. */
  run(options: Options, io: CliIo): Promise<number>;
  /** The message of an error `run` threw; default `error.message`. It is redacted after this. */
  describeError?(error: unknown, options: Options): string;
}

/**
 * The shared front of streamll's command-line tools, so every tool behaves the same: `--help` and
 * `--version` on stdout; the usage text on stderr when the tool is run without the arguments it needs; every
 * other mistake as one line on stderr followed by `Run "<tool> [command] --help" for usage.`; a secret never
 * echoed. Resolves to the exit status (0 done, 2 usage); never calls `process.exit` and never throws, so tests
 * can call it in-process. Errors `run` throws are option errors found late (the client refused an option when
 * it was built), so they exit 2 as well. By convention a command resolves to 130 when `io.signal` aborted
 * with `"interrupted"` (Ctrl-C, SIGTERM) and 0 when stdout was closed by its reader.
 */
export async function runCommand<Options extends { readonly password?: string | undefined }>(
  spec: CommandSpec<Options>,
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  const [command, ...afterCommand] = argv;
  if (command === "-v" || command === "--version") {
    await io.stdout(`${spec.version}\n`);
    return 0;
  }
  let rest: readonly string[] = argv;
  let prefix = spec.tool;
  const hint = (name: string): string => `Run "${name} --help" for usage.\n`;
  if (spec.command !== undefined) {
    if (command === undefined) {
      io.stderr(spec.usage);
      return 2;
    }
    if (command === "-h" || command === "--help" || command === "help") {
      await io.stdout(spec.usage);
      return 0;
    }
    if (command !== spec.command) {
      io.stderr(
        `${spec.tool}: ${redactSecrets(unknownCommand(command, spec.command), [])}\n${hint(spec.tool)}`,
      );
      return 2;
    }
    rest = afterCommand;
    prefix = `${spec.tool} ${spec.command}`;
  }
  let options: Options | "help";
  try {
    options = spec.parse(rest, io.env ?? process.env);
  } catch (error) {
    const line = `${prefix}: ${oneLine(redactSecrets(messageOf(error), []))}\n`;
    // Nothing given at all: the whole usage says more than the first thing missing.
    io.stderr(rest.length === 0 ? `${line}\n${spec.usage}` : `${line}${hint(prefix)}`);
    return 2;
  }
  if (options === "help") {
    await io.stdout(spec.usage);
    return 0;
  }
  try {
    return await spec.run(options, io);
  } catch (error) {
    const message = spec.describeError?.(error, options) ?? messageOf(error);
    io.stderr(`${prefix}: ${oneLine(redactSecrets(message, [options.password]))}\n${hint(prefix)}`);
    return 2;
  }
}

/** `unknown command "comapre"; did you mean "compare"?`: a misspelt command is named with the one meant. */
function unknownCommand(given: string, known: string): string {
  const meant = nearestName(given, [known]);
  const suggestion = meant === undefined ? "" : `; did you mean "${meant}"?`;
  return `unknown command "${oneLine(redactSecrets(given, []))}"${suggestion}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Error text as one line: a multi-line message (a stack, a server's reply) would break the one-line rule. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
