import { v, validateOptions } from "@streamll/core/internal";

/** Options of {@link instrumentAxOptimizer}. */
export interface InstrumentAxOptimizerOptions {
  /** `module_name` of the optimizer run's events. Default: `optimize <program's module name>`. */
  name?: string;
  /** Tags added to the run's events (over the configured global tags). */
  tags?: Record<string, string>;
}

/** `InstrumentAxOptimizerOptions` as `instrumentAxOptimizer()` checks them. */
export const instrumentAxOptimizerOptionsSchema = v.object<InstrumentAxOptimizerOptions>({
  name: v.string({ min: 1 }).optional(),
  tags: v.record(v.string()).optional(),
});

export function parseInstrumentAxOptimizerOptions(options: unknown): InstrumentAxOptimizerOptions {
  if (options === undefined) return {};
  return validateOptions("instrumentAxOptimizer()", instrumentAxOptimizerOptionsSchema, options);
}
