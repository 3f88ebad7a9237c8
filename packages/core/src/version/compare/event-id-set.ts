/** The 64 characters of streamll's event ids (nanoid's URL-safe alphabet), each worth 6 bits. */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;

/** The length of the ids the runtime writes: 12 characters, 72 bits, packed into three 24-bit words. */
const PACKED_LENGTH = 12;
/** Set in a slot's first word when the slot holds an id, so an id of all zero bits is still told apart. */
const USED = 1 << 24;
const MAX_LOAD = 0.7;

/**
 * The `event_id`s `streamll compare` has seen, to count a redelivered event once. The 12-character ids the
 * runtime writes are packed into 12 bytes each in an open-addressing table (about 25 bytes per id with the
 * table's spare room, against about 90 for a `Set` of strings, and far less garbage to collect); any other id
 * goes into a `Set`.
 */
export class EventIdSet {
  private slots = new Uint32Array(3 * 1024);
  private mask = 1023;
  private packed = 0;
  private readonly others = new Set<string>();

  get size(): number {
    return this.packed + this.others.size;
  }

  /** Adds `id`; false when it was there already. */
  add(id: string): boolean {
    if (id.length !== PACKED_LENGTH) return this.addOther(id);
    let a = 0;
    let b = 0;
    let c = 0;
    for (let i = 0; i < 4; i++) {
      const x = digit(id, i);
      const y = digit(id, i + 4);
      const z = digit(id, i + 8);
      if (x < 0 || y < 0 || z < 0) return this.addOther(id);
      a = (a << 6) | x;
      b = (b << 6) | y;
      c = (c << 6) | z;
    }
    a |= USED;
    const slots = this.slots;
    let slot = hash(a, b, c) & this.mask;
    for (;;) {
      const at = slot * 3;
      const word = slots[at]!;
      if (word === 0) {
        slots[at] = a;
        slots[at + 1] = b;
        slots[at + 2] = c;
        this.packed++;
        if (this.packed > (this.mask + 1) * MAX_LOAD) this.grow();
        return true;
      }
      if (word === a && slots[at + 1] === b && slots[at + 2] === c) return false;
      slot = (slot + 1) & this.mask;
    }
  }

  private addOther(id: string): boolean {
    if (this.others.has(id)) return false;
    this.others.add(id);
    return true;
  }

  private grow(): void {
    const old = this.slots;
    const capacity = (this.mask + 1) * 2;
    this.slots = new Uint32Array(3 * capacity);
    this.mask = capacity - 1;
    for (let at = 0; at < old.length; at += 3) {
      const a = old[at]!;
      if (a === 0) continue;
      const b = old[at + 1]!;
      const c = old[at + 2]!;
      let slot = hash(a, b, c) & this.mask;
      while (this.slots[slot * 3] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot * 3] = a;
      this.slots[slot * 3 + 1] = b;
      this.slots[slot * 3 + 2] = c;
    }
  }
}

function digit(id: string, index: number): number {
  const code = id.charCodeAt(index);
  return code < 128 ? DIGIT[code]! : -1;
}

/** A 32-bit mix of the three words (murmur3's finalizer), so neighbouring ids spread over the table. */
function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
