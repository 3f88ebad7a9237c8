/**
 * The page's only way to build DOM: elements with attributes and children, where every string becomes a text
 * node. Nothing here (or anywhere in the page) parses HTML, so event content can only ever appear as text;
 * the Content-Security-Policy's Trusted Types rule makes the browser enforce that too.
 */

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  title?: string;
  /** `data-*` attributes (names without the prefix). */
  data?: Record<string, string>;
  /** Other attributes: only fixed names and values chosen by the page (never URLs from events). */
  attrs?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props !== null) {
    if (props.class !== undefined) element.className = props.class;
    if (props.title !== undefined) element.title = props.title;
    if (props.data !== undefined)
      for (const [key, value] of Object.entries(props.data)) element.dataset[key] = value;
    if (props.attrs !== undefined) {
      for (const [key, value] of Object.entries(props.attrs)) element.setAttribute(key, value);
    }
    if (props.on !== undefined) {
      for (const [type, listener] of Object.entries(props.on)) {
        element.addEventListener(type, listener as EventListener);
      }
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild !== null) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** Sets text only when it changed (cheap updates of live rows). */
export function setText(element: HTMLElement, value: string): void {
  if (element.textContent !== value) element.textContent = value;
}
