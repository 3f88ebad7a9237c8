import { h } from "../dom";
import { formatBytes } from "../format";

/** JSON shorter than this is shown on one line; longer values start collapsed. */
const INLINE_CHARS = 160;
/** Strings longer than this (or with many lines) start collapsed, with a preview. */
const STRING_CHARS = 400;
const PREVIEW_CHARS = 80;

function size(json: string): string {
  return formatBytes(new TextEncoder().encode(json).length);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length} item${value.length === 1 ? "" : "s"}]`;
  const keys = Object.keys(value as object).length;
  return `{${keys} key${keys === 1 ? "" : "s"}}`;
}

/**
 * A JSON value as text, large parts collapsed behind a `<details>` whose contents are built only when opened.
 * `open` remembers which paths the user opened, so a live re-render keeps them open.
 */
export function jsonView(value: unknown, path: string, open: Set<string>): HTMLElement {
  if (typeof value === "string") {
    const lines = value.split("\n").length;
    if (value.length <= STRING_CHARS && lines <= 8) return h("span", { class: "json-string" }, value);
    const preview = value.slice(0, PREVIEW_CHARS).replace(/\s+/g, " ");
    return collapsible(
      path,
      open,
      `"${preview}…" (${size(value)}, ${lines} line${lines === 1 ? "" : "s"})`,
      () => h("pre", { class: "json-string json-long" }, value),
    );
  }
  if (value === null || typeof value !== "object") {
    return h("span", { class: `json-${value === null ? "null" : typeof value}` }, String(value));
  }
  const json = JSON.stringify(value);
  if (json.length <= INLINE_CHARS) return h("code", { class: "json-inline" }, json);
  return collapsible(path, open, `${describe(value)} ${size(json)}`, () => {
    const rows = h("div", { class: "json-rows" });
    const entries = Array.isArray(value)
      ? value.map((item, i) => [String(i), item] as const)
      : Object.entries(value);
    for (const [key, item] of entries) {
      rows.append(
        h(
          "div",
          { class: "json-row" },
          h("span", { class: "json-key" }, key),
          jsonView(item, `${path}.${key}`, open),
        ),
      );
    }
    return rows;
  });
}

function collapsible(path: string, open: Set<string>, summary: string, body: () => HTMLElement): HTMLElement {
  const details = h("details", { class: "json-collapsed", data: { path } }, h("summary", null, summary));
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    details.append(body());
  };
  if (open.has(path)) {
    details.open = true;
    build();
  }
  details.addEventListener("toggle", () => {
    if (details.open) {
      open.add(path);
      build();
    } else open.delete(path);
  });
  return details;
}

/** An object's (an event's `data`) or an array's entries as key/value rows. */
export function dataView(
  data: Record<string, unknown> | unknown[],
  path: string,
  open: Set<string>,
): HTMLElement {
  const rows = h("div", { class: "json-rows" });
  for (const [key, value] of Object.entries(data)) {
    rows.append(
      h(
        "div",
        { class: "json-row" },
        h("span", { class: "json-key" }, key),
        jsonView(value, `${path}.${key}`, open),
      ),
    );
  }
  return rows;
}
