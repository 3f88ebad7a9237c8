export { instrumentAx, isAxInstrumented } from "./instrument/instrument-ax";
export type { InstrumentAxOptions } from "./instrument/options";
export {
  fingerprintProgram,
  type ProgramComponentHash,
  type ProgramFingerprint,
} from "./version/program-fingerprint";
