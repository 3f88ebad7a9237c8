import { type ParseArgsConfig, parseArgs } from "node:util";
import { scrubSecrets } from "../delivery/backoff";
import { editDistance, nearestName } from "../options/nearest-name";
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
 * one that starts with `-`. The option given is repeated only when {@link shownName} allows it (a near miss of
 * a known option or a short plain name): someone may have pasted a secret where an option belongs. A value given
 * to it (`--foo=VALUE`) is never repeated; nor is an unexpected positional argument unless it is plain.
 */
export function parseCommandArgs<const T extends ParseArgsConfig>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    // Strict is parseArgs' default: unknown options and missing values are errors.
    return parseArgs(config);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      const given = /^Unexpected argument '(.*)'\. This command does not take positional arguments$/s.exec(
        (error as Error).message,
      )?.[1];
      const named =
        given !== undefined && isPlainName(given) ? ` '${given}'` : " (not shown: it may be a secret)";
      throw new UsageError(`Unexpected argument${named}; this command takes no positional arguments`);
    }
    const option =
      code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
        ? /^Unknown option '([^']+)'/.exec((error as Error).message)?.[1]
        : undefined;
    if (option === undefined) throw error;
    // Node names the option without a value given inline (`--foo=VALUE` is reported as `--foo`); the
    // `=` split is kept here as well, so a value can never reach the message.
    const name = option.split("=")[0]!;
    const bare = name.replace(/^--?/, "");
    const meant = name.startsWith("--") ? nearestName(bare, Object.keys(config.options ?? {})) : undefined;
    const shown = shownName(bare, meant)
      ? `Unknown option '${name}'`
      : "Unknown option (not shown: it may be a secret)";
    if (meant !== undefined) throw new UsageError(`${shown}; did you mean --${meant}?`);
    throw new UsageError(
      config.allowPositionals === true
        ? `${shown} (for an argument that starts with "-", put "--" before it)`
        : shown,
    );
  }
}

/**
 * Whether an unknown command or option name the user typed may be repeated in an error. A secret pasted in the
 * wrong place must not end up in a terminal or a CI log, so only two kinds are repeated: a near miss of the
 * known name `meant` (within the edit distance {@link nearestName} suggests by: `exprot`, `--folow`), and a
 * short plain name (see {@link isPlainName}). A suggestion found only by a shared prefix (`stream-XYZ…` for
 * `stream`) is still given, without the name typed.
 */
function shownName(given: string, meant: string | undefined): boolean {
  if (isPlainName(given)) return true;
  if (meant === undefined) return false;
  const limit = Math.max(2, Math.floor(given.length / 3)) + 1;
  return editDistance(given.toLowerCase(), meant.toLowerCase(), limit) < limit;
}

/** At most 20 characters, only lower-case letters, digits and `-` (`import`, `verbose`, `-x`): not secret-shaped. */
function isPlainName(text: string): boolean {
  return /^[a-z0-9-]{1,20}$/.test(text);
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
 * `--version` (first, or among the command's options) on stdout; the usage text on stderr when the tool is run
 * without the arguments it needs; every other mistake as one line on stderr followed by
 * `Run "<tool> [command] --help" for usage.`; a secret never echoed. Resolves to the exit status (0 done,
 * 2 usage); never calls `process.exit` and never throws, so tests can call it in-process. Errors `run` throws
 * are option errors found late (the client refused an option when it was built), so they exit 2 as well. By
 * convention a command resolves to 130 when `io.signal` aborted with `"interrupted"` (Ctrl-C, SIGTERM) and 0
 * when stdout was closed by its reader.
 */
export async function runCommand<Options extends { readonly password?: string | undefined }>(
  spec: CommandSpec<Options>,
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  const [command, ...afterCommand] = argv;
  // `-v`/`--version` is the same option wherever options go: first (`streamll --version`), or among the
  // command's options (`streamll compare a.jsonl --version`), for a tool without a command anywhere.
  const optionArgs =
    spec.command === undefined ? argv : command === spec.command ? afterCommand : argv.slice(0, 1);
  if (asksForVersion(optionArgs)) {
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

/**
 * Whether `args` hold `-v` or `--version` as an argument of its own, before a `--` (after which every argument
 * is a positional). A `-v` cannot be the value of an option there: parseArgs refuses a value that starts with
 * `-` unless given inline (`--module=-v`).
 */
function asksForVersion(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "-v" || arg === "--version") return true;
  }
  return false;
}

/**
 * `unknown command "comapre"; did you mean "compare"?`: a misspelt command is named with the one meant. One
 * that may be a secret ({@link shownName}) is not repeated.
 */
function unknownCommand(given: string, known: string): string {
  const meant = nearestName(given, [known]);
  const suggestion = meant === undefined ? "" : `; did you mean "${meant}"?`;
  const shown = shownName(given, meant)
    ? `"${oneLine(redactSecrets(given, []))}"`
    : "(not shown: it may be a secret)";
  return `unknown command ${shown}${suggestion}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Error text as one line: a multi-line message (a stack, a server's reply) would break the one-line rule. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
