import type { Node } from "acorn";

/**
 * Keys that carry layout or raw text rather than meaning. Dropping them is what makes the hash ignore
 * whitespace, comments (acorn does not put comments in the tree at all), quote style, numeric spelling
 * (`1.0` vs `1`) and escape spelling.
 *
 * `directive` is kept: acorn sets it (to the string's text between the quotes) only on the statements of a
 * directive prologue, so `"use strict";` (strict mode) and `("use strict");` (an expression doing nothing)
 * differ, as their behaviour does.
 */
const IGNORED_KEYS = new Set(["type", "start", "end", "loc", "range", "raw", "sourceType"]);

/** A parsed node seen as a plain record, so the serializer can walk any node type without a visitor table. */
type NodeRecord = Node & Record<string, unknown>;

export function isNode(value: unknown): value is NodeRecord {
  return (
    typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string"
  );
}

/**
 * Serializes a syntax tree into a canonical string: node types, identifiers, literal values and structure.
 * Two sources that differ only in formatting produce the same string.
 *
 * Values are written positionally, in the order the parser creates a node's fields (fixed for a given acorn
 * release), without field names: that halves the text to hash. A parser upgrade that reorders or adds fields
 * may change signatures, like any change of the normalization would.
 */
export function canonicalizeNode(node: Node): string {
  return writeValue(node);
}

function writeValue(value: unknown): string {
  if (value === null || value === undefined) return "~";
  switch (typeof value) {
    case "object":
      if (Array.isArray(value)) return writeArray(value);
      return isNode(value)
        ? writeNode(value)
        : writeTemplateValue(value as { raw?: unknown; cooked?: unknown });
    case "string":
      // Length-prefixed instead of quoted: unambiguous without escaping, and much cheaper than JSON.stringify.
      return `${value.length}'${value}`;
    case "boolean":
      return value ? "T" : "F";
    case "number":
      return `#${value}`;
    case "bigint":
      return `${value}n`;
    default:
      return "?";
  }
}

/**
 * Empty statements in a statement list (the stray `;` in `if (x) { x++ }; return x`) do nothing and are
 * left out, so a semicolon is ignored wherever it stands. One that is a statement's whole body
 * (`for (;;);`, `if (x);`) is not in a list and stays.
 */
function writeArray(values: readonly unknown[]): string {
  let out = "[";
  for (const item of values) {
    if (isNode(item) && item.type === "EmptyStatement") continue;
    out += `${writeValue(item)},`;
  }
  return `${out}]`;
}

/**
 * Only TemplateElement values ({ raw, cooked }) are non-node objects in acorn's output. `cooked` is null for
 * an invalid escape in a tagged template; the raw text is then the only meaning left.
 */
function writeTemplateValue(value: { raw?: unknown; cooked?: unknown }): string {
  return `\`${writeValue(typeof value.cooked === "string" ? value.cooked : (value.raw ?? null))}`;
}

function writeNode(node: NodeRecord): string {
  switch (node.type) {
    // The most frequent node. A name cannot contain `;`, so none needs quoting.
    case "Identifier":
      return `$${node.name as string};`;
    case "Literal":
      return `(Literal ${writeLiteral(node)})`;
    default: {
      let out = `(${node.type}`;
      for (const key in node) {
        if (IGNORED_KEYS.has(key)) continue;
        out += `,${writeValue(node[key])}`;
      }
      return `${out})`;
    }
  }
}

function writeLiteral(node: NodeRecord): string {
  const regex = node.regex as { pattern: string; flags: string } | undefined;
  if (regex) return `/${writeValue(regex.pattern)}/${regex.flags}`;
  if (typeof node.bigint === "string") return `${node.bigint}n`;
  return writeValue(node.value);
}
