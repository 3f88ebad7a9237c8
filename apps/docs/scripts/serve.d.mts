/** See serve.mjs: serves the built site under its base path, GitHub Pages style, on 127.0.0.1. */
export function serveSite(options: {
  dir: string;
  base: string;
  port?: number;
}): Promise<{ url: string; close: () => Promise<void> }>;
