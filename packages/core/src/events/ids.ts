import { randomFillSync } from "node:crypto";
import { ConfigurationError } from "../errors";

/** The longest id `createId` returns; the event schema accepts ids of 8 to 64 characters. */
const MAX_ID_SIZE = 1024;

// One 16 KiB pool of characters serves ~1365 default-size ids per `randomFillSync` call, whose fixed cost (a
// few µs) dwarfs its per-byte cost. Base64url turns every 6 random bits into one of its 64 URL-safe
// characters, uniformly (no modulo bias), in one native call: 12 KiB of randomness make the 16 KiB of
// characters, and no per-character work runs in JS.
const POOL_SIZE = 16_384;
const randomBytes = Buffer.allocUnsafe((POOL_SIZE / 4) * 3);
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
/**
 * The pool as a string, made once per refill: slicing a JS string stays in JS, where `Buffer#toString` per id
 * crosses into C++ for every id.
 */
let poolText = "";
/**
 * V8 copies substrings shorter than 13 characters; longer slices would keep the whole 16 KiB pool string alive
 * for as long as the id lives, so they are cut from the Buffer instead.
 */
const MAX_TEXT_SLICE = 12;

function refill(): void {
  randomFillSync(randomBytes);
  poolText = randomBytes.toString("base64url");
  pool.write(poolText, 0, "latin1");
  poolOffset = 0;
}

/**
 * A cryptographically random, URL-safe id (`A-Z a-z 0-9 _ -`). The default 12 characters carry 72 bits of
 * randomness, enough for event, span and execution ids that never collide in practice.
 *
 * @param size - Number of characters, an integer from 1 to 1024. Event ids must be 8 to 64 characters long.
 * @throws ConfigurationError when `size` is not an integer in range (a programming error, never data-dependent).
 */
export function createId(size = 12): string {
  if (!Number.isInteger(size) || size < 1 || size > MAX_ID_SIZE) {
    throw new ConfigurationError(
      `createId: size must be an integer from 1 to ${MAX_ID_SIZE}, got ${String(size)}`,
      [{ path: "size", message: `must be an integer from 1 to ${MAX_ID_SIZE}` }],
    );
  }
  if (poolOffset + size > POOL_SIZE) refill();
  const id =
    size <= MAX_TEXT_SLICE
      ? poolText.slice(poolOffset, poolOffset + size)
      : pool.toString("latin1", poolOffset, poolOffset + size);
  poolOffset += size;
  return id;
}
