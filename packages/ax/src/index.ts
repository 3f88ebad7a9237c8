export { instrumentAx, isAxInstrumented } from "./instrument/instrument-ax";
export { instrumentAxFunctions } from "./instrument/instrument-functions";
export type { InstrumentAxOptions } from "./instrument/options";
export { instrumentAxOptimizer } from "./optimizer/instrument-optimizer";
export type { InstrumentAxOptimizerOptions } from "./optimizer/options";
export {
  fingerprintProgram,
  type ProgramComponentHash,
  type ProgramFingerprint,
} from "./version/program-fingerprint";
