#!/usr/bin/env node
import { version } from "../../package.json";
import { runCli } from "../version/compare/run-cli";

// No top-level await: the bundler also emits a CommonJS copy of this entry.
void runCli(process.argv.slice(2), undefined, version).then((status) => {
  process.exitCode = status;
});
