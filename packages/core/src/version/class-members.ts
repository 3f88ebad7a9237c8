import type { Node } from "acorn";
import {
  canonicalizeFunction,
  functionSource,
  memberOf,
  type ParsedFunction,
  parseFunctionSource,
  unwrapFunction,
} from "./function-source";
import { canonicalizeNode, isNode } from "./normalize-ast";

type NodeRecord = Node & Record<string, unknown>;

export type MemberKind = "method" | "get" | "set" | "field";

/** One method, accessor or function-valued field found on one level of a class hierarchy. */
export interface Member {
  /** `forward`, `#helper` for private names. */
  readonly name: string;
  readonly kind: MemberKind;
  /** 0 for the most derived class (or object), 1 for its parent, and so on. */
  readonly level: number;
  /** Layout-free text of the member, or null when its source is unavailable (native, bound, unparseable). */
  readonly canonical: string | null;
  /** The function node to scan for `this.x` references, or null with `canonical`. */
  readonly fn: Node | null;
}

/** Members by name for one level. A getter and a setter share a name, hence the array. */
export type MemberLevel = ReadonlyMap<string, readonly Member[]>;

export type MemberSide = "instance" | "static";

interface ParsedClass {
  readonly source: string;
  readonly instance: Map<string, ParsedMember[]>;
  readonly static: Map<string, ParsedMember[]>;
}

interface ParsedMember {
  readonly name: string;
  readonly kind: MemberKind;
  /** Computed on first read: most members of a class are never reached from the instrumented method. */
  readonly canonical: string;
  readonly fn: Node;
}

/** Parsed class bodies, by constructor. Weak so that classes created at run time can be collected. */
const classCache = new WeakMap<Function, ParsedClass | null>();

const STATIC_SKIP = new Set(["length", "name", "prototype", "caller", "arguments"]);

/**
 * The levels of a hierarchy as `this` sees them. `instance`: `start` (an instance or a prototype), then each
 * prototype up to `Object.prototype`. `static`: a constructor, then its parent constructors.
 *
 * A level backed by `class` syntax is read from the class source, which includes `#private` members and is
 * unaffected by wrappers patched onto the prototype; other levels (ES5 constructors, object literals) are read
 * from property descriptors.
 */
export function memberLevels(start: object, side: MemberSide): MemberLevel[] {
  const levels: MemberLevel[] = [];
  let current: object | null = start;
  while (current !== null && current !== Object.prototype && current !== Function.prototype) {
    levels.push(levelOf(current, side, levels.length));
    current = Object.getPrototypeOf(current) as object | null;
    if (levels.length > 64) break;
  }
  return levels;
}

function levelOf(holder: object, side: MemberSide, level: number): MemberLevel {
  const members = new Map<string, Member[]>();
  const classCtor = side === "static" ? holder : ownConstructorOf(holder);
  const parsed = typeof classCtor === "function" ? parsedClassOf(classCtor) : null;
  if (parsed) {
    for (const [name, list] of side === "static" ? parsed.static : parsed.instance) {
      // A method replaced after the class was defined runs the replacement, so that is what gets hashed.
      if (!name.startsWith("#") && isReplaced(holder, name, parsed.source)) continue;
      members.set(
        name,
        list.map((member) => withLevel(member, level)),
      );
    }
  }
  // Members added outside the class body (or a whole ES5-style prototype) only exist as properties.
  for (const key of Object.getOwnPropertyNames(holder)) {
    if (members.has(key)) continue;
    if (side === "instance" && key === "constructor") continue;
    if (side === "static" && STATIC_SKIP.has(key)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(holder, key);
    if (!descriptor) continue;
    const list: Member[] = [];
    if (typeof descriptor.value === "function")
      list.push(memberFromFunction(key, "method", descriptor.value, level));
    if (typeof descriptor.get === "function")
      list.push(memberFromFunction(key, "get", descriptor.get, level));
    if (typeof descriptor.set === "function")
      list.push(memberFromFunction(key, "set", descriptor.set, level));
    if (list.length > 0) members.set(key, list);
  }
  return members;
}

function withLevel(member: ParsedMember, level: number): Member {
  return {
    name: member.name,
    kind: member.kind,
    level,
    fn: member.fn,
    get canonical(): string {
      return member.canonical;
    },
  };
}

/**
 * True when the own property `name` holds a function whose source is not part of the class body: the method
 * was reassigned after the class was defined. Wrappers that link to their original through
 * `ORIGINAL_FUNCTION` (as `instrument()` does) are unwrapped first and so do not count as replacements.
 */
function isReplaced(holder: object, name: string, classSource: string): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(holder, name);
  if (!descriptor) return false;
  for (const fn of [descriptor.value, descriptor.get, descriptor.set]) {
    if (typeof fn !== "function") continue;
    const source = functionSource(unwrapFunction(fn));
    if (source === null || !classSource.includes(source)) return true;
  }
  return false;
}

function ownConstructorOf(holder: object): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(holder, "constructor");
  const ctor: unknown = descriptor?.value;
  return typeof ctor === "function" && (ctor as { prototype?: unknown }).prototype === holder ? ctor : null;
}

/** Parsed on first use: a large ES5-style prototype costs nothing until a call reaches one of its methods. */
function memberFromFunction(name: string, kind: MemberKind, fn: Function, level: number): Member {
  let parsed: ParsedFunction | null | undefined;
  let canonical: string | null | undefined;
  const load = (): ParsedFunction | null => {
    if (parsed === undefined) parsed = parseFunction(fn);
    return parsed;
  };
  return {
    name,
    kind,
    level,
    get canonical(): string | null {
      if (canonical === undefined) {
        const result = load();
        canonical = result ? canonicalizeFunction(result) : null;
      }
      return canonical;
    },
    get fn(): Node | null {
      return load()?.fn ?? null;
    },
  };
}

/** Parses a function (after unwrapping instrumentation wrappers); null when its source is unavailable. */
export function parseFunction(fn: Function): ParsedFunction | null {
  const source = functionSource(unwrapFunction(fn));
  return source === null ? null : parseFunctionSource(source);
}

/** The members declared in a `class` body, or null when `ctor` is not class syntax. Cached per constructor. */
export function parsedClassOf(ctor: Function): ParsedClass | null {
  const cached = classCache.get(ctor);
  if (cached !== undefined) return cached;
  const result = parseClass(ctor);
  classCache.set(ctor, result);
  return result;
}

function parseClass(ctor: Function): ParsedClass | null {
  const source = functionSource(ctor);
  if (source === null || !/^class\b/.test(source)) return null;
  const parsed = parseFunctionSource(source);
  if (parsed?.form !== "expression" || parsed.node.type !== "ClassExpression") return null;
  const result: ParsedClass = { source, instance: new Map(), static: new Map() };
  const body = ((parsed.node as NodeRecord).body as NodeRecord).body as NodeRecord[];
  for (const element of body) {
    const member = parsedMemberOf(element);
    if (!member) continue;
    const side = element.static === true ? result.static : result.instance;
    const list = side.get(member.name);
    if (list) list.push(member);
    else side.set(member.name, [member]);
  }
  return result;
}

function parsedMemberOf(element: NodeRecord): ParsedMember | null {
  if (element.type === "MethodDefinition") {
    if (element.kind === "constructor") return null;
    const name = keyName(element);
    const parsed = memberOf(element);
    if (name === null || !parsed || parsed.form !== "member") return null;
    return lazyMember(name, parsed.kind, parsed.fn, () => canonicalizeFunction(parsed));
  }
  if (element.type === "PropertyDefinition") {
    const value = element.value;
    if (!isNode(value) || (value.type !== "ArrowFunctionExpression" && value.type !== "FunctionExpression")) {
      return null;
    }
    const name = keyName(element);
    if (name === null) return null;
    const key = element.key as Node;
    return lazyMember(
      name,
      "field",
      value,
      () => `field:${canonicalizeNode(key)}:${canonicalizeNode(value)}`,
    );
  }
  return null;
}

function lazyMember(name: string, kind: MemberKind, fn: Node, canonicalize: () => string): ParsedMember {
  let canonical: string | undefined;
  return {
    name,
    kind,
    fn,
    get canonical(): string {
      if (canonical === undefined) canonical = canonicalize();
      return canonical;
    },
  };
}

/** The static name of a member key; null for computed keys that are not string literals. */
export function keyName(node: Readonly<Record<string, unknown>>): string | null {
  const key = node.key;
  if (!isNode(key)) return null;
  if (key.type === "PrivateIdentifier") return `#${String(key.name)}`;
  if (node.computed !== true && key.type === "Identifier") return String(key.name);
  if (key.type === "Literal" && (typeof key.value === "string" || typeof key.value === "number")) {
    return String(key.value);
  }
  return null;
}

/** A `this.x` or `super.x` reference found in a function body. */
export interface MemberReference {
  readonly name: string;
  readonly viaSuper: boolean;
  readonly isCall: boolean;
}

/**
 * The `this.x` / `this.#x` / `this["x"]` / `super.x` references in a function. Nested `function`s and classes
 * have their own `this` and are skipped, except a function handed `this` explicitly, which is how transpilers
 * down-level async methods: `__awaiter(this, void 0, void 0, function* () {…})` (TypeScript) and
 * `_asyncToGenerator(function* () {…}).apply(this, arguments)` (Babel). Arrow functions share `this` and are
 * scanned.
 */
export function memberReferences(fn: Node): MemberReference[] {
  const found: MemberReference[] = [];
  const root = fn as NodeRecord;
  for (const key of ["params", "body", "value"]) {
    scan(root[key], null, found, false);
  }
  return found;
}

function scan(value: unknown, parent: NodeRecord | null, found: MemberReference[], bindsThis: boolean): void {
  if (Array.isArray(value)) {
    for (const item of value) scan(item, parent, found, bindsThis);
    return;
  }
  if (!isNode(value)) return;
  const node = value as NodeRecord;
  switch (node.type) {
    case "FunctionExpression":
      if (bindsThis) {
        scan(node.params, node, found, false);
        scan(node.body, node, found, false);
      }
      return;
    case "FunctionDeclaration":
    case "ClassExpression":
    case "ClassDeclaration":
      return;
    case "CallExpression": {
      const args = node.arguments as NodeRecord[];
      const callee = node.callee as NodeRecord;
      const passesThis = args.some((arg) => arg.type === "ThisExpression");
      const callOrApply =
        callee.type === "MemberExpression" &&
        callee.computed !== true &&
        ((callee.property as NodeRecord).name === "call" ||
          (callee.property as NodeRecord).name === "apply") &&
        args[0]?.type === "ThisExpression";
      if (callOrApply) {
        scan(callee.object, callee, found, true);
        scan(callee.property, callee, found, false);
      } else {
        scan(callee, node, found, false);
      }
      scan(args, node, found, passesThis || bindsThis);
      return;
    }
    case "MemberExpression": {
      const object = node.object as NodeRecord;
      if (object.type === "ThisExpression" || object.type === "Super") {
        const name = keyName({ key: node.property, computed: node.computed });
        if (name !== null) {
          const isCall = parent?.type === "CallExpression" && parent.callee === node;
          found.push({ name, viaSuper: object.type === "Super", isCall });
        }
      }
      break;
    }
    default:
      break;
  }
  for (const key of Object.keys(node)) {
    if (key === "type" || key === "start" || key === "end") continue;
    scan(node[key], node, found, false);
  }
}
