import { describe, expect, it } from "vitest";
import {
  crc32,
  encodeRecords,
  parseSegment,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER,
  tableCrc32,
} from "./segment-format";

const jsons = ['{"event_id":"a"}', '{"event_id":"b","data":{"text":"héllo ✓"}}', '{"event_id":"c"}'];
const sizes = jsons.map((json) => Buffer.byteLength(json));

function segment(): Buffer {
  return Buffer.concat([SEGMENT_HEADER, encodeRecords(jsons, sizes)]);
}

describe("spill segment format", () => {
  it("round-trips records, multi-byte text included", () => {
    const parsed = parseSegment(segment());
    expect(parsed.payloads).toEqual(jsons);
    expect(parsed.sizes).toEqual(sizes);
    expect(parsed.corrupted).toBe(0);
  });

  it("skips a torn last record (a process killed mid-write) and counts it", () => {
    const data = segment();
    for (const cut of [1, 5, RECORD_HEADER_BYTES + 3]) {
      const parsed = parseSegment(data.subarray(0, data.length - cut));
      expect(parsed.payloads).toEqual(jsons.slice(0, 2));
      expect(parsed.corrupted).toBe(1);
    }
  });

  it("loses only the damaged record when a byte in the middle flips, in the payload or in the length", () => {
    const second = SEGMENT_HEADER.length + RECORD_HEADER_BYTES + sizes[0]!;
    const inPayload = segment();
    inPayload[second + RECORD_HEADER_BYTES + 4]! ^= 0x20;
    expect(parseSegment(inPayload)).toMatchObject({ payloads: [jsons[0], jsons[2]], corrupted: 1 });
    const inLength = segment();
    inLength[second + 4]! ^= 0x01;
    expect(parseSegment(inLength)).toMatchObject({ payloads: [jsons[0], jsons[2]], corrupted: 1 });
    const hugeLength = segment();
    hugeLength.writeUInt32LE(0xffff_fff0, second + 4);
    expect(parseSegment(hugeLength)).toMatchObject({ payloads: [jsons[0], jsons[2]], corrupted: 1 });
  });

  it("counts a damaged file header and still reads the records after it; garbage yields nothing", () => {
    const data = segment();
    data[0] = 0;
    expect(parseSegment(data)).toMatchObject({ payloads: jsons, corrupted: 1 });
    expect(parseSegment(Buffer.from("not a segment at all"))).toMatchObject({ payloads: [], corrupted: 1 });
    expect(parseSegment(Buffer.alloc(0))).toMatchObject({ payloads: [], corrupted: 0 });
  });

  it("computes the standard CRC-32 with or without zlib's", () => {
    const data = Buffer.from("123456789");
    expect(tableCrc32(data)).toBe(0xcbf43926);
    expect(crc32(data)).toBe(0xcbf43926);
  });
});
