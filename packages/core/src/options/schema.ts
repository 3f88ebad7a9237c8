import { ConfigurationError } from "../errors";
import { nearestName } from "./nearest-name";

/**
 * The one way streamll validates public options objects, in every package. A schema is declared beside the
 * options interface it checks and typed by it, so the two cannot drift: a key missing from the schema, an
 * extra key, a different value type or a required/optional mismatch is a compile error.
 *
 * ```ts
 * export const redisSinkOptionsSchema = v.object<RedisSinkOptions>({
 *   url: v.string({ min: 1 }).optional(),
 *   maxLen: v.integer({ min: 1 }).optional(),
 *   redisOptions: v.passthrough<RedisOptions>("ioredis RedisOptions").optional(),
 * });
 * validateOptions("RedisSink", redisSinkOptionsSchema, options); // throws ConfigurationError
 * ```
 *
 * Every object rejects keys its schema does not list, at any depth, naming the path, the nearest known key
 * and the keys that object allows. Objects a client library defines (ioredis `RedisOptions`, kafkajs or STS
 * client configs) are declared with {@link v.passthrough}: accepted as they are, named in the schema so the
 * exception is visible, and documented on the option. Messages never repeat a string value (it may be a
 * secret); they say what was expected and what kind of value came.
 */

/** One problem with an option: the dotted path (`delivery.retry.maxAttempts`) and what is wrong. */
export interface OptionIssue {
  readonly path: string;
  readonly message: string;
}

/** Reports a problem found by a refinement; `at` is a key or index (or dotted path) below the refined value. */
export type ReportIssue = (message: string, at?: string | number) => void;

/**
 * A value's kind for a message; never the content of a string, which may be a secret. A number is shown only
 * with `showNumber` (a numeric option out of range: `got 0`); given where something else was expected, it may
 * be a secret too (`password: 12345678`), so it is only called "a number".
 */
export function describeKind(value: unknown, showNumber = false): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number") return showNumber ? String(value) : "a number";
  if (typeof value === "string") return value === "" ? "an empty string" : "a string";
  if (typeof value === "bigint") return "a bigint";
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Schemes a mistaken URL commonly starts with: safe to repeat in a message. Any other "scheme" may be the start
 * of a secret, since `user:password@host` written without a scheme parses as a URL whose scheme is `user:`.
 */
const COMMON_URL_SCHEMES = new Set([
  "amqp:",
  "amqps:",
  "file:",
  "http:",
  "https:",
  "kafka:",
  "mqtt:",
  "mqtts:",
  "nats:",
  "redis:",
  "rediss:",
  "ssl:",
  "tcp:",
  "tls:",
  "unix:",
  "valkey:",
  "valkeys:",
  "ws:",
  "wss:",
]);

/** A URL's scheme (`URL#protocol`, `http:`) for a message: `http://`, or `another scheme` for an unusual one. */
export function urlSchemeForMessage(protocol: string): string {
  return COMMON_URL_SCHEMES.has(protocol) ? `${protocol}//` : "another scheme";
}

/** `a.b`, `a[0]`, or `b` at the root. */
export function joinPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * True for an object written as `{ … }` (or made by `Object.create(null)`, or in another realm). Options that
 * are a class instance, a Map or `Object.create(defaults)` are refused: only own keys are checked, so an
 * inherited getter would be read as an option unchecked and a misspelled inherited key ignored unreported.
 */
function isPlainObject(value: object): boolean {
  try {
    const proto: unknown = Object.getPrototypeOf(value);
    return proto === null || Object.getPrototypeOf(proto) === null;
  } catch {
    // A Proxy whose getPrototypeOf trap throws.
    return false;
  }
}

/** The issue of an object that is not a plain one (see {@link isPlainObject}), or `undefined`. */
function notPlainIssue(value: object, path: string, expected: string): OptionIssue | undefined {
  if (isPlainObject(value)) return undefined;
  return {
    path,
    message: `expected ${expected} written as a plain { … } object, got an object with a prototype (a class instance, a Map, Object.create(…))`,
  };
}

/**
 * Validates one option value. `T` is the type it accepts; the type-only `__type` member makes `Schema<T>`
 * invariant in `T`, which is what lets {@link v.object} compare a schema with its interface exactly.
 */
export abstract class Schema<T, Optional extends boolean = false> {
  declare readonly __type: (value: T) => T;
  declare readonly __optional: Optional;
  /** What kind of schema this is, for tools that walk schemas (docs checks). */
  abstract readonly kind: string;
  /** What is expected, for messages: `an integer >= 1`, `"fail" or "wait"`. */
  abstract readonly expected: string;
  /** Whether a missing (`undefined`) value is accepted. */
  readonly isOptional: boolean = false;
  protected readonly rules: readonly ((value: T, report: ReportIssue) => void)[] = [];

  /** Whether `value` is of this schema's kind at all; a union uses it to pick the branch a value meant. */
  abstract matches(value: unknown): boolean;

  /** Checks the value's own shape (type, range, keys); refinements run afterwards when this found nothing. */
  protected abstract checkValue(value: unknown, path: string, issues: OptionIssue[]): void;

  /** Appends an issue for every problem of `value` (which is not `undefined`). */
  check(value: unknown, path: string, issues: OptionIssue[]): void {
    const before = issues.length;
    this.checkValue(value, path, issues);
    if (issues.length !== before || this.rules.length === 0) return;
    const report: ReportIssue = (message, at) =>
      issues.push({ path: at === undefined || at === "" ? path : joinPath(path, at), message });
    for (const rule of this.rules) rule(value as T, report);
  }

  /** The same schema, also accepting `undefined` (an optional key). */
  optional(): Schema<T, true> {
    return new OptionalSchema<T>(this);
  }

  /** The same schema, also accepting `null`. */
  nullable(): Schema<T | null> {
    return new NullableSchema<T>(this);
  }

  /** Adds a check that runs once the value has the right shape, e.g. a rule between two keys. */
  refine(rule: (value: T, report: ReportIssue) => void): this {
    const copy = Object.create(Object.getPrototypeOf(this)) as this;
    Object.assign(copy, this, { rules: [...this.rules, rule] });
    return copy;
  }
}

/** Any schema, whatever it accepts. */
export interface AnySchema {
  readonly __type: (value: never) => unknown;
}

/** The type a schema accepts. */
export type Infer<S> = S extends { readonly __type: (value: infer T) => unknown } ? T : never;

class OptionalSchema<T> extends Schema<T, true> {
  readonly kind = "optional";
  override readonly isOptional = true;
  readonly expected: string;
  readonly inner: Schema<T, boolean>;
  constructor(inner: Schema<T, boolean>) {
    super();
    this.inner = inner;
    this.expected = inner.expected;
  }
  matches(value: unknown): boolean {
    return value === undefined || this.inner.matches(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (value !== undefined) this.inner.check(value, path, issues);
  }
}

class NullableSchema<T> extends Schema<T | null> {
  readonly kind = "nullable";
  readonly expected: string;
  readonly inner: Schema<T, boolean>;
  constructor(inner: Schema<T, boolean>) {
    super();
    this.inner = inner;
    this.expected = `${inner.expected} or null`;
  }
  matches(value: unknown): boolean {
    return value === null || this.inner.matches(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (value !== null) this.inner.check(value, path, issues);
  }
}

/** A schema that checks with one predicate. */
class PredicateSchema<T> extends Schema<T> {
  readonly kind: string;
  readonly expected: string;
  private readonly accepts: (value: unknown) => boolean;
  private readonly kindTest: (value: unknown) => boolean;
  constructor(
    kind: string,
    expected: string,
    accepts: (value: unknown) => boolean,
    kindTest: (value: unknown) => boolean = accepts,
  ) {
    super();
    this.kind = kind;
    this.expected = expected;
    this.accepts = accepts;
    this.kindTest = kindTest;
  }
  matches(value: unknown): boolean {
    return this.kindTest(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (!this.accepts(value)) {
      const numeric = this.kind === "number" || this.kind === "integer";
      issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value, numeric)}` });
    }
  }
}

/** Limits of {@link v.string}. */
export interface StringLimits {
  /** Fewest characters. Default 0. */
  min?: number;
  /** Most characters. */
  max?: number;
  /** A pattern the whole string must match; say what it means in `expected`. */
  pattern?: RegExp;
  /** What the message says is expected. Default from the limits, e.g. `a non-empty string`. */
  expected?: string;
}

function stringExpectation({ min = 0, max, expected }: StringLimits): string {
  if (expected !== undefined) return expected;
  const base = min >= 1 ? "a non-empty string" : "a string";
  return max === undefined ? base : `${base} of at most ${max} characters`;
}

/** Limits of {@link v.number} and {@link v.integer}. */
export interface NumberLimits {
  /** Smallest value accepted. */
  min?: number;
  /** Largest value accepted. */
  max?: number;
  /** Also accept `Infinity` (e.g. "retry forever"). Default false. */
  allowInfinity?: boolean;
  /** What the message says is expected. Default from the limits, e.g. `an integer >= 1`. */
  expected?: string;
}

function numberExpectation(what: string, { min, max, allowInfinity, expected }: NumberLimits): string {
  if (expected !== undefined) return expected;
  let text = what;
  if (min !== undefined && max !== undefined) text += ` between ${min} and ${max}`;
  else if (min !== undefined) text += ` >= ${min}`;
  else if (max !== undefined) text += ` <= ${max}`;
  return allowInfinity ? `${text} or Infinity` : text;
}

function numberCheck(integer: boolean, limits: NumberLimits): (value: unknown) => boolean {
  const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, allowInfinity = false } = limits;
  return (value) => {
    if (typeof value !== "number" || Number.isNaN(value)) return false;
    if (value === Number.POSITIVE_INFINITY) return allowInfinity && max === Number.POSITIVE_INFINITY;
    if (!Number.isFinite(value)) return false;
    return (!integer || Number.isInteger(value)) && value >= min && value <= max;
  };
}

/** The keys of `T` that may be left out. */
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];

/**
 * The schema of every key of `T`: required keys take a `Schema<T[K]>`, optional keys a
 * `Schema<T[K]>.optional()`. A missing key, an extra key or a different value type does not compile.
 */
export type Shape<T> = {
  [K in keyof T]-?: K extends OptionalKeys<T> ? Schema<Exclude<T[K], undefined>, true> : Schema<T[K], false>;
};

/** Options of {@link v.object}. */
export interface ObjectSchemaOptions {
  /** What the message says is expected when the value is not an object. Default `an object`. */
  expected?: string;
}

/** An options object: its keys are checked by their schemas, every other key is rejected. */
export class ObjectSchema<T> extends Schema<T> {
  readonly kind = "object";
  readonly expected: string;
  readonly keys: readonly string[];
  readonly shape: Shape<T>;

  constructor(shape: Shape<T>, options: ObjectSchemaOptions = {}) {
    super();
    this.shape = shape;
    this.expected = options.expected ?? "an object";
    this.keys = Object.keys(shape);
  }

  matches(value: unknown): boolean {
    return isObject(value);
  }

  /**
   * A schema for an options type that extends this one (`KafkaSinkOptions extends KafkaConnectionOptions`):
   * this schema's keys and refinements plus `shape`, which must cover exactly the keys `U` adds.
   */
  extend<U extends T>(shape: Shape<Omit<U, keyof T>>, options: ObjectSchemaOptions = {}): ObjectSchema<U> {
    const extended = new ObjectSchema<U>({ ...this.shape, ...shape } as unknown as Shape<U>, {
      expected: options.expected ?? this.expected,
    });
    Object.assign(extended, { rules: [...this.rules] });
    return extended;
  }

  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (!isObject(value)) {
      issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value)}` });
      return;
    }
    const notPlain = notPlainIssue(value, path, this.expected);
    if (notPlain !== undefined) {
      issues.push(notPlain);
      return;
    }
    const shape = this.shape as unknown as Record<string, Schema<unknown, boolean>>;
    for (const key of Object.keys(value)) {
      if (Object.hasOwn(shape, key)) continue;
      const near = nearestName(key, this.keys);
      const hint = near === undefined ? "" : `; did you mean \`${near}\`?`;
      issues.push({
        path: joinPath(path, key),
        message: `unknown option${hint} (allowed: ${this.keys.join(", ") || "none"})`,
      });
    }
    for (const key of this.keys) {
      const schema = shape[key]!;
      const item = value[key];
      if (item === undefined) {
        if (!schema.isOptional) {
          issues.push({ path: joinPath(path, key), message: `is required (${schema.expected})` });
        }
      } else schema.check(item, joinPath(path, key), issues);
    }
  }
}

class ArraySchema<T> extends Schema<readonly T[]> {
  readonly kind = "array";
  readonly expected: string;
  readonly item: Schema<T, boolean>;
  private readonly limits: { min?: number; max?: number };
  constructor(item: Schema<T, boolean>, limits: { min?: number; max?: number }) {
    super();
    this.item = item;
    this.limits = limits;
    const { min = 0, max } = limits;
    const count =
      max === undefined ? (min >= 1 ? "a non-empty array" : "an array") : `an array of at most ${max}`;
    this.expected = `${count} of ${item.expected}`;
  }
  matches(value: unknown): boolean {
    return Array.isArray(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    const { min = 0, max = Number.POSITIVE_INFINITY } = this.limits;
    if (!Array.isArray(value) || value.length < min || value.length > max) {
      const got = Array.isArray(value) ? `${value.length} item(s)` : describeKind(value);
      issues.push({ path, message: `expected ${this.expected}, got ${got}` });
      return;
    }
    // An index loop, not forEach: forEach skips the holes of a sparse array (`[, sink]`), which then went unchecked.
    for (let index = 0; index < value.length; index++) {
      if (Object.hasOwn(value, index)) this.item.check(value[index], joinPath(path, index), issues);
      else
        issues.push({
          path: joinPath(path, index),
          message: `expected ${this.item.expected}, got an empty slot`,
        });
    }
  }
}

class RecordSchema<V> extends Schema<Record<string, V>> {
  readonly kind = "record";
  readonly expected: string;
  readonly value: Schema<V, boolean>;
  constructor(value: Schema<V, boolean>) {
    super();
    this.value = value;
    this.expected = `an object of ${value.expected} values`;
  }
  matches(value: unknown): boolean {
    return isObject(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (!isObject(value)) {
      issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value)}` });
      return;
    }
    // Any object's own keys are its entries (`process.env` is not a plain object everywhere), but a Map's or
    // a Set's entries are not keys: it would read as empty.
    if (value instanceof Map || value instanceof Set) {
      issues.push({
        path,
        message: `expected ${this.expected}, got a ${value instanceof Map ? "Map" : "Set"}`,
      });
      return;
    }
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item === undefined && this.value.isOptional) continue;
      this.value.check(item, joinPath(path, key), issues);
    }
  }
}

class UnionSchema<T> extends Schema<T> {
  readonly kind = "union";
  readonly expected: string;
  readonly branches: readonly Schema<unknown, boolean>[];
  constructor(branches: readonly Schema<unknown, boolean>[]) {
    super();
    this.branches = branches;
    this.expected = branches.map((branch) => branch.expected).join(" or ");
  }
  matches(value: unknown): boolean {
    return this.branches.some((branch) => branch.matches(value));
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    // The branches of the value's kind decide; the first one's problems are reported when none accepts it.
    let first: OptionIssue[] | undefined;
    for (const branch of this.branches) {
      if (!branch.matches(value)) continue;
      const found: OptionIssue[] = [];
      branch.check(value, path, found);
      if (found.length === 0) return;
      first ??= found;
    }
    if (first !== undefined) issues.push(...first);
    else issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value)}` });
  }
}

class VariantSchema<T> extends Schema<T> {
  readonly kind = "variant";
  readonly expected: string;
  readonly tags: readonly string[];
  readonly key: string;
  readonly branches: Readonly<Record<string, ObjectSchema<unknown>>>;
  constructor(key: string, branches: Readonly<Record<string, ObjectSchema<unknown>>>) {
    super();
    this.key = key;
    this.branches = branches;
    this.tags = Object.keys(branches);
    this.expected = `an object with ${key} ${this.tags.map((tag) => JSON.stringify(tag)).join(", ")}`;
  }
  matches(value: unknown): boolean {
    return isObject(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (!isObject(value)) {
      issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value)}` });
      return;
    }
    const notPlain = notPlainIssue(value, path, this.expected);
    if (notPlain !== undefined) {
      issues.push(notPlain);
      return;
    }
    const tag = value[this.key];
    const branch =
      typeof tag === "string" && Object.hasOwn(this.branches, tag) ? this.branches[tag] : undefined;
    if (branch === undefined) {
      // No branch to check the other keys with: those no branch knows are reported too (`mechanisim` for
      // `mechanism` is the likely reason the tag is missing).
      const known = [...new Set(Object.values(this.branches).flatMap((b) => b.keys))];
      for (const key of Object.keys(value)) {
        if (known.includes(key)) continue;
        const near = nearestName(key, known);
        const hint = near === undefined ? "" : `; did you mean \`${near}\`?`;
        issues.push({
          path: joinPath(path, key),
          message: `unknown option${hint} (allowed: ${known.join(", ")})`,
        });
      }
      const tags = this.tags.map((name) => JSON.stringify(name)).join(", ");
      issues.push({
        path: joinPath(path, this.key),
        message: `expected one of ${tags}, got ${describeKind(tag)}`,
      });
      return;
    }
    branch.check(value, path, issues);
  }
}

/** A client library's own options object, passed on unchecked on purpose. */
export class PassthroughSchema<T> extends Schema<T> {
  readonly kind = "passthrough";
  readonly expected: string;
  readonly description: string;
  constructor(description: string) {
    super();
    this.description = description;
    this.expected = `an object (${description})`;
  }
  matches(value: unknown): boolean {
    return isObject(value);
  }
  protected checkValue(value: unknown, path: string, issues: OptionIssue[]): void {
    if (!isObject(value))
      issues.push({ path, message: `expected ${this.expected}, got ${describeKind(value)}` });
  }
}

type Literal = string | number | boolean;

/** Schema builders. */
export const v = {
  /** A string, optionally with length limits and a pattern. */
  string(limits: StringLimits = {}): Schema<string> {
    const { min = 0, max = Number.POSITIVE_INFINITY, pattern } = limits;
    return new PredicateSchema<string>(
      "string",
      stringExpectation(limits),
      (value) =>
        typeof value === "string" &&
        value.length >= min &&
        value.length <= max &&
        (pattern === undefined || pattern.test(value)),
      (value) => typeof value === "string",
    );
  },
  /** A number (never NaN; `Infinity` only with `allowInfinity`). */
  number(limits: NumberLimits = {}): Schema<number> {
    return new PredicateSchema<number>(
      "number",
      numberExpectation("a number", limits),
      numberCheck(false, limits),
      (value) => typeof value === "number",
    );
  },
  /** A whole number. */
  integer(limits: NumberLimits = {}): Schema<number> {
    return new PredicateSchema<number>(
      "integer",
      numberExpectation("an integer", limits),
      numberCheck(true, limits),
      (value) => typeof value === "number",
    );
  },
  boolean(): Schema<boolean> {
    return new PredicateSchema<boolean>("boolean", "true or false", (value) => typeof value === "boolean");
  },
  /** One of the listed values, e.g. `v.oneOf(["fail", "wait"])`. */
  oneOf<const L extends readonly Literal[]>(values: L): Schema<L[number]> {
    const expected =
      values.length === 1
        ? JSON.stringify(values[0])
        : `${values
            .slice(0, -1)
            .map((value) => JSON.stringify(value))
            .join(", ")} or ${JSON.stringify(values.at(-1))}`;
    return new PredicateSchema<L[number]>("oneOf", expected, (value) =>
      (values as readonly unknown[]).includes(value),
    );
  },
  /** An array whose items all match `item`. */
  array<T>(item: Schema<T, boolean>, limits: { min?: number; max?: number } = {}): Schema<readonly T[]> {
    return new ArraySchema<T>(item, limits);
  },
  /**
   * An object with any keys whose values all match `value` (tags, topic configs); `value.optional()` also
   * accepts `undefined` values (an environment such as `process.env`).
   */
  record<V, O extends boolean>(
    value: Schema<V, O>,
  ): Schema<Record<string, O extends true ? V | undefined : V>> {
    return new RecordSchema(value) as unknown as Schema<Record<string, O extends true ? V | undefined : V>>;
  },
  /** An options object; see {@link Shape}. */
  object<T>(shape: Shape<T>, options?: ObjectSchemaOptions): ObjectSchema<T> {
    return new ObjectSchema<T>(shape, options);
  },
  /** Any one of several schemas; a value is checked against the branches of its kind (object, string, …). */
  union<const S extends readonly AnySchema[]>(...branches: S): Schema<Infer<S[number]>> {
    return new UnionSchema<Infer<S[number]>>(branches as unknown as Schema<unknown, boolean>[]);
  },
  /**
   * Objects told apart by one key (`sasl.mechanism`): the branch named by the key's value checks the object,
   * so its unknown-key errors list the keys of that branch.
   */
  variant<const B extends Readonly<Record<string, AnySchema>>>(
    key: string,
    branches: B,
  ): Schema<Infer<B[keyof B]>> {
    return new VariantSchema<Infer<B[keyof B]>>(
      key,
      branches as unknown as Record<string, ObjectSchema<unknown>>,
    );
  },
  /** A function; `T` is its signature, `expected` how the message describes it. */
  fn<T extends Function>(expected = "a function"): Schema<T> {
    return new PredicateSchema<T>("function", expected, (value) => typeof value === "function");
  },
  /** A value the predicate accepts, e.g. a logger with `warn()` and `error()`. */
  custom<T>(
    expected: string,
    accepts: (value: unknown) => boolean,
    /** What a value meant for this schema looks like, when that is wider than what it accepts (for unions). */
    looksLike: (value: unknown) => boolean = accepts,
  ): Schema<T> {
    return new PredicateSchema<T>("custom", expected, accepts, looksLike);
  },
  /** An instance of a class (`Date`, `Buffer`). */
  instance<T>(type: abstract new (...args: never[]) => T, expected: string): Schema<T> {
    return new PredicateSchema<T>("instance", expected, (value) => value instanceof type);
  },
  /**
   * A client library's own options object (ioredis `RedisOptions`, an AWS SDK client config), accepted as
   * it is: the library checks it. Name the type in `description` and say so in the option's TSDoc.
   */
  passthrough<T>(description: string): Schema<T> {
    return new PassthroughSchema<T>(description);
  },
  /**
   * One value of a library's own options that streamll hands on as it is (a `checkServerIdentity` function, a
   * `secureContext`): any value but `undefined` is accepted, the library checks it.
   */
  unchecked<T>(description: string): Schema<T> {
    return new PredicateSchema<T>("unchecked", description, () => true);
  },
};

/** Checks `value` and returns every issue found (empty when valid). */
export function optionIssues(schema: AnySchema, value: unknown, path = ""): OptionIssue[] {
  const issues: OptionIssue[] = [];
  const checked = schema as Schema<unknown, boolean>;
  if (value === undefined && !checked.isOptional) {
    issues.push({ path, message: `expected ${checked.expected}, got undefined` });
    return issues;
  }
  try {
    if (value !== undefined) checked.check(value, path, issues);
  } catch {
    // A getter or Proxy that throws: the options cannot be used, whatever they hold.
    issues.push({ path, message: "could not be read (a getter or proxy threw)" });
  }
  return issues;
}

/** One `ConfigurationError` for every issue: `invalid <title> options: urll: unknown option; …`. */
export function configurationError(title: string, issues: readonly OptionIssue[]): ConfigurationError {
  const detail = issues.map((issue) =>
    issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`,
  );
  return new ConfigurationError(`invalid ${title} options: ${detail.join("; ")}`, issues);
}

/**
 * Throws one `ConfigurationError` naming every problem of `value`, or returns it typed when it is valid.
 * @param title what the options are for, e.g. `RedisSink` or `elastiCacheIamAuth()`.
 * @param path prefix for nested options checked on their own, e.g. `sinks[0].delivery`.
 */
export function validateOptions<S extends AnySchema>(
  title: string,
  schema: S,
  value: unknown,
  path = "",
): Infer<S> {
  const issues = optionIssues(schema, value, path);
  if (issues.length > 0) throw configurationError(title, issues);
  return value as Infer<S>;
}

/**
 * Checks a timeout argument (`flush(timeoutMs)`, `shutdown(timeoutMs)`, `waitFor(n, timeoutMs)`): `undefined`
 * gives `fallback`; anything but a number >= 0 (or `Infinity`) is a `ConfigurationError`, so `flush("2000")`
 * or `shutdown(-1)` fails at once instead of quietly waiting for the default.
 * @param title the call, e.g. `flush()`.
 */
export function timeoutArgument(title: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const issues = optionIssues(v.number({ min: 0, allowInfinity: true }), value, "timeoutMs");
  if (issues.length > 0) {
    throw new ConfigurationError(
      `invalid ${title} argument: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      issues,
    );
  }
  return value as number;
}
