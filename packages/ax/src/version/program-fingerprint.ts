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
  // AxProgram's signature object and its hash (`protected`): read here because getSignature() returns a fresh
  // copy on every call. setSignature replaces the object; setDescription changes it in place.
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

/** What a program's own parts are now; compared to reuse a cached fingerprint. */
interface Parts {
  /** The signature's text (its description and fields): compared by value. */
  readonly signature: string;
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

/**
 * The text of AxProgram's own signature object, or undefined for programs without one (flows, agents).
 * AxSignature keeps this text in a field it rewrites on every change, so reading it costs no copy. Its text is
 * compared rather than the object or its hash: Ax's setDescription changes the object in place, and the hash
 * it then computes leaves the description out, though the description is sent to the model.
 */
function ownSignatureText(program: ProgramShape): string | undefined {
  const own = program.signature;
  return own === undefined || own === null ? undefined : String(own.toString());
}

/** The signature text: from AxProgram's own field when it has one (no copy), else through getSignature(). */
function signatureText(program: ProgramShape): string {
  const own = ownSignatureText(program);
  if (own !== undefined) return own;
  const signature = program.getSignature?.();
  return signature === undefined || signature === null ? "" : String(signature.toString());
}

/**
 * True while an AxProgram's own signature object and hash are `object` and `hash`. Not proof that its text
 * is unchanged: Ax's setDescription rewrites the description in place and may keep the hash (the fingerprint
 * compares the text itself for that reason). False for programs without their own signature object.
 */
export function isSameSignature(program: object, object: unknown, hash: unknown): boolean {
  const own = (program as ProgramShape).signature;
  return own !== undefined && own !== null && own === object && (program as ProgramShape).sigHash === hash;
}

function readParts(program: ProgramShape): Parts {
  return {
    signature: signatureText(program),
    instruction: program.getInstruction?.(),
    demos: program.demos,
    examples: program.examples,
    options: program.options,
  };
}

/**
 * True while `program`'s parts are still those read into `parts`: the values that go into the fingerprint,
 * compared as strings (the signature text and instruction Ax stores) or by identity (demos, examples and
 * options, which Ax replaces as a whole). Only for programs with their own signature object.
 */
function isUnchanged(program: ProgramShape, parts: Parts): boolean {
  return (
    ownSignatureText(program) === parts.signature &&
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
 * one of those parts changes, so a call costs a few string and identity comparisons; an optimizer that sets new demos
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
  const parts = readParts(shape);
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
