import { createHash } from "node:crypto";

/** Length of every hash streamll puts on the wire as `code_signature` or a per-method hash. */
const SIGNATURE_HEX_LENGTH = 12;

/**
 * First 12 hex characters of the SHA-256 of `input`. 48 bits keep the wire field short while making an
 * accidental collision between two versions of one module vanishingly unlikely (birthday bound ~16 million).
 */
export function shortHash(input: string): string {
  return createHash("sha256").update(input).digest("hex").slice(0, SIGNATURE_HEX_LENGTH);
}

/** `shortHash(prefix + "\0" + body)` without building the joined string (bodies can be tens of KiB). */
export function shortHashOf(prefix: string, body: string): string {
  return createHash("sha256")
    .update(prefix)
    .update("\0")
    .update(body)
    .digest("hex")
    .slice(0, SIGNATURE_HEX_LENGTH);
}
