// The server serves the page from dist/ui: build it once before the tests (esbuild takes well under a second).
export async function setup(): Promise<void> {
  const { buildUi } = (await import(new URL("../scripts/build-ui.mjs", import.meta.url).href)) as {
    buildUi: () => Promise<void>;
  };
  await buildUi();
}
