#!/usr/bin/env node
import { main } from "./cli-main";

// No process.exit: the connection is closed by then and stdout must drain before the process ends.
void main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
