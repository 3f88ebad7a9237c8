import { createHash } from "node:crypto";

/** One part of what defines a program, hashed on its own so a `version` event shows which part changed. */
export interface ProgramComponentHash {
  /** `signature`, `instruction`, `demos`, `examples`, `model_config`, or `program:<id>` for a nested program. */
  readonly name: string;
  readonly hash: string;
}

/** The version of an Ax program: what its `code_signature` is computed from. */
export interface ProgramFingerprint {
  /** 12 hex characters: `code_signature` on the wire. */
  readonly signature: string;
  readonly components: readonly ProgramComponentHash[];
}

/** The Ax program members read for fingerprinting; each is optional so any Ax program shape is accepted. */
interface ProgramShape {
  getSignature?: () => { toString(): string } | undefined;
  // AxProgram's signature object and its hash (`protected`): replaced by setSignature/setDescription, read
  // here because getSignature() returns a fresh copy on every call.
  signature?: { toString(): string } | undefined;
  sigHash?: unknown;
  getInstruction?: () => string | undefined;
  getId?: () => string;
  namedProgramInstances?: () => readonly { id: string; program: unknown }[];
  // Declared `protected` by Ax's types, plain fields at run time: the program's few-shot demos, examples and
  // construction options. Ax replaces them as a whole (setDemos, setExamples, applyOptimization), which is
  // what makes caching on their identity sound.
  demos?: unknown;
  examples?: unknown;
  options?: { modelConfig?: unknown; model?: unknown; description?: unknown } | undefined;
}

const HEX_LENGTH = 12;

function hashText(kind: string, text: string): string {
  return createHash("sha256").update(kind).update("\0").update(text).digest("hex").slice(0, HEX_LENGTH);
}

/** JSON with object keys sorted, so the same demos give the same hash whatever order their keys were set in. */
function stableJson(value: unknown, seen = new Set<object>()): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "function") return '"[function]"';
    if (typeof value === "bigint") return `"${value}n"`;
    return JSON.stringify(value) ?? "null";
  }
  if (seen.has(value)) return '"[circular]"';
  seen.add(value);
  let out: string;
  if (Array.isArray(value)) {
    out = `[${value.map((item) => stableJson(item, seen)).join(",")}]`;
  } else {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    out = `{${keys.map((key) => `${JSON.stringify(key)}:${stableJson(record[key], seen)}`).join(",")}}`;
  }
  seen.delete(value);
  return out;
}

/** What a program's own parts are now; compared by identity to reuse a cached fingerprint. */
interface Parts {
  /** The signature's text: compared by value, since only composite programs need getSignature() for it. */
  readonly signature: string;
  /**
   * AxProgram's signature object and hash the text was read from: while both are the same objects, the text
   * is too (Ax replaces the object and its hash on every change), and writing it out is the costly part.
   */
  readonly signatureObject: unknown;
  readonly sigHash: unknown;
  readonly instruction: string | undefined;
  readonly demos: unknown;
  readonly examples: unknown;
  readonly options: unknown;
}

interface CacheEntry {
  readonly parts: Parts;
  readonly children: readonly unknown[];
  readonly fingerprint: ProgramFingerprint;
}

const cache = new WeakMap<object, CacheEntry>();

/** The signature text: from AxProgram's own field when it has one (no copy), else through getSignature(). */
function signatureText(program: ProgramShape): string {
  const own = program.signature;
  const signature = own !== undefined && own !== null ? own : program.getSignature?.();
  return signature === undefined || signature === null ? "" : String(signature.toString());
}

/**
 * True while an AxProgram's own signature object and hash are `object` and `hash`: Ax replaces both on every
 * change (setSignature, setDescription), so whatever was read from the signature then is still what it says.
 * False for programs without their own signature object (flows, agents), which must be read again.
 */
export function isSameSignature(program: object, object: unknown, hash: unknown): boolean {
  const own = (program as ProgramShape).signature;
  return own !== undefined && own !== null && own === object && (program as ProgramShape).sigHash === hash;
}

function readParts(program: ProgramShape, previous: Parts | undefined): Parts {
  const unchanged =
    previous !== undefined && isSameSignature(program, previous.signatureObject, previous.sigHash);
  return {
    signature: unchanged ? previous.signature : signatureText(program),
    signatureObject: program.signature,
    sigHash: program.sigHash,
    instruction: program.getInstruction?.(),
    demos: program.demos,
    examples: program.examples,
    options: program.options,
  };
}

/** True while `program`'s parts are still those read into `parts` ({@link readParts} then {@link sameParts}). */
function isUnchanged(program: ProgramShape, parts: Parts): boolean {
  return (
    isSameSignature(program, parts.signatureObject, parts.sigHash) &&
    program.getInstruction?.() === parts.instruction &&
    program.demos === parts.demos &&
    program.examples === parts.examples &&
    program.options === parts.options
  );
}

function sameParts(a: Parts, b: Parts): boolean {
  return (
    a.signature === b.signature &&
    a.instruction === b.instruction &&
    a.demos === b.demos &&
    a.examples === b.examples &&
    a.options === b.options
  );
}

/** Programs found to have nothing nested (a plain AxGen): not asked again on every call. */
const leaves = new WeakSet<object>();

const NONE: readonly { id: string; program: object }[] = Object.freeze([]);

/** True for a program found to have nothing nested: it gets nothing nested later either. */
export function isLeafProgram(program: object): boolean {
  return leaves.has(program);
}

/** The programs nested in `program` (flow nodes, agent actor/responder, sub-agents), itself excluded. */
export function nestedPrograms(program: object): readonly { id: string; program: object }[] {
  if (leaves.has(program)) return NONE;
  const list = (program as ProgramShape).namedProgramInstances;
  if (typeof list !== "function") {
    leaves.add(program);
    return NONE;
  }
  try {
    const found: { id: string; program: object }[] = [];
    for (const entry of list.call(program)) {
      const child = entry?.program;
      if (typeof child === "object" && child !== null && child !== program) {
        found.push({ id: String(entry.id), program: child });
      }
    }
    // A program with no children now gets none later (Ax registers children when a composite is built).
    if (found.length === 0) leaves.add(program);
    return found;
  } catch {
    return [];
  }
}

/**
 * The fingerprint of an Ax program: its signature text (with the description), instruction, demos, examples
 * and model configuration, and for a flow or agent those of every nested program. Cached per program until
 * one of those parts is replaced, so a call costs a few identity comparisons; an optimizer that sets new demos
 * or instructions yields a new fingerprint on the next call.
 */
export function fingerprintProgram(program: object): ProgramFingerprint {
  const shape = program as ProgramShape;
  const cached = cache.get(program);
  // A plain program whose parts are the ones fingerprinted (the common case, once per call): compared in
  // place, with no copy of its parts made.
  if (
    cached !== undefined &&
    cached.children.length === 0 &&
    leaves.has(program) &&
    isUnchanged(shape, cached.parts)
  )
    return cached.fingerprint;
  const parts = readParts(shape, cached?.parts);
  const nested = nestedPrograms(program);
  const childPrints = nested.map((entry) => fingerprintProgram(entry.program));
  if (
    cached !== undefined &&
    sameParts(cached.parts, parts) &&
    cached.children.length === childPrints.length &&
    cached.children.every((print, i) => print === childPrints[i])
  ) {
    return cached.fingerprint;
  }
  const components: ProgramComponentHash[] = [
    { name: "signature", hash: hashText("signature", parts.signature) },
  ];
  if (parts.instruction !== undefined && parts.instruction !== "")
    components.push({ name: "instruction", hash: hashText("instruction", parts.instruction) });
  if (Array.isArray(parts.demos) && parts.demos.length > 0)
    components.push({ name: "demos", hash: hashText("demos", stableJson(parts.demos)) });
  if (Array.isArray(parts.examples) && parts.examples.length > 0)
    components.push({ name: "examples", hash: hashText("examples", stableJson(parts.examples)) });
  const options = shape.options;
  if (options !== undefined && (options.modelConfig !== undefined || options.model !== undefined)) {
    const config = { model: options.model, modelConfig: options.modelConfig };
    components.push({ name: "model_config", hash: hashText("model_config", stableJson(config)) });
  }
  nested.forEach((entry, i) => {
    components.push({ name: `program:${entry.id}`, hash: (childPrints[i] as ProgramFingerprint).signature });
  });
  const signature = hashText("ax-program", components.map((c) => `${c.name}=${c.hash}`).join("\n"));
  const fingerprint: ProgramFingerprint = Object.freeze({ signature, components: Object.freeze(components) });
  cache.set(program, { parts, children: childPrints, fingerprint });
  return fingerprint;
}
