// Version tracking (issue 3): what `versionTracking` adds to an instrumented call once the signature is
// cached, and what the first computation for a ~100-line method costs.
import os from "node:os";
import { performance } from "node:perf_hooks";

export const title = "version tracking";

/** A class whose `forward` is ~100 lines of varied statements, calling five helpers through `this`. */
function classSource(variant) {
  const lines = [];
  for (let i = 0; i < 96; i++) {
    switch (i % 6) {
      case 0:
        lines.push(`    const v${i} = this.step${i % 5}(input.items[${i}] ?? "${variant}-${i}");`);
        break;
      case 1:
        lines.push(`    if (v${i - 1}.length > ${i}) { total += v${i - 1}.length; } else { total -= ${i}; }`);
        break;
      case 2:
        lines.push(`    for (const part of String(v${i - 2}).split(",")) { parts.push(\`\${part}:${i}\`); }`);
        break;
      case 3:
        lines.push(`    const o${i} = { key: "k${i}", value: total * ${i}, nested: [${i}, ${i + 1}] };`);
        break;
      case 4:
        lines.push(`    results.push(o${i - 1}.value > 0 ? await this.score(o${i - 1}) : null);`);
        break;
      default:
        lines.push(`    // step ${i}: keep the running total bounded`);
    }
  }
  const helpers = [0, 1, 2, 3, 4]
    .map((n) => `  step${n}(x) { return String(x).trim() + "${n}"; }`)
    .join("\n");
  return `class Pipeline${variant} {
  async forward(input) {
    let total = 0;
    const parts = [];
    const results = [];
${lines.join("\n")}
    return { total, parts, results };
  }
${helpers}
  async score(o) { return o.value / 2; }
}`;
}

/** The same class with 20 more methods of 20 lines each that `forward` never calls. */
function largerClassSource(variant) {
  const unrelated = Array.from({ length: 20 }, (_, m) => {
    const body = Array.from(
      { length: 20 },
      (_, l) => `    const x${l} = a.map((v) => v * ${l} + b.length).filter(Boolean);`,
    );
    return `  unrelated${m}(a, b) {\n${body.join("\n")}\n    return a;\n  }`;
  });
  return classSource(variant).replace(/\n}$/, `\n${unrelated.join("\n")}\n}`);
}

export async function run({ core, harness, row, log }) {
  const { VersionTracker } = core;

  // The very first computation in the process: nothing parsed yet, the parser not compiled by the JIT.
  const cold = new VersionTracker({ gitCommit: null, strategy: "ast" });
  cold.processInfo();
  const ColdClass = new Function(`return (${classSource("Cold")})`)();
  const coldStart = performance.now();
  cold.lookup(ColdClass, "forward", "Pipeline");
  const coldMs = performance.now() - coldStart;

  // Cached lookup: the per-call cost once a class has been seen. `applyToSpan` is what `instrument()` runs on
  // every call (find the class's entry, copy three fields onto the span, check the version was announced).
  const tracker = new VersionTracker({ gitCommit: null });
  tracker.processInfo();
  const Cls = new Function(`return (${classSource(0)})`)();
  const instance = new Cls();
  const original = Cls.prototype.forward;
  const span = { moduleName: Cls.name, moduleVersion: null, codeSignature: null, gitCommit: null };
  tracker.applyToSpan(span, original, "forward", instance);
  let sink = 0;
  const applied = await harness.nsPerOp(
    (count) => {
      for (let i = 0; i < count; i++) {
        if (tracker.applyToSpan(span, original, "forward", instance) !== null) sink++;
        sink += span.codeSignature.length;
      }
    },
    { ops: 1_000_000 },
  );
  const looked = await harness.nsPerOp(
    (count) => {
      for (let i = 0; i < count; i++) sink += tracker.lookup(Cls, "forward").codeSignature.length;
    },
    { ops: 1_000_000 },
  );
  if (sink === 0) log("unexpected: no signature");
  row({
    metric: "per instrumented call (cached, applyToSpan)",
    value: harness.formatNs(applied.median),
    target: "< 0.2 µs",
    pass: applied.median < 200,
  });
  row({
    metric: "cached lookup(class, method)",
    value: harness.formatNs(looked.median),
    target: "< 0.2 µs",
    pass: looked.median < 200,
  });

  // First computation for a new class.
  // Wall clock: per-thread CPU clocks tick too coarsely (milliseconds) to time a sub-millisecond call, so on a
  // shared machine this number includes time spent waiting for a core; read it with the load average.
  const lines = classSource(0).split("\n");
  const method = lines.slice(
    1,
    lines.findIndex((line) => line.startsWith("  step0")),
  );
  const methodSize = `${method.length}-line (${(method.join("\n").length / 1024).toFixed(1)} KiB) method`;
  // Steady state: V8 needs a few hundred runs to optimise acorn and the tree walkers, and each strategy's
  // paths feed back into the shared ones, so all cases warm up together, then are measured round-robin (so
  // every case sees the same machine conditions). A process that instruments a handful of classes pays
  // closer to the cold number below, once per class.
  const WARMUP = 100;
  const SAMPLES = 100;
  // The last case adds 20 unrelated 20-line methods to the class: `ast-deps` parses only what forward() reaches.
  const cases = [
    ["ast", "ast", classSource],
    ["ast-deps", "ast-deps", classSource],
    ["source", "source", classSource],
    ["signature", "signature", classSource],
    ["ast-deps, class with 20 more 20-line methods", "ast-deps", largerClassSource],
  ].map(([label, strategy, source]) => {
    const tracker = new VersionTracker({ gitCommit: null, strategy });
    tracker.processInfo();
    return { label, tracker, source, samples: [] };
  });
  let variant = 1;
  for (let round = 0; round < WARMUP + SAMPLES; round++) {
    for (const entry of cases) {
      // A fresh class every time, so neither the tracker nor the class-parse cache helps.
      const Fresh = new Function(`return (${entry.source(variant++)})`)();
      const start = performance.now();
      entry.tracker.lookup(Fresh, "forward", "Pipeline");
      const elapsed = performance.now() - start;
      if (round >= WARMUP) entry.samples.push(elapsed);
    }
  }
  for (const { label, samples } of cases) {
    const median = harness.median(samples);
    row({
      metric: `first computation, ${methodSize}, ${label}`,
      value: `${median.toFixed(3)} ms`,
      target: "< 1 ms",
      pass: median < 1,
    });
  }

  row({
    metric: "first computation of the process (cold JIT), same method, ast",
    value: `${coldMs.toFixed(2)} ms`,
  });

  const load = os.loadavg()[0];
  log(`load average during the run: ${load.toFixed(1)} on ${os.cpus().length} cores`);

  // Process facts (package.json, git HEAD, `git status`): once per configure(), at start-up.
  const start = performance.now();
  new VersionTracker(true).processInfo();
  row({
    metric: "process info (package, git commit + dirty check)",
    value: `${(performance.now() - start).toFixed(1)} ms`,
  });
}
