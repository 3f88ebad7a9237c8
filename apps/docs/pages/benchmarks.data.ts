import { type BenchFile, loadBenchResults } from "../.vitepress/bench";

export type { BenchFile };
export declare const data: BenchFile[];

// A VitePress data loader: read at build time, so the page ships the numbers, not the files.
export default {
  watch: ["../../../packages/*/bench/results/*.json"],
  load: (): BenchFile[] => loadBenchResults(),
};
