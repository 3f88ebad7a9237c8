import { v, validateOptions } from "../options/schema";
import {
  type DeclaredField,
  declaredField,
  declaredFieldArities,
  type Member,
  type MemberLevel,
  type MemberSide,
  memberLevels,
  memberReferences,
  parseFunction,
  preloadMembers,
} from "./class-members";
import { canonicalizeFunction, functionSource, unwrapFunction } from "./function-source";
import { shortHash, shortHashOf } from "./hash";
import { canonicalizeNode } from "./normalize-ast";
import {
  type CodeSignatureContext,
  type CodeSignatureStrategy,
  type CodeSignatureStrategyName,
  codeSignatureStrategySchema,
  strategyName,
} from "./options";

/** Which code to fingerprint and how. */
export interface CodeSignatureOptions {
  /** Default `"ast"`. */
  strategy?: CodeSignatureStrategy;
  /**
   * The method of `target` to fingerprint. For a class: a function-valued instance field declared by the class
   * or an ancestor first (an instance's own property shadows its prototype's methods), then the prototype
   * chain, then a static member.
   * Omit for a plain function or to fingerprint a whole class.
   */
  method?: string | symbol | null;
  /** Passed to custom strategies. */
  moduleName?: string | null;
}

/** `CodeSignatureOptions` as `computeCodeSignature()` checks them. */
export const codeSignatureOptionsSchema = v.object<CodeSignatureOptions>({
  strategy: codeSignatureStrategySchema.optional(),
  method: v
    .union(
      v.string(),
      v.custom<symbol>("a symbol", (value) => typeof value === "symbol"),
    )
    .nullable()
    .optional(),
  moduleName: v.string().nullable().optional(),
});

/** A method that went into a signature, with its own hash (null when its source is unavailable). */
export interface MethodHash {
  readonly name: string;
  readonly hash: string | null;
}

/** Why a signature is null. */
export type SignatureUnavailableReason =
  /** Native, bound or proxied function: the engine has no source text. */
  | "native"
  /** The source text did not parse (e.g. syntax newer than the parser knows). */
  | "unparseable"
  /** The method does not exist on the target. */
  | "not-found"
  /** A custom strategy threw or returned something other than a non-empty string. */
  | "custom-strategy";

/** The full result behind a `code_signature`: what the `version` event records. */
export interface CodeSignatureDetails {
  /** 12 hex characters (or a custom strategy's label), or null when unavailable. */
  readonly signature: string | null;
  readonly strategy: CodeSignatureStrategyName | "custom";
  /** Every method hashed into the signature, the instrumented one first. */
  readonly methods: readonly MethodHash[];
  /** Set when `signature` is null. */
  readonly unavailable: SignatureUnavailableReason | null;
}

const MAX_CUSTOM_SIGNATURE_LENGTH = 128;

interface ResolvedTarget {
  /** The function to fingerprint, unwrapped; null for a class field seen only in its class body. */
  readonly fn: Function | null;
  /**
   * The class-body declaration when the method is a function-valued instance field: a class has no property
   * holding it (each instance gets its own copy), so it is read from the class source.
   */
  readonly field: DeclaredField | null;
  readonly name: string;
  /** Where `this` dispatch starts for `ast-deps`, or null for a plain function. */
  readonly holder: object | null;
  readonly side: MemberSide;
  readonly key: string | null;
}

/**
 * The `code_signature` of a function, class or method: a 12-hex-character hash, or null when the source is
 * unavailable (native and bound functions). Never throws for any target; options that are not valid are a
 * `ConfigurationError`.
 *
 * This recomputes on every call; the runtime caches per (target, method) in a `VersionTracker`.
 */
export function computeCodeSignature(target: object, options: CodeSignatureOptions = {}): string | null {
  return computeCodeSignatureDetails(target, options).signature;
}

/** Like `computeCodeSignature`, with the strategy and the per-method hashes. */
export function computeCodeSignatureDetails(
  target: object,
  options: CodeSignatureOptions = {},
): CodeSignatureDetails {
  validateOptions("computeCodeSignature()", codeSignatureOptionsSchema, options);
  const strategy = options.strategy ?? "ast";
  const name = strategyName(strategy);
  try {
    const resolved = resolveTarget(target, options.method ?? null);
    if (!resolved) return unavailable(name, "not-found");
    if (typeof strategy === "function")
      return customSignature(strategy, target, resolved, options.moduleName ?? null);
    switch (strategy) {
      case "source":
        return sourceSignature(resolved);
      case "signature":
        return apiSignature(target, resolved);
      case "ast-deps":
        return astSignature(resolved, true);
      default:
        return astSignature(resolved, false);
    }
  } catch {
    // A hostile target (throwing getters, revoked proxies) must not break the instrumented call.
    return unavailable(name, "not-found");
  }
}

/**
 * @internal The function, unwrapped, whose code `computeCodeSignatureDetails(target, { method })` signs, or
 * null when there is none (a field read from its class body, a missing method) or the target is hostile.
 */
export function signedFunction(target: object, method: string | symbol | null): Function | null {
  try {
    return resolveTarget(target, method)?.fn ?? null;
  } catch {
    return null;
  }
}

function unavailable(
  strategy: CodeSignatureStrategyName | "custom",
  reason: SignatureUnavailableReason,
  methods: readonly MethodHash[] = [],
): CodeSignatureDetails {
  return { signature: null, strategy, methods, unavailable: reason };
}

function resolveTarget(target: object, method: string | symbol | null): ResolvedTarget | null {
  if (method === null) {
    if (typeof target !== "function") return null;
    return {
      fn: unwrapFunction(target),
      field: null,
      name: target.name || "anonymous",
      holder: null,
      side: "instance",
      key: null,
    };
  }
  const name = typeof method === "symbol" ? `[${method.description ?? ""}]` : method;
  const key = typeof method === "symbol" ? null : method;
  if (typeof target === "function") {
    const prototype = (target as { prototype?: unknown }).prototype;
    if (typeof prototype === "object" && prototype !== null) {
      // `run = (x) => x + 1` exists only on instances; the class body says what every instance gets. An
      // instance's own property shadows every prototype method, so a field declared by the class or any
      // ancestor (the most derived declaration wins) is what a call runs, even when a prototype has a method
      // of the same name.
      const field = key !== null ? declaredField(target, key) : null;
      if (field) return { fn: null, field, name, holder: prototype, side: "instance", key };
      const fn = findFunction(prototype, method);
      if (fn) return { fn, field: null, name, holder: prototype, side: "instance", key };
    }
    const staticFn = findFunction(target, method);
    return staticFn ? { fn: staticFn, field: null, name, holder: target, side: "static", key } : null;
  }
  const fn = findFunction(target, method);
  return fn ? { fn, field: null, name, holder: dispatchStart(target), side: "instance", key } : null;
}

/**
 * An instance dispatches exactly like its prototype when its own functions are only what its class gives
 * every instance (function-valued fields as declared, or `instrument()` wrappers of the prototype's own
 * methods); starting there gives an instance the same signature as its class. Any other own function or
 * accessor (a method replaced on this one instance, one assigned in a constructor) makes it start at the
 * instance, so what is hashed is what runs.
 */
function dispatchStart(instance: object): object {
  const prototype = Object.getPrototypeOf(instance) as object | null;
  if (prototype === null || prototype === Object.prototype) return instance;
  const ctor = ownConstructorOf(prototype);
  for (const key of Reflect.ownKeys(instance)) {
    const descriptor = Object.getOwnPropertyDescriptor(instance, key);
    if (descriptor?.get || descriptor?.set) return instance;
    if (typeof descriptor?.value !== "function") continue;
    const fn = unwrapFunction(descriptor.value as Function);
    if (findFunction(prototype, key) === fn) continue;
    const field = typeof key === "string" && ctor !== null ? declaredField(ctor, key) : null;
    if (field === null || functionSource(fn) !== field.source) return instance;
  }
  return prototype;
}

/** The class whose `prototype` is `holder`, or null (a plain object, an object made by `Object.create`). */
function ownConstructorOf(holder: object): Function | null {
  const ctor: unknown = Object.getOwnPropertyDescriptor(holder, "constructor")?.value;
  return typeof ctor === "function" && (ctor as { prototype?: unknown }).prototype === holder ? ctor : null;
}

/** The source to fingerprint, or null when the engine has none (native, bound). */
function targetSource(resolved: ResolvedTarget): string | null {
  return resolved.fn !== null ? functionSource(resolved.fn) : (resolved.field?.source ?? null);
}

function findFunction(holder: object, key: string | symbol): Function | null {
  let current: object | null = holder;
  for (let depth = 0; current !== null && depth < 64; depth++) {
    const descriptor = Object.getOwnPropertyDescriptor(current, key);
    if (descriptor) {
      const fn: unknown = descriptor.value ?? descriptor.get ?? descriptor.set;
      return typeof fn === "function" ? unwrapFunction(fn) : null;
    }
    current = Object.getPrototypeOf(current) as object | null;
  }
  return null;
}

function sourceSignature(resolved: ResolvedTarget): CodeSignatureDetails {
  const source = targetSource(resolved);
  if (source === null) return unavailable("source", "native");
  const hash = shortHashOf("source", source);
  return { signature: hash, strategy: "source", methods: [{ name: resolved.name, hash }], unavailable: null };
}

/**
 * The instrumented method as the hierarchy resolves it, so its level (where `super.x` starts) is known; a
 * method not reachable by name (a symbol key) is parsed on its own.
 */
function rootMember(resolved: ResolvedTarget, levels: readonly MemberLevel[] | null): Member | null {
  if (levels && resolved.key !== null) {
    const found = lookup(levels, 0, resolved.key, true);
    // A field declared further up still shadows a prototype method found first: the resolved field wins.
    if (found.length > 0 && (resolved.field === null || found[0]!.kind === "field"))
      return found[0]!.kind === "field" ? fieldRoot(resolved.name, found[0]!) : found[0]!;
  }
  if (resolved.field !== null) {
    const { fn, text, level } = resolved.field;
    return fieldRoot(resolved.name, { name: resolved.name, kind: "field", level, canonical: null, fn, text });
  }
  if (resolved.fn === null) return null;
  const parsed = parseFunction(resolved.fn);
  return {
    name: resolved.name,
    kind: "method",
    level: 0,
    canonical: parsed ? canonicalizeFunction(parsed) : null,
    fn: parsed ? parsed.fn : null,
    text: parsed ? parsed.text : null,
  };
}

/**
 * The instrumented method when it is a function-valued field: hashed as its value alone, exactly as the same
 * function read from an instance (`toString` prints only the arrow or function expression) is hashed, so a
 * class and its instances get one signature. As a dependency a field keeps its `field:` form.
 */
function fieldRoot(name: string, member: Member): Member {
  const { fn, text, level } = member;
  return { name, kind: "method", level, canonical: fn === null ? null : canonicalizeNode(fn), fn, text };
}

/**
 * Members `name` resolves to, searching levels `fromLevel` up to (not including) `toLevel` the way property
 * lookup does. A call resolves to whatever is found (method, field or getter); a plain read only counts when
 * it hits an accessor, since reading a method without calling it runs none of its code.
 */
function lookup(
  levels: readonly MemberLevel[],
  fromLevel: number,
  name: string,
  isCall: boolean,
  toLevel: number = levels.length,
): readonly Member[] {
  for (let index = fromLevel; index < Math.min(toLevel, levels.length); index++) {
    const members = levels[index]!.get(name);
    if (!members) continue;
    if (isCall) {
      const callable = members.filter((member) => member.kind !== "set");
      return callable.length > 0 ? callable : members;
    }
    return members.filter((member) => member.kind === "get" || member.kind === "set");
  }
  return [];
}

function memberHash(member: Member): string | null {
  return member.canonical === null ? null : shortHashOf("ast", member.canonical);
}

function astSignature(resolved: ResolvedTarget, followDependencies: boolean): CodeSignatureDetails {
  const strategy = followDependencies ? "ast-deps" : "ast";
  // `ast` needs only the method's own source; `ast-deps` resolves the `this.x` references it finds level by
  // level, parsing only the members reached (and a class body only for `#private` members and fields).
  const levels = followDependencies && resolved.holder ? memberLevels(resolved.holder, resolved.side) : null;
  const root = rootMember(resolved, levels);
  if (!root || root.canonical === null) {
    const source = targetSource(resolved);
    return unavailable(strategy, source === null ? "native" : "unparseable");
  }
  const rootHash = memberHash(root)!;
  if (!followDependencies || !levels) {
    return {
      signature: followDependencies ? shortHash(`ast-deps\0${rootHash}`) : rootHash,
      strategy,
      methods: [{ name: resolved.name, hash: rootHash }],
      unavailable: null,
    };
  }
  // A field root is a copy of the member its level holds: a reference back to that member is the root, not a
  // dependency.
  const roots = new Set<Member>([root]);
  if (resolved.key !== null)
    for (const member of lookup(levels, 0, resolved.key, true))
      if (resolved.field === null || member.kind === "field") roots.add(member);
  const visited = new Set<Member>(roots);
  const queue: Member[] = [root];
  while (queue.length > 0) {
    const member = queue.shift()!;
    if (!member.fn) continue;
    const reached = queue.length;
    for (const reference of memberReferences(member.fn, member.text)) {
      // `#x` is bound to the class whose body holds the reference, not found by dispatch from the instance.
      const isPrivate = reference.name.startsWith("#");
      const from = reference.viaSuper ? member.level + 1 : isPrivate ? member.level : 0;
      const to = isPrivate ? member.level + 1 : levels.length;
      for (const target of lookup(levels, from, reference.name, reference.isCall, to)) {
        if (visited.has(target)) continue;
        visited.add(target);
        queue.push(target);
      }
    }
    preloadMembers(queue.slice(reached));
  }
  const dependencies = [...visited]
    .filter((member) => !roots.has(member))
    .map((member) => ({ member, hash: memberHash(member) }))
    .sort((a, b) => compareMembers(a.member, b.member));
  // Levels are left out so that inserting a base class that contributes nothing keeps the signature.
  const lines = dependencies
    .map(({ member, hash }) => `${member.kind}:${member.name}:${hash ?? "unavailable"}`)
    .sort();
  return {
    signature: shortHash(`ast-deps\0${rootHash}\0${lines.join("\n")}`),
    strategy,
    methods: [
      { name: resolved.name, hash: rootHash },
      ...dependencies.map(({ member, hash }) => ({ name: memberLabel(member), hash })),
    ],
    unavailable: null,
  };
}

function compareMembers(a: Member, b: Member): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.level !== b.level) return a.level - b.level;
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0;
}

function memberLabel(member: Member): string {
  const prefix = member.kind === "get" || member.kind === "set" ? `${member.kind} ` : "";
  const inherited = member.level > 0 ? ` (inherited, level ${member.level})` : "";
  return `${prefix}${member.name}${inherited}`;
}

/**
 * Names and arities of the public API: for a class, every method and accessor on its prototype chain plus its
 * static methods; for a plain function, its name and arity.
 */
function apiSignature(target: object, resolved: ResolvedTarget): CodeSignatureDetails {
  if (targetSource(resolved) === null) return unavailable("signature", "native");
  const entries: string[] = [];
  if (resolved.holder === null && resolved.fn !== null && !isClassLike(target)) {
    entries.push(`function ${resolved.name}/${resolved.fn.length}`);
  } else {
    const seen = new Set<string | symbol>();
    // Function-valued fields are own properties of each instance, listed the way an instance lists them
    // (they shadow prototype methods of the same name), so a class and its instances agree.
    if (typeof target === "function") {
      for (const { name, arity } of declaredFieldArities(target)) {
        seen.add(name);
        entries.push(`method ${name}/${arity}`);
      }
    }
    const instanceStart =
      typeof target === "function"
        ? ((target as { prototype?: unknown }).prototype as object | undefined)
        : target;
    if (instanceStart) collectApi(instanceStart, "", seen, entries);
    if (typeof target === "function")
      collectApi(target, "static ", new Set(["length", "name", "prototype"]), entries);
  }
  entries.sort();
  const methods = entries.map((entry) => ({ name: entry, hash: shortHash(`signature\0${entry}`) }));
  return {
    signature: shortHash(`signature\0${entries.join("\n")}`),
    strategy: "signature",
    methods,
    unavailable: null,
  };
}

function isClassLike(target: object): boolean {
  if (typeof target !== "function") return true;
  const source = functionSource(target);
  if (source !== null && /^class\b/.test(source)) return true;
  const prototype = (target as { prototype?: unknown }).prototype;
  return typeof prototype === "object" && prototype !== null && Reflect.ownKeys(prototype).length > 1;
}

function collectApi(start: object, prefix: string, seen: Set<string | symbol>, entries: string[]): void {
  let current: object | null = start;
  for (
    let depth = 0;
    current !== null && current !== Object.prototype && current !== Function.prototype;
    depth++
  ) {
    if (depth > 64) break;
    for (const key of Reflect.ownKeys(current)) {
      if (key === "constructor" || seen.has(key)) continue;
      seen.add(key);
      const descriptor = Object.getOwnPropertyDescriptor(current, key);
      if (!descriptor) continue;
      const label = typeof key === "symbol" ? `[${key.description ?? ""}]` : key;
      if (typeof descriptor.value === "function") {
        entries.push(`${prefix}method ${label}/${unwrapFunction(descriptor.value).length}`);
      }
      if (typeof descriptor.get === "function") entries.push(`${prefix}get ${label}`);
      if (typeof descriptor.set === "function") entries.push(`${prefix}set ${label}`);
    }
    current = Object.getPrototypeOf(current) as object | null;
  }
}

function customSignature(
  strategy: (fn: Function, context: CodeSignatureContext) => string | null,
  target: object,
  resolved: ResolvedTarget,
  moduleName: string | null,
): CodeSignatureDetails {
  const context: CodeSignatureContext = {
    target,
    methodName: resolved.key ?? (resolved.holder ? resolved.name : null),
    moduleName,
    source: targetSource(resolved),
  };
  // A field seen only in its class body has no function object to hand over; the runtime then signs the
  // instance's own copy on the first call.
  if (resolved.fn === null) return unavailable("custom", "not-found");
  let result: unknown;
  try {
    result = strategy(resolved.fn, context);
  } catch {
    return unavailable("custom", "custom-strategy");
  }
  if (typeof result !== "string" || result.length === 0) return unavailable("custom", "custom-strategy");
  const signature = result.length <= MAX_CUSTOM_SIGNATURE_LENGTH ? result : shortHash(`custom\0${result}`);
  return {
    signature,
    strategy: "custom",
    methods: [{ name: resolved.name, hash: signature }],
    unavailable: null,
  };
}
