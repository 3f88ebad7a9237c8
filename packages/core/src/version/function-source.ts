import { type Node, type Options, parse } from "acorn";
import { canonicalizeNode, isNode } from "./normalize-ast";

/**
 * Symbol under which a wrapper installed by `instrument()` points at the function it wraps (the same
 * registered symbol instrument.ts uses). Signatures are computed from the original, so instrumenting a class
 * never changes its signature.
 */
export const ORIGINAL_FUNCTION: unique symbol = Symbol.for("streamll.instrumented");

/** How a piece of function source parsed. */
export type ParsedFunction =
  /** A `function`, arrow function or `class` (as written, or as an expression). */
  | { readonly form: "expression"; readonly node: Node; readonly fn: Node; readonly text: string }
  /** A method, getter, setter or constructor: the shape `Function.prototype.toString` gives methods. */
  | {
      readonly form: "member";
      readonly kind: "method" | "get" | "set";
      readonly key: Node;
      readonly computed: boolean;
      readonly fn: Node;
      /** The text that was parsed (the source inside a wrapper): node offsets index into it. */
      readonly text: string;
    };

type NodeRecord = Node & Record<string, unknown>;

const NATIVE_CODE = /\{\s*\[native code\]\s*\}\s*$/;

const BASE_OPTIONS: Options = {
  ecmaVersion: "latest",
  // Method bodies are parsed out of their class, so `super` and `#private` names they use have no
  // enclosing declaration in the snippet. Both are valid in the original program.
  allowSuperOutsideMethod: true,
  checkPrivateFields: false,
};

/** Follows `ORIGINAL_FUNCTION` links from wrappers back to the function the user wrote. */
export function unwrapFunction(fn: Function): Function {
  let current = fn;
  for (let depth = 0; depth < 16; depth++) {
    const original = (current as unknown as Record<symbol, unknown>)[ORIGINAL_FUNCTION];
    if (typeof original !== "function" || original === current) return current;
    current = original;
  }
  return current;
}

/**
 * The source text of a function, or null when the engine does not have it: built-ins, bound functions and
 * proxies all print as `function () { [native code] }`. Never throws (`toString` on a revoked proxy does).
 */
export function functionSource(fn: Function): string | null {
  let source: string;
  try {
    source = Function.prototype.toString.call(fn);
  } catch {
    return null;
  }
  return NATIVE_CODE.test(source) ? null : source;
}

/**
 * Parses the text `Function.prototype.toString` returned. Functions, arrows and classes parse as expressions;
 * methods (`forward() {}`, `async *stream() {}`, `get x() {}`, `#private() {}`, `[computed]() {}`) are not
 * valid on their own, so they are parsed inside a class body, then inside an object literal (for sloppy-mode
 * code a class body, being strict, rejects). Returns null when nothing parses.
 */
export function parseFunctionSource(source: string): ParsedFunction | null {
  // Try the likely shape first: a failed parse of a large method costs an exception and part of a parse.
  const expressionFirst = EXPRESSION_START.test(source);
  for (const sourceType of ["script", "module"] as const) {
    const options: Options = { ...BASE_OPTIONS, sourceType };
    if (expressionFirst) {
      const parsed = parseAsExpression(source, options) ?? parseAsClassMember(source, options);
      if (parsed) return parsed;
    } else {
      const parsed = parseAsClassMember(source, options) ?? parseAsExpression(source, options);
      if (parsed) return parsed;
    }
    const objectText = `({${source}\n})`;
    const inObject = tryParse(objectText, options);
    const objectExpression = inObject ? singleExpression(inObject) : null;
    const properties = objectExpression?.properties as NodeRecord[] | undefined;
    if (properties?.length === 1) {
      const property = properties[0]!;
      if (property.type === "Property" && (property.method === true || property.kind !== "init")) {
        return memberOf(property, objectText);
      }
    }
  }
  return null;
}

/**
 * Parses several method sources (each as `toString` prints a method) in one parser run: a parse has a fixed
 * cost that dominates for the short helpers `ast-deps` follows. Null unless every source came back as one
 * method, in order; callers then parse the sources one by one.
 */
export function parseMethodSources(sources: readonly string[]): ParsedFunction[] | null {
  if (sources.some((source) => EXPRESSION_START.test(source))) return null;
  // Each source on its own lines: a method ends with `}`, so no element can run into the next.
  const text = `(class {\n${sources.join("\n")}\n})`;
  const program = tryParse(text, { ...BASE_OPTIONS, sourceType: "script" });
  const classExpression = program ? singleExpression(program) : null;
  const members = (classExpression?.body as NodeRecord | undefined)?.body as NodeRecord[] | undefined;
  if (members?.length !== sources.length) return null;
  const parsed: ParsedFunction[] = [];
  for (const member of members) {
    const result = member.type === "MethodDefinition" ? memberOf(member, text) : null;
    if (!result) return null;
    parsed.push(result);
  }
  return parsed;
}

/** How functions, arrows and classes print; methods print as `name(…) {…}`, `async name…`, `get name…`. */
const EXPRESSION_START =
  /^(?:async\s*)?(?:function\b|class\b|\(|[\p{ID_Start}$_][\p{ID_Continue}$\u200C\u200D]*\s*=>)/u;

function parseAsExpression(source: string, options: Options): ParsedFunction | null {
  const text = `(${source}\n)`;
  const program = tryParse(text, options);
  const expression = program ? singleExpression(program) : null;
  if (
    expression &&
    (expression.type === "FunctionExpression" ||
      expression.type === "ArrowFunctionExpression" ||
      expression.type === "ClassExpression")
  ) {
    return { form: "expression", node: expression, fn: expression, text };
  }
  return null;
}

function parseAsClassMember(source: string, options: Options): ParsedFunction | null {
  const text = `(class {${source}\n})`;
  const program = tryParse(text, options);
  const classExpression = program ? singleExpression(program) : null;
  const members = (classExpression?.body as NodeRecord | undefined)?.body as NodeRecord[] | undefined;
  if (members?.length !== 1) return null;
  const member = members[0]!;
  return member.type === "MethodDefinition" ? memberOf(member, text) : null;
}

/**
 * Builds the member form from a `MethodDefinition` (class) or method `Property` (object literal) parsed from
 * `text`.
 */
export function memberOf(node: NodeRecord, text: string): ParsedFunction | null {
  const value = node.value;
  if (!isNode(value)) return null;
  const rawKind = node.kind;
  const kind = rawKind === "get" || rawKind === "set" ? rawKind : "method";
  const key = node.key;
  if (!isNode(key)) return null;
  return { form: "member", kind, key, computed: node.computed === true, fn: value, text };
}

/**
 * The canonical, layout-free text of a parsed function. A method gets the same text whether it was read from
 * its own `toString()` or found in its class's source, so per-method hashes agree across strategies.
 */
export function canonicalizeFunction(parsed: ParsedFunction): string {
  if (parsed.form === "expression") return canonicalizeNode(parsed.node);
  return `member:${parsed.kind}:${parsed.computed ? "computed:" : ""}${canonicalizeNode(parsed.key)}:${canonicalizeNode(parsed.fn)}`;
}

function tryParse(text: string, options: Options): NodeRecord | null {
  try {
    return parse(text, options) as unknown as NodeRecord;
  } catch {
    return null;
  }
}

function singleExpression(program: NodeRecord): NodeRecord | null {
  const body = program.body as NodeRecord[];
  if (body.length !== 1) return null;
  const statement = body[0]!;
  if (statement.type !== "ExpressionStatement") return null;
  const expression = statement.expression;
  return isNode(expression) ? (expression as NodeRecord) : null;
}
