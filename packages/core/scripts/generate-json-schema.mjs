// Runs after tsup: writes dist/event.schema.json from the built package, so the published JSON Schema is
// generated from exactly the zod schema that ships.
import { writeFileSync } from "node:fs";
import { createEventJsonSchema } from "../dist/index.js";

const target = new URL("../dist/event.schema.json", import.meta.url);
writeFileSync(target, `${JSON.stringify(createEventJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
