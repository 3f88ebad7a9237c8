import type { AxOptimizationProgress } from "@ax-llm/ax";
import * as axExports from "@ax-llm/ax";
import { ConfigurationError, getCurrentSpan, type JsonObject } from "@streamll/core";
import { getRuntime, reportInternalError } from "@streamll/core/internal";
import { AxCall, runInCall } from "../instrument/ax-call";
import { markOptimizerRun, programModuleName } from "../instrument/instrument-ax";
import { fingerprintProgram } from "../version/program-fingerprint";
import { type InstrumentAxOptimizerOptions, parseInstrumentAxOptimizerOptions } from "./options";

/** What instrumentation reads of an Ax optimizer (`AxBootstrapFewShot`, `AxGEPA`, `AxACE`, …). */
interface OptimizerLike {
  compile(program: unknown, examples: unknown, metricFn: unknown, options?: unknown): Promise<unknown>;
  // Declared `protected readonly` by Ax: the constructor's progress callback, still called when a compile
  // is given its own `overrideOnProgress`.
  onProgress?: (progress: Readonly<AxOptimizationProgress>) => void;
}

/** What a compile returns (`AxOptimizerResult`), read defensively. */
interface ResultLike {
  bestScore?: unknown;
  demos?: unknown;
  stats?: { totalCalls?: unknown; earlyStopped?: unknown; convergenceInfo?: { converged?: unknown } };
  scoreHistory?: unknown;
  optimizedProgram?: {
    demos?: unknown;
    modelConfig?: unknown;
    componentMap?: unknown;
    totalRounds?: unknown;
  };
}

/** A program that can be copied and optimized without touching the original (AxGen). */
interface ClonableProgram {
  clone?: () => object;
  getInstruction?: () => string | undefined;
  examples?: unknown;
}

const instrumented = new WeakSet<object>();

/** Optimizer class names, by prototype: Ax's bundle minifies class names, its exports keep them. */
let optimizerNames: Map<object, string> | undefined;

function namesOfOptimizers(): Map<object, string> {
  if (optimizerNames !== undefined) return optimizerNames;
  optimizerNames = new Map();
  for (const [name, value] of Object.entries(axExports as Record<string, unknown>)) {
    if (typeof value !== "function" || !/^Ax[A-Za-z]+$/.test(name)) continue;
    const prototype = (value as { prototype?: unknown }).prototype;
    if (
      typeof prototype === "object" &&
      prototype !== null &&
      typeof (prototype as OptimizerLike).compile === "function"
    )
      optimizerNames.set(prototype, name);
  }
  return optimizerNames;
}

function optimizerType(optimizer: object): string {
  for (
    let proto = Object.getPrototypeOf(optimizer) as object | null;
    proto !== null;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    const name = namesOfOptimizers().get(proto);
    if (name !== undefined) return name;
  }
  const ctor = (optimizer as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === "string" && ctor.length > 2 ? ctor : "optimizer";
}

function countOf(value: unknown): number | null {
  return Array.isArray(value) ? value.length : null;
}

function finiteOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A compile option worth recording: numbers, booleans and short strings (never objects such as AI services). */
function simpleOptions(options: unknown): JsonObject {
  const picked: JsonObject = {};
  if (typeof options !== "object" || options === null) return picked;
  for (const [key, value] of Object.entries(options)) {
    if (typeof value === "number" || typeof value === "boolean") picked[key] = value;
    else if (typeof value === "string" && value.length <= 64) picked[key] = value;
  }
  return picked;
}

/**
 * The `code_signature` the program will have once the result is applied (`applyOptimization` or `setDemos`),
 * computed on a copy so the program itself is left as the optimizer left it. Null for programs Ax cannot copy.
 */
function versionAfter(program: object, result: ResultLike): string | null {
  const source = program as ClonableProgram;
  if (typeof source.clone !== "function") return null;
  try {
    const copy = source.clone() as {
      setInstruction?: (text: string) => void;
      setExamples?: (examples: unknown) => void;
      setDemos?: (demos: unknown, options?: unknown) => void;
      applyOptimization?: (optimized: unknown) => void;
    };
    const instruction = source.getInstruction?.();
    if (typeof instruction === "string" && instruction !== "") copy.setInstruction?.(instruction);
    if (Array.isArray(source.examples) && source.examples.length > 0) copy.setExamples?.(source.examples);
    if (result.optimizedProgram !== undefined && typeof copy.applyOptimization === "function") {
      copy.applyOptimization(result.optimizedProgram);
    } else if (Array.isArray(result.demos)) {
      copy.setDemos?.(result.demos);
    }
    return fingerprintProgram(copy).signature;
  } catch (error) {
    reportInternalError("computing an optimized program's version failed", error);
    return null;
  }
}

/** Scores seen by one compile: each metric call is a trial. */
class TrialLog {
  trials = 0;
  best: number | null = null;
  private sum = 0;
  private scored = 0;

  record(call: AxCall, score: unknown, example: unknown): void {
    try {
      this.trials += 1;
      const data: JsonObject = { trial: this.trials };
      if (typeof score === "number" && Number.isFinite(score)) {
        this.scored += 1;
        this.sum += score;
        if (this.best === null || score > this.best) this.best = score;
        data.score = score;
      } else if (typeof score === "object" && score !== null) {
        data.scores = Object.fromEntries(
          Object.entries(score).filter((entry): entry is [string, number] => typeof entry[1] === "number"),
        );
      }
      data.best_score = this.best;
      data.mean_score = this.scored === 0 ? null : this.sum / this.scored;
      data.examples_scored = this.trials;
      if (getRuntime().config.includeInputs && typeof example === "object" && example !== null)
        data.example = example as JsonObject;
      call.emitRaw("optimizer_trial", data);
    } catch (error) {
      reportInternalError("recording an optimizer trial failed", error);
    }
  }
}

function progressData(progress: Readonly<AxOptimizationProgress>): JsonObject {
  return {
    round: finiteOrNull(progress.round),
    total_rounds: finiteOrNull(progress.totalRounds),
    score: finiteOrNull(progress.currentScore),
    best_score: finiteOrNull(progress.bestScore),
    successful_examples: finiteOrNull(progress.successfulExamples),
    total_examples: finiteOrNull(progress.totalExamples),
    tokens_used: finiteOrNull(progress.tokensUsed),
  };
}

function wrapCompile(
  optimizer: OptimizerLike,
  original: OptimizerLike["compile"],
  options: InstrumentAxOptimizerOptions,
) {
  const tags = options.tags === undefined ? undefined : Object.freeze({ ...options.tags });
  return function compile(
    this: OptimizerLike,
    program: unknown,
    examples: unknown,
    metricFn: unknown,
    compileOptions?: unknown,
  ): Promise<unknown> {
    const self = this ?? optimizer;
    if (
      !getRuntime().active ||
      typeof program !== "object" ||
      program === null ||
      typeof metricFn !== "function"
    )
      return Reflect.apply(original, self, [program, examples, metricFn, compileOptions]);
    let call: AxCall;
    let args: unknown[];
    const trials = new TrialLog();
    let versionBefore: string | null = null;
    const type = optimizerType(self);
    try {
      const programName = programModuleName(program);
      call = new AxCall(
        getCurrentSpan(),
        self,
        options.name ?? `optimize ${programName}`,
        tags,
        true,
        "compile",
      );
      // The program calls the optimizer makes are trials of intermediate versions, not the program's traffic:
      // marked (`operation: "optimizer"`) so comparing versions leaves them out of the program's own calls.
      markOptimizerRun(call);
      versionBefore = fingerprintProgram(program).signature;
      call.emit("start", { optimizer: type, program: programName });
      const given = (
        typeof compileOptions === "object" && compileOptions !== null ? compileOptions : {}
      ) as Record<string, unknown>;
      call.emit("optimizer_start", {
        optimizer: type,
        program: programName,
        program_version: versionBefore,
        examples: countOf(examples),
        validation_examples: countOf(given.validationExamples),
        options: simpleOptions(given),
      });
      call.started();
      const userProgress =
        typeof given.overrideOnProgress === "function" ? given.overrideOnProgress : self.onProgress;
      const metric = metricFn as (arg: { prediction: unknown; example: unknown }) => unknown;
      const recordingMetric = (arg: { prediction: unknown; example: unknown }) => {
        const score = metric(arg);
        if (
          score !== null &&
          typeof score === "object" &&
          typeof (score as PromiseLike<unknown>).then === "function"
        ) {
          return Promise.resolve(score).then((value) => {
            trials.record(call, value, arg?.example);
            return value;
          });
        }
        trials.record(call, score, arg?.example);
        return score;
      };
      const onProgress = (progress: Readonly<AxOptimizationProgress>) => {
        try {
          call.emit("optimizer_round", progressData(progress));
        } catch (error) {
          reportInternalError("recording optimizer progress failed", error);
        }
        if (typeof userProgress === "function") (userProgress as (p: typeof progress) => void)(progress);
      };
      args = [program, examples, recordingMetric, { ...given, overrideOnProgress: onProgress }];
    } catch (error) {
      reportInternalError("instrumentation failed; optimizer run not recorded", error);
      return Reflect.apply(original, self, [program, examples, metricFn, compileOptions]);
    }
    const pending = runInCall(call, original as never, self, args) as Promise<unknown>;
    return Promise.resolve(pending).then(
      (value) => {
        try {
          const result = (typeof value === "object" && value !== null ? value : {}) as ResultLike;
          const programVersion = versionAfter(program, result);
          const bestScore = finiteOrNull(result.bestScore) ?? trials.best;
          const end: JsonObject = {
            optimizer: type,
            best_score: bestScore,
            trials: trials.trials,
            demos: countOf(result.demos ?? result.optimizedProgram?.demos),
            program_version_before: versionBefore,
            program_version: programVersion,
            early_stopped: result.stats?.earlyStopped === true,
            converged: result.stats?.convergenceInfo?.converged === true,
          };
          const totalCalls = finiteOrNull(result.stats?.totalCalls);
          if (totalCalls !== null) end.total_calls = totalCalls;
          const rounds = finiteOrNull(result.optimizedProgram?.totalRounds);
          if (rounds !== null) end.rounds = rounds;
          if (Array.isArray(result.scoreHistory))
            end.score_history = result.scoreHistory.filter((s) => typeof s === "number");
          const usage = call.usageData();
          if (usage !== null) end.usage = usage;
          call.emit("optimizer_end", end);
          call.finish({ best_score: bestScore, program_version: programVersion });
        } catch (error) {
          reportInternalError("recording an optimizer result failed", error);
        }
        return value;
      },
      (error: unknown) => {
        call.fail(error);
        throw error;
      },
    );
  };
}

/**
 * Instruments an Ax optimizer (`AxBootstrapFewShot`, `AxGEPA`, `AxACE`, any `AxBaseOptimizer`) in place and
 * returns it. Each `compile(program, examples, metric)` is one execution: `optimizer_start` (optimizer, program,
 * its version, example counts), an `optimizer_trial` event per metric evaluation (score, best so far, mean,
 * examples scored), `optimizer_round` events from the optimizer's own progress callback when it reports
 * rounds, and `optimizer_end` with the best score and `program_version` — the `code_signature` the program
 * will have once the result is applied. Calls of an instrumented program during the run are its child spans,
 * with `operation: "optimizer"` (so `streamll compare` keeps them apart from the program's other calls), and
 * their token usage is summed into the run's `usage`.
 *
 * @throws ConfigurationError for invalid options or a value without a `compile` method.
 */
export function instrumentAxOptimizer<O extends object>(
  optimizer: O,
  options?: InstrumentAxOptimizerOptions,
): O {
  const parsed = parseInstrumentAxOptimizerOptions(options);
  if (
    typeof optimizer !== "object" ||
    optimizer === null ||
    typeof (optimizer as Partial<OptimizerLike>).compile !== "function"
  ) {
    throw new ConfigurationError(
      "instrumentAxOptimizer() expects an Ax optimizer (AxBootstrapFewShot, AxGEPA, ...): a value with a compile() method",
      [{ path: "optimizer", message: "not an Ax optimizer" }],
    );
  }
  if (instrumented.has(optimizer)) return optimizer;
  instrumented.add(optimizer);
  const target = optimizer as unknown as OptimizerLike;
  Object.defineProperty(optimizer, "compile", {
    value: wrapCompile(target, target.compile, parsed),
    writable: true,
    enumerable: false,
    configurable: true,
  });
  return optimizer;
}
