import { v, validateOptions } from "@streamll/core/internal";

/** Options of {@link instrumentAx}. */
export interface InstrumentAxOptions {
  /**
   * `module_name` of the program's events. Default: the first line of the signature's description, else the
   * signature's fields (`question -> answer`). Programs inside a flow or agent are named the same way, or by
   * their id in the tree (`qa.actor`) when their signature has no description.
   */
  name?: string;
  /** Tags added to the program's events (over the configured global tags), its nested programs included. */
  tags?: Record<string, string>;
  /** Record the program's input values as `data.inputs`. Default: the configured `includeInputs`. */
  includeInputs?: boolean;
  /**
   * Record the parsed output fields as `data.outputs`, and emit `token` events for streamed output. Default:
   * the configured `includeOutputs`.
   */
  includeOutputs?: boolean;
  /**
   * Instrument the programs inside a flow or agent too (every program in `namedProgramInstances()`), so each
   * node, actor and sub-agent call is a child span. Default `true`.
   */
  nested?: boolean;
}

/** `InstrumentAxOptions` as `instrumentAx()` checks them. */
export const instrumentAxOptionsSchema = v.object<InstrumentAxOptions>({
  name: v.string({ min: 1 }).optional(),
  tags: v.record(v.string()).optional(),
  includeInputs: v.boolean().optional(),
  includeOutputs: v.boolean().optional(),
  nested: v.boolean().optional(),
});

export function parseInstrumentAxOptions(options: unknown): InstrumentAxOptions {
  if (options === undefined) return {};
  return validateOptions("instrumentAx()", instrumentAxOptionsSchema, options);
}
