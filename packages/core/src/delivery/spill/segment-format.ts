import * as zlib from "node:zlib";

/**
 * The on-disk format of a spill segment: an 8-byte file header, then records of
 *
 * ```
 * magic (u32 LE) | payload length (u32 LE) | CRC-32 of the payload (u32 LE) | payload (UTF-8 event JSON)
 * ```
 *
 * The per-record magic lets a reader find the next record after a damaged one, so one flipped byte costs one
 * event, not the rest of the segment; the checksum catches both damaged payloads and damaged lengths (the
 * checksum then covers the wrong bytes). A torn last record (the process died mid-write) is a record whose
 * length runs past the end of the file.
 */
export const SEGMENT_HEADER = Buffer.from("STLLSPL1", "latin1");
/** Bytes ff fe "S" "L" on disk: 0xff never occurs in UTF-8, so event text cannot imitate a record start. */
export const RECORD_MAGIC = 0x4c_53_fe_ff;
export const RECORD_HEADER_BYTES = 12;
/** No event is larger than the pipeline's batch byte limit; a length beyond this is damage, not data. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32LE(RECORD_MAGIC, 0);

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE), zlib's when this Node has it (22.2+), else a table-driven one. */
export const crc32: (data: Uint8Array) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === "function"
    ? (data) => (zlib as unknown as { crc32(data: Uint8Array): number }).crc32(data) >>> 0
    : tableCrc32;

export function tableCrc32(data: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Bytes one event of `payloadBytes` takes on disk. */
export function recordSize(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

/** Frames event JSON strings as records, in one buffer (one write call per batch). */
export function encodeRecords(jsons: readonly string[], byteLengths: readonly number[]): Buffer {
  let total = 0;
  for (const bytes of byteLengths) total += RECORD_HEADER_BYTES + bytes;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < jsons.length; i++) {
    const start = offset + RECORD_HEADER_BYTES;
    const written = out.write(jsons[i]!, start, "utf8");
    out.writeUInt32LE(RECORD_MAGIC, offset);
    out.writeUInt32LE(written, offset + 4);
    out.writeUInt32LE(crc32(out.subarray(start, start + written)), offset + 8);
    offset = start + written;
  }
  return offset === total ? out : out.subarray(0, offset);
}

/** What a segment held: the intact records' payloads, and how many damaged places were skipped. */
export interface ParsedSegment {
  readonly payloads: string[];
  /** UTF-8 byte length of each payload. */
  readonly sizes: number[];
  /** Damaged records skipped (a bad checksum, an impossible length, a torn tail, a bad file header). */
  readonly corrupted: number;
}

/** Reads every intact record of a segment file's content. Never throws: damage is skipped and counted. */
export function parseSegment(data: Buffer): ParsedSegment {
  const payloads: string[] = [];
  const sizes: number[] = [];
  let corrupted = 0;
  let offset = 0;
  if (
    data.length >= SEGMENT_HEADER.length &&
    data.subarray(0, SEGMENT_HEADER.length).equals(SEGMENT_HEADER)
  ) {
    offset = SEGMENT_HEADER.length;
  } else if (data.length > 0) {
    corrupted++;
    offset = resync(data, 0);
  }
  while (offset < data.length) {
    const ok = offset + RECORD_HEADER_BYTES <= data.length && data.readUInt32LE(offset) === RECORD_MAGIC;
    if (ok) {
      const length = data.readUInt32LE(offset + 4);
      const start = offset + RECORD_HEADER_BYTES;
      const end = start + length;
      if (length <= MAX_RECORD_BYTES && end <= data.length) {
        const payload = data.subarray(start, end);
        if (crc32(payload) === data.readUInt32LE(offset + 8)) {
          payloads.push(payload.toString("utf8"));
          sizes.push(length);
          offset = end;
          continue;
        }
      }
    }
    // Damaged here: count it once and continue at the next record that starts with the magic.
    corrupted++;
    offset = resync(data, offset + 1);
  }
  return { payloads, sizes, corrupted };
}

function resync(data: Buffer, from: number): number {
  const next = data.indexOf(MAGIC_BYTES, from);
  return next < 0 ? data.length : next;
}
