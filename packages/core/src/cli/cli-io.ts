import { once } from "node:events";

/** Where a streamll command-line tool writes, and how it is told to stop. Tests pass their own. */
export interface CliIo {
  /** One or more complete lines of output (event JSON). May return a promise to apply backpressure. */
  stdout(text: string): void | Promise<void>;
  /** Progress, warnings and errors. Never receives a secret. */
  stderr(text: string): void;
  /** Environment for options such as `--password-env`. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Aborted on Ctrl-C / SIGTERM (reason `"interrupted"`) or when the reader of stdout went away (reason
   * {@link OUTPUT_CLOSED}, e.g. `| head`), which a tool should treat as a normal end.
   */
  signal?: AbortSignal;
}

/** The abort reason when stdout was closed by its reader (EPIPE). */
export const OUTPUT_CLOSED = "output-closed";

/**
 * The process's stdio as a {@link CliIo}: stdout writes wait for `drain` so a slow pipe throttles the tool
 * instead of buffering without bound; Ctrl-C and SIGTERM abort the signal; a closed stdout aborts it with
 * {@link OUTPUT_CLOSED}.
 */
export function createProcessIo(): CliIo {
  const controller = new AbortController();
  const interrupt = () => controller.abort("interrupted");
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    controller.abort(error.code === "EPIPE" ? OUTPUT_CLOSED : "stdout failed");
  });
  return {
    stdout: async (text) => {
      if (controller.signal.aborted || process.stdout.write(text)) return;
      await once(process.stdout, "drain", { signal: controller.signal }).catch(() => undefined);
    },
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    signal: controller.signal,
  };
}

/** A {@link CliIo} that keeps what a tool prints, for running its `main` in-process (tests, embedding). */
export function recordingIo(
  env: Readonly<Record<string, string | undefined>> = {},
  signal?: AbortSignal,
): { readonly io: CliIo; stdout(): string; stderr(): string } {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
    ...(signal === undefined ? {} : { signal }),
  };
  return { io, stdout: () => stdout, stderr: () => stderr };
}
