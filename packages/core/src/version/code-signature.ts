import { v, validateOptions } from "../options/schema";
import {
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
   * The method of `target` to fingerprint (looked up on the prototype chain first, then as a static member).
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
  /** The function to fingerprint, unwrapped. */
  readonly fn: Function;
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
      const fn = findFunction(prototype, method);
      if (fn) return { fn, name, holder: prototype, side: "instance", key };
    }
    const staticFn = findFunction(target, method);
    return staticFn ? { fn: staticFn, name, holder: target, side: "static", key } : null;
  }
  const fn = findFunction(target, method);
  return fn ? { fn, name, holder: dispatchStart(target), side: "instance", key } : null;
}

/**
 * An instance without own methods dispatches exactly like its prototype; starting there gives an instance
 * the same signature as its class.
 */
function dispatchStart(instance: object): object {
  const prototype = Object.getPrototypeOf(instance) as object | null;
  if (prototype === null || prototype === Object.prototype) return instance;
  for (const key of Reflect.ownKeys(instance)) {
    const descriptor = Object.getOwnPropertyDescriptor(instance, key);
    if (typeof descriptor?.value === "function" || descriptor?.get || descriptor?.set) return instance;
  }
  return prototype;
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
  const source = functionSource(resolved.fn);
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
    if (found.length > 0) return found[0]!;
  }
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
    const source = functionSource(resolved.fn);
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
  const visited = new Set<Member>([root]);
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
    .filter((member) => member !== root)
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
  if (functionSource(resolved.fn) === null) return unavailable("signature", "native");
  const entries: string[] = [];
  if (resolved.holder === null && !isClassLike(target)) {
    entries.push(`function ${resolved.name}/${resolved.fn.length}`);
  } else {
    const seen = new Set<string | symbol>();
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
    source: functionSource(resolved.fn),
  };
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
