#!/usr/bin/env node
import { main } from "./cli-main";

// kafkajs 2.2.4 arms a timer with a negative delay on Node 23+; Node runs it after 1 ms and prints a warning
// that means nothing to someone piping an export (docs/production/kafka.md). Other warnings stay.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
  if (
    type === "TimeoutNegativeWarning" ||
    (warning instanceof Error && warning.name === "TimeoutNegativeWarning")
  ) {
    return;
  }
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

// No process.exit: the connection is closed by then and stdout must drain before the process ends.
void main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
