import type { Node } from "acorn";
import {
  canonicalizeFunction,
  functionSource,
  memberOf,
  type ParsedFunction,
  parseFunctionSource,
  parseMethodSources,
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
  /** The text `fn` was parsed from (its offsets index into it), or null with `fn`. */
  readonly text: string | null;
}

/**
 * One level of a hierarchy: the members a name resolves to there (a getter and a setter share a name, hence
 * the array), or undefined when the level has none. Resolved on demand and remembered.
 */
export interface MemberLevel {
  get(name: string): readonly Member[] | undefined;
}

export type MemberSide = "instance" | "static";

interface ParsedClass {
  readonly instance: Map<string, ParsedMember[]>;
  readonly static: Map<string, ParsedMember[]>;
}

interface ParsedMember {
  readonly name: string;
  readonly kind: MemberKind;
  /** Computed on first read: most members of a class are never reached from the instrumented method. */
  readonly canonical: string;
  readonly fn: Node;
  readonly text: string;
}

/** Parsed class bodies, by constructor. Weak so that classes created at run time can be collected. */
const classCache = new WeakMap<Function, ParsedClass | null>();

const STATIC_SKIP = new Set(["length", "name", "prototype", "caller", "arguments"]);

/**
 * The levels of a hierarchy as `this` sees them. `instance`: `start` (an instance or a prototype), then each
 * prototype up to `Object.prototype`. `static`: a constructor, then its parent constructors.
 *
 * A name is resolved the way the engine dispatches it: from the level's own properties, so what is hashed is
 * what runs (a method reassigned after the class was defined is hashed from the replacement; wrappers that
 * link to their original through `ORIGINAL_FUNCTION`, as `instrument()` installs, are unwrapped). Only
 * `#private` members and class fields, which are not properties of the prototype, are read from the `class`
 * source, and only when a reference needs one, so the common case parses just the methods that are reached
 * instead of the whole class.
 */
export function memberLevels(start: object, side: MemberSide): MemberLevel[] {
  const levels: MemberLevel[] = [];
  let current: object | null = start;
  while (current !== null && current !== Object.prototype && current !== Function.prototype) {
    levels.push(new LazyLevel(current, side, levels.length));
    current = Object.getPrototypeOf(current) as object | null;
    if (levels.length > 64) break;
  }
  return levels;
}

class LazyLevel implements MemberLevel {
  private readonly resolved = new Map<string, readonly Member[] | undefined>();

  constructor(
    private readonly holder: object,
    private readonly side: MemberSide,
    private readonly level: number,
  ) {}

  get(name: string): readonly Member[] | undefined {
    if (this.resolved.has(name)) return this.resolved.get(name);
    const members = this.resolve(name);
    this.resolved.set(name, members);
    return members;
  }

  private resolve(name: string): readonly Member[] | undefined {
    if (!name.startsWith("#") && !this.skipped(name)) {
      const descriptor = Object.getOwnPropertyDescriptor(this.holder, name);
      if (descriptor) {
        const list: Member[] = [];
        if (typeof descriptor.value === "function")
          list.push(memberFromFunction(name, "method", descriptor.value, this.level));
        if (typeof descriptor.get === "function")
          list.push(memberFromFunction(name, "get", descriptor.get, this.level));
        if (typeof descriptor.set === "function")
          list.push(memberFromFunction(name, "set", descriptor.set, this.level));
        if (list.length > 0) return list;
      }
    }
    // `#private` members and fields exist only in the class body. A declared method that is no longer an own
    // property was deleted and does not run, so only fields and private members are taken from the source.
    const classCtor = this.side === "static" ? this.holder : ownConstructorOf(this.holder);
    if (typeof classCtor !== "function") return undefined;
    if (!name.startsWith("#") && !mayDeclare(classCtor, name)) return undefined;
    const parsed = parsedClassOf(classCtor);
    const declared = (this.side === "static" ? parsed?.static : parsed?.instance)?.get(name);
    const usable = name.startsWith("#") ? declared : declared?.filter((member) => member.kind === "field");
    if (!usable || usable.length === 0) return undefined;
    return usable.map((member) => withLevel(member, this.level));
  }

  private skipped(name: string): boolean {
    return this.side === "static" ? STATIC_SKIP.has(name) : name === "constructor";
  }
}

/** Cheap pre-check before parsing a class for a field: a field named `name` has the name in its source. */
function mayDeclare(ctor: Function, name: string): boolean {
  const source = functionSource(ctor);
  return source !== null && /^class\b/.test(source) && source.includes(name);
}

function withLevel(member: ParsedMember, level: number): Member {
  return {
    name: member.name,
    kind: member.kind,
    level,
    fn: member.fn,
    text: member.text,
    get canonical(): string {
      return member.canonical;
    },
  };
}

function ownConstructorOf(holder: object): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(holder, "constructor");
  const ctor: unknown = descriptor?.value;
  return typeof ctor === "function" && (ctor as { prototype?: unknown }).prototype === holder ? ctor : null;
}

/** Members read from functions whose source is not parsed yet, so `preloadMembers` can parse them together. */
const unparsed = new WeakMap<Member, { readonly fn: Function; provide(parsed: ParsedFunction): void }>();

/**
 * Parses the not-yet-parsed members among `members` in one parser run (falling back to one parse each, on
 * first use, when their sources cannot be parsed together). Only a speed-up: the result is the same.
 */
export function preloadMembers(members: readonly Member[]): void {
  const entries: { readonly fn: Function; provide(parsed: ParsedFunction): void }[] = [];
  const sources: string[] = [];
  for (const member of members) {
    const entry = unparsed.get(member);
    if (!entry) continue;
    const source = functionSource(unwrapFunction(entry.fn));
    if (source === null) continue;
    entries.push(entry);
    sources.push(source);
  }
  if (entries.length < 2) return;
  const parsed = parseMethodSources(sources);
  if (!parsed) return;
  for (const [index, entry] of entries.entries()) entry.provide(parsed[index]!);
}

/** Parsed on first use: a member is only parsed when a call reaches it. */
function memberFromFunction(name: string, kind: MemberKind, fn: Function, level: number): Member {
  let parsed: ParsedFunction | null | undefined;
  let canonical: string | null | undefined;
  const load = (): ParsedFunction | null => {
    if (parsed === undefined) {
      parsed = parseFunction(fn);
      unparsed.delete(member);
    }
    return parsed;
  };
  const member: Member = {
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
    get text(): string | null {
      return load()?.text ?? null;
    },
  };
  unparsed.set(member, {
    fn,
    provide(result) {
      if (parsed !== undefined) return;
      parsed = result;
      unparsed.delete(member);
    },
  });
  return member;
}

/** Parses a function (after unwrapping instrumentation wrappers); null when its source is unavailable. */
export function parseFunction(fn: Function): ParsedFunction | null {
  const source = functionSource(unwrapFunction(fn));
  return source === null ? null : parseFunctionSource(source);
}

/** The members declared in a `class` body, or null when `ctor` is not class syntax. Cached per constructor. */
function parsedClassOf(ctor: Function): ParsedClass | null {
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
  const result: ParsedClass = { instance: new Map(), static: new Map() };
  const body = ((parsed.node as NodeRecord).body as NodeRecord).body as NodeRecord[];
  for (const element of body) {
    const member = parsedMemberOf(element, parsed.text);
    if (!member) continue;
    const side = element.static === true ? result.static : result.instance;
    const list = side.get(member.name);
    if (list) list.push(member);
    else side.set(member.name, [member]);
  }
  return result;
}

function parsedMemberOf(element: NodeRecord, text: string): ParsedMember | null {
  if (element.type === "MethodDefinition") {
    if (element.kind === "constructor") return null;
    const name = keyName(element);
    const parsed = memberOf(element, text);
    if (name === null || !parsed || parsed.form !== "member") return null;
    return lazyMember(name, parsed.kind, parsed.fn, text, () => canonicalizeFunction(parsed));
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
      text,
      () => `field:${canonicalizeNode(key)}:${canonicalizeNode(value)}`,
    );
  }
  return null;
}

function lazyMember(
  name: string,
  kind: MemberKind,
  fn: Node,
  text: string,
  canonicalize: () => string,
): ParsedMember {
  let canonical: string | undefined;
  return {
    name,
    kind,
    fn,
    text,
    get canonical(): string {
      if (canonical === undefined) canonical = canonicalize();
      return canonical;
    },
  };
}

/** The static name of a member key; null for computed keys that are not string literals. */
function keyName(node: Readonly<Record<string, unknown>>): string | null {
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
 *
 * With `text` (what `fn` was parsed from), subtrees whose text holds no `this` or `super` keyword are skipped:
 * a reference needs one of them, and they are rare enough that most of a long method is never walked.
 */
export function memberReferences(fn: Node, text: string | null = null): MemberReference[] {
  const found: MemberReference[] = [];
  const root = fn as NodeRecord;
  const keywords = text === null ? null : keywordPositions(text, root.start as number, root.end as number);
  if (keywords !== null && keywords.length === 0) return found;
  const walk: Walk = { found, keywords };
  for (const key of ["params", "body", "value"]) {
    scan(root[key], null, walk, false);
  }
  return found;
}

interface Walk {
  readonly found: MemberReference[];
  /** Ascending offsets of `this` / `super` tokens, or null to walk everything. */
  readonly keywords: readonly number[] | null;
}

const KEYWORD = /\b(?:this|super)\b/g;

/** Offsets of `this` and `super` in `text[start, end)`. Over-inclusive (comments, strings), never under. */
function keywordPositions(text: string, start: number, end: number): number[] {
  const positions: number[] = [];
  KEYWORD.lastIndex = start;
  for (let match = KEYWORD.exec(text); match !== null && match.index < end; match = KEYWORD.exec(text)) {
    positions.push(match.index);
  }
  return positions;
}

/** True when some keyword offset lies in `[start, end)` (binary search). */
function containsKeyword(keywords: readonly number[], start: number, end: number): boolean {
  let low = 0;
  let high = keywords.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keywords[middle]! < start) low = middle + 1;
    else high = middle;
  }
  return low < keywords.length && keywords[low]! < end;
}

function scan(value: unknown, parent: NodeRecord | null, walk: Walk, bindsThis: boolean): void {
  if (Array.isArray(value)) {
    for (const item of value) scan(item, parent, walk, bindsThis);
    return;
  }
  if (!isNode(value)) return;
  const node = value as NodeRecord;
  if (walk.keywords !== null && !containsKeyword(walk.keywords, node.start as number, node.end as number)) {
    return;
  }
  switch (node.type) {
    case "FunctionExpression":
      if (bindsThis) {
        scan(node.params, node, walk, false);
        scan(node.body, node, walk, false);
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
        // `this.h.call(this, …)` calls `this.h` as `this.h(…)` would: it is found as a call, so the helper's
        // code counts (seen as the call's callee through a stand-in parent).
        const target = callee.object as NodeRecord;
        const standIn = { type: "CallExpression", start: target.start, end: target.end, callee: target };
        scan(target, standIn as NodeRecord, walk, true);
        scan(callee.property, callee, walk, false);
      } else {
        scan(callee, node, walk, false);
      }
      scan(args, node, walk, passesThis || bindsThis);
      return;
    }
    case "MemberExpression": {
      const object = node.object as NodeRecord;
      if (object.type === "ThisExpression" || object.type === "Super") {
        const name = keyName({ key: node.property, computed: node.computed });
        if (name !== null) {
          const isCall = parent?.type === "CallExpression" && parent.callee === node;
          walk.found.push({ name, viaSuper: object.type === "Super", isCall });
        }
      }
      break;
    }
    default:
      break;
  }
  for (const key of Object.keys(node)) {
    if (key === "type" || key === "start" || key === "end") continue;
    scan(node[key], node, walk, false);
  }
}

/** A function-valued instance field as its class body declares it (`run = (x) => x + 1`). */
export interface DeclaredField {
  /** The arrow or function expression the field holds. */
  readonly fn: Node;
  /** The text `fn` was parsed from (its offsets index into it). */
  readonly text: string;
  /** The expression's own source: what `Function.prototype.toString` prints for the value on an instance. */
  readonly source: string;
  /** 0 when declared by `ctor` itself, 1 by its parent class, and so on (the prototype levels). */
  readonly level: number;
}

/**
 * The function-valued instance field `name` that instances of `ctor` get from a class body, searching `ctor`
 * and then its parent classes (a subclass's field initializer runs last, so it wins). Fields are not
 * properties of the prototype, so this is the only way to see them from the class. Null when no class in the
 * chain declares one (or the name is `#private`: such fields are never instrumented methods).
 */
export function declaredField(ctor: Function, name: string): DeclaredField | null {
  if (name.startsWith("#")) return null;
  let current: unknown = ctor;
  for (let level = 0; typeof current === "function" && current !== Function.prototype; level++) {
    if (level > 64) break;
    if (mayDeclare(current, name)) {
      const member = parsedClassOf(current)
        ?.instance.get(name)
        ?.find((candidate) => candidate.kind === "field");
      if (member) {
        const node = member.fn as NodeRecord;
        const source = member.text.slice(node.start as number, node.end as number);
        return { fn: member.fn, text: member.text, source, level };
      }
    }
    current = Object.getPrototypeOf(current) as unknown;
  }
  return null;
}

/**
 * The public function-valued instance fields declared along `ctor`'s class chain, with the arity
 * `Function.prototype.length` gives their values (parameters before the first default or rest), most derived
 * declaration first. For the `signature` strategy, which lists an instance's callable API.
 */
export function declaredFieldArities(ctor: Function): { readonly name: string; readonly arity: number }[] {
  const found: { name: string; arity: number }[] = [];
  const seen = new Set<string>();
  let current: unknown = ctor;
  for (let depth = 0; typeof current === "function" && current !== Function.prototype; depth++) {
    if (depth > 64) break;
    const parsed = parsedClassOf(current);
    for (const [name, members] of parsed?.instance ?? []) {
      if (name.startsWith("#") || seen.has(name)) continue;
      const field = members.find((member) => member.kind === "field");
      if (!field) continue;
      seen.add(name);
      found.push({ name, arity: arityOf(field.fn as NodeRecord) });
    }
    current = Object.getPrototypeOf(current) as unknown;
  }
  return found;
}

function arityOf(fn: NodeRecord): number {
  const params = (fn.params as NodeRecord[] | undefined) ?? [];
  const stop = params.findIndex(
    (param) => param.type === "AssignmentPattern" || param.type === "RestElement",
  );
  return stop === -1 ? params.length : stop;
}
