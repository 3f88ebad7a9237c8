import type { JsonObject, Span, VersionRecord, VersionTracker } from "@streamll/core";
import { fingerprintProgram, type ProgramFingerprint } from "./program-fingerprint";

/** Strategy named in the `version` events of Ax programs. */
export const AX_PROGRAM_STRATEGY = "ax-program";

/** A version record per fingerprint: the tracker remembers on it which module names it announced. */
const records = new WeakMap<ProgramFingerprint, VersionRecord>();

function recordOf(tracker: VersionTracker, fingerprint: ProgramFingerprint): VersionRecord {
  let record = records.get(fingerprint);
  if (record === undefined) {
    const info = tracker.processInfo();
    // `announcedAs`/`alsoAnnouncedAs` are the tracker's bookkeeping of which module names saw a `version` event.
    record = {
      moduleVersion: info.moduleVersion,
      codeSignature: fingerprint.signature,
      gitCommit: info.gitCommit,
      details: {
        signature: fingerprint.signature,
        strategy: "custom",
        methods: fingerprint.components.map((c) => ({ name: c.name, hash: c.hash })),
        unavailable: null,
      },
      announcedAs: null,
      alsoAnnouncedAs: null,
    } as VersionRecord;
    records.set(fingerprint, record);
  }
  return record;
}

/**
 * Fills `span`'s version fields from the program's fingerprint, and returns the `version` event data the
 * first time this (module, fingerprint) pair is seen. An optimizer that changes the program's demos or
 * instruction makes a new fingerprint, so the next call announces a new version.
 */
export function trackProgramVersion(
  tracker: VersionTracker,
  span: Span,
  program: object,
  moduleName: string,
): JsonObject | null {
  const record = recordOf(tracker, fingerprintProgram(program));
  span.moduleVersion = record.moduleVersion;
  span.codeSignature = record.codeSignature;
  span.gitCommit = record.gitCommit;
  const data = tracker.takeVersionEvent(moduleName, record);
  if (data === null) return null;
  data.strategy = AX_PROGRAM_STRATEGY;
  return data;
}
