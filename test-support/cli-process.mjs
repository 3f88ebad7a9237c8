// Runs a streamll command-line tool as a real process (its built bin) for the tests every CLI shares: usage on
// stderr, one-line errors with the --help hint, status 130 on Ctrl-C.
import { spawn } from "node:child_process";

// Preloaded into the tool: says on stderr when the tool installed its SIGINT handler, so a test sends Ctrl-C
// to a tool that is running, never to one still starting (which would die by the signal instead).
const SIGINT_READY = "streamll-test: sigint handler installed";
const PRELOAD = `data:text/javascript,process.on("newListener",(e)=>{if(e==="SIGINT")setImmediate(()=>process.stderr.write(${JSON.stringify(`${SIGINT_READY}\n`)}))})`;

/** Starts `bin` with `args`; stdin is a pipe left open unless `input` is given. */
export function startCli(bin, args, { env = {}, input } = {}) {
  const child = spawn(process.execPath, ["--import", PRELOAD, bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set();
  const check = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout.on("data", (chunk) => {
    stdout += chunk.toString();
    check();
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk.toString();
    check();
  });
  child.stdin.on("error", () => {});
  if (input !== undefined) child.stdin.end(input);
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      check();
      resolve({ code, signal });
    });
  });
  let ended = false;
  exited.then(() => {
    ended = true;
    check();
  });
  /** Resolves once stdout or stderr (the test's own marker left out) matches `pattern`. */
  const waitFor = (pattern, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(test);
        reject(
          new Error(
            `timed out waiting for ${pattern}; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-1_000)}`,
          ),
        );
      }, timeoutMs);
      const test = () => {
        if (pattern.test(stdout) || pattern.test(stderr)) {
          clearTimeout(timer);
          waiters.delete(test);
          resolve();
        } else if (ended) {
          clearTimeout(timer);
          waiters.delete(test);
          reject(
            new Error(
              `exited before ${pattern}; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-1_000)}`,
            ),
          );
        }
      };
      waiters.add(test);
      test();
    });
  return {
    child,
    exited,
    waitFor,
    /** Waits until the tool can take Ctrl-C, then sends SIGINT; resolves with the exit. */
    async interrupt(timeoutMs = 30_000) {
      await waitFor(new RegExp(SIGINT_READY), timeoutMs);
      child.kill("SIGINT");
      return exited;
    },
    stdout: () => stdout,
    /** Stderr without the test's own marker line. */
    stderr: () => stderr.split(`${SIGINT_READY}\n`).join(""),
  };
}

/** Runs `bin` with `args` to its end (stdin closed at once); resolves with its status and output. */
export async function runCli(bin, args, options = {}) {
  const cli = startCli(bin, args, { input: "", ...options });
  const { code, signal } = await cli.exited;
  return { code, signal, stdout: cli.stdout(), stderr: cli.stderr() };
}
