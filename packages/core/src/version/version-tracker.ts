import type { JsonObject } from "../events/event-schema";
import { v, validateOptions } from "../options/schema";
import { type CodeSignatureDetails, computeCodeSignatureDetails, signedFunction } from "./code-signature";
import { functionSource, unwrapFunction } from "./function-source";
import { detectGitCommit } from "./git-commit";
import {
  type ResolvedVersionTrackingOptions,
  resolveVersionTrackingOptions,
  type VersionTrackingOptions,
  versionTrackingOptionsSchema,
} from "./options";
import { dependencyVersions, entryDirectory, findNearestPackage, packageLabel } from "./package-version";

/** The three short fields every event of an instrumented call carries, plus what produced them. */
export interface VersionRecord {
  /** `module_version` on the wire. */
  readonly moduleVersion: string | null;
  /** `code_signature` on the wire. */
  readonly codeSignature: string | null;
  /** `git_commit` on the wire. */
  readonly gitCommit: string | null;
  /** Strategy and per-method hashes behind `codeSignature`, for the `version` event. */
  readonly details: CodeSignatureDetails;
}

/** The engine the process runs on. */
export interface RuntimeInfo {
  /** `node`, `bun` or `deno`. */
  readonly name: string;
  readonly version: string;
  readonly platform: string;
  readonly arch: string;
}

/** Facts about the running process shared by every module: computed once per tracker. */
export interface ProcessVersionInfo {
  readonly moduleVersion: string | null;
  /** `name@version` of the package.json nearest to the entry script, whatever `moduleVersion` says. */
  readonly package: string | null;
  readonly gitCommit: string | null;
  readonly runtime: RuntimeInfo;
  /** Installed versions of the tracked dependencies. */
  readonly dependencies: Readonly<Record<string, string>>;
}

/** Where the tracker looks for package.json and `.git`; tests point these at fixtures. */
export interface VersionTrackerEnvironment {
  /** Default `process.cwd()`. */
  cwd?: string;
  /** Directory of the entry script. Default: derived from `process.argv[1]` (see `entryDirectory`). */
  entryDir?: string;
  /** Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

const versionTrackerEnvironmentSchema = v.object<VersionTrackerEnvironment>({
  cwd: v.string({ min: 1 }).optional(),
  entryDir: v.string({ min: 1 }).optional(),
  env: v.record(v.string().optional()).optional(),
});

/** Pairs remembered for `version` events; past this, no further `version` events are emitted. */
export const MAX_TRACKED_VERSIONS = 10_000;

const MAX_DEFAULT_DEPENDENCIES = 50;

/** Stands in for "no method" (a plain function) as a map key. */
const NO_METHOD = Symbol("no-method");

/** The span fields a tracker fills in (structurally the runtime's `Span`). */
export interface VersionedSpan {
  readonly moduleName: string;
  moduleVersion: string | null;
  codeSignature: string | null;
  gitCommit: string | null;
}

/** A cached record plus which module names it was announced under (almost always exactly one). */
interface TrackedRecord extends VersionRecord {
  announcedAs: string | null;
  alsoAnnouncedAs: Set<string> | null;
  /**
   * Computed from the class alone (ahead of the first call) and the method was not found there: it may be an
   * own property every instance gets in its constructor, which only a call's receiver shows. The first call
   * computes it again.
   */
  provisional: boolean;
  /**
   * The function (unwrapped) whose code the record signs when it was found by name (a prototype method, a
   * static method, a plain object's property); null when there is no such function to compare with (a field
   * read from its class body, a record computed for one receiver). A call that runs another function gets a
   * record of its own from `variants`.
   */
  signs: Function | null;
  variants: Variants | null;
}

/** Records for calls that ran a function other than the one a class-level record signs. */
interface Variants {
  readonly byFunction: WeakMap<Function, TrackedRecord>;
  /** The same records by what they were computed from, so instances with same-source copies share one. */
  readonly bySource: Map<string, TrackedRecord>;
}

/** Distinct sources remembered per variant table; past this, a new copy is matched by function only. */
const MAX_SOURCE_VARIANTS = 64;

/**
 * Computes `module_version`, `code_signature` and `git_commit` once per (target, method) and serves them
 * from a cache afterwards. The cache is a `WeakMap` keyed by the instrumented class, function or object, so
 * a class that is no longer referenced is collected together with its entry.
 */
export class VersionTracker {
  readonly options: ResolvedVersionTrackingOptions;
  /** `version` events not emitted because `MAX_TRACKED_VERSIONS` pairs were already seen. */
  suppressedVersionEvents = 0;
  private readonly environment: VersionTrackerEnvironment;
  private readonly cache = new WeakMap<object, Map<string | symbol, TrackedRecord>>();
  /** (module, signature) pairs announced so far; bounded by `MAX_TRACKED_VERSIONS`. */
  private readonly pairs = new Set<string>();
  private info: ProcessVersionInfo | null = null;

  /** @throws ConfigurationError naming every invalid option. */
  constructor(options: VersionTrackingOptions | true = true, environment: VersionTrackerEnvironment = {}) {
    if (options !== true) validateOptions("VersionTracker", versionTrackingOptionsSchema, options);
    validateOptions("VersionTracker environment", versionTrackerEnvironmentSchema, environment);
    this.options = resolveVersionTrackingOptions(options) ?? resolveVersionTrackingOptions(true)!;
    this.environment = environment;
  }

  /**
   * Package, git commit, runtime and dependency versions. Computed on first use (reads a few package.json
   * files and may run `git status` once, bounded by a timeout); call it at start-up to keep that work off
   * the first instrumented call.
   */
  processInfo(): ProcessVersionInfo {
    if (this.info === null) this.info = this.computeProcessInfo();
    return this.info;
  }

  /**
   * The version fields of `method` on `target` (or of `target` itself when `method` is null). The first
   * call computes them; later calls return the same object. Never throws.
   */
  lookup(
    target: object,
    method: string | symbol | null = null,
    moduleName: string | null = null,
  ): VersionRecord {
    return this.tracked(target, method, moduleName, null, null);
  }

  /**
   * Fills `span`'s three version fields for a call of `original` (the instrumented function, unwrapped or
   * not) on `receiver`, and returns the `version` event data when this (module, signature) pair is new.
   *
   * Methods are cached per class (`receiver.constructor`), so every instance of a class shares one entry and
   * subclasses get their own; plain objects per object; plain functions per function. Never throws; costs a
   * cached lookup after the first call.
   */
  applyToSpan(
    span: VersionedSpan,
    original: Function,
    methodName: string | null,
    receiver: unknown,
  ): JsonObject | null {
    let record: TrackedRecord;
    try {
      // Which entry a call belongs to: (class, method) for class instances, so every instance shares one;
      // (class, method) for static methods; (object, method) for plain objects; (function) otherwise.
      // Inlined rather than returned as a pair: this runs on every instrumented call.
      let owner: object = original;
      let method: string | null = null;
      let instance: object | null = null;
      if (methodName !== null) {
        if (typeof receiver === "object" && receiver !== null) {
          const ctor = (receiver as { constructor?: unknown }).constructor;
          owner = typeof ctor === "function" && ctor !== Object ? ctor : receiver;
          method = methodName;
          instance = receiver;
        } else if (typeof receiver === "function") {
          owner = receiver;
          method = methodName;
        }
      }
      record = this.tracked(owner, method, span.moduleName, original, instance);
    } catch {
      return null;
    }
    span.moduleVersion = record.moduleVersion;
    span.codeSignature = record.codeSignature;
    span.gitCommit = record.gitCommit;
    return record.announcedAs === span.moduleName ? null : this.announce(span.moduleName, record);
  }

  /**
   * The `data` of the `version` event for (`moduleName`, `record.codeSignature`) the first time this pair is
   * seen, null afterwards (and once `MAX_TRACKED_VERSIONS` pairs have been seen).
   */
  takeVersionEvent(moduleName: string, record: VersionRecord): JsonObject | null {
    return this.announce(moduleName, record as TrackedRecord);
  }

  private announce(moduleName: string, record: TrackedRecord): JsonObject | null {
    if (record.announcedAs === moduleName || record.alsoAnnouncedAs?.has(moduleName)) return null;
    // Two targets with identical code share a signature: announce the pair once, whichever is seen first.
    const pair = `${moduleName}\u0000${record.codeSignature ?? ""}`;
    if (this.pairs.has(pair)) {
      this.remember(moduleName, record);
      return null;
    }
    if (this.pairs.size >= MAX_TRACKED_VERSIONS) {
      this.suppressedVersionEvents++;
      return null;
    }
    this.pairs.add(pair);
    this.remember(moduleName, record);
    return this.versionEventData(record);
  }

  private remember(moduleName: string, record: TrackedRecord): void {
    if (record.announcedAs === null) {
      record.announcedAs = moduleName;
      return;
    }
    if (record.alsoAnnouncedAs === null) record.alsoAnnouncedAs = new Set();
    record.alsoAnnouncedAs.add(moduleName);
  }

  private tracked(
    target: object,
    method: string | symbol | null,
    moduleName: string | null,
    expected: Function | null,
    receiver: object | null,
  ): TrackedRecord {
    const key = method ?? NO_METHOD;
    let perTarget = this.cache.get(target);
    let record = perTarget?.get(key);
    if (record === undefined || (record.provisional && expected !== null)) {
      if (perTarget === undefined) {
        perTarget = new Map();
        this.cache.set(target, perTarget);
      }
      // Computed from the class (or object, or function) alone, as `lookup()` and `instrument()` do ahead of
      // the first call, unless that found nothing and this call's receiver shows the method.
      record = this.compute(target, method, moduleName, record === undefined ? null : expected, receiver);
      if (record.provisional && expected !== null)
        record = this.compute(target, method, moduleName, expected, receiver);
      perTarget.set(key, record);
    }
    // The per-call check, one property read (`unwrapFunction`) and a comparison: a class-level record signs
    // the method the class resolves to, but an instance's own property shadows its prototype, so a function
    // the constructor assigns (`this.forward = ...`, in the class or any ancestor), or a method replaced on
    // one instance or on the prototype since the record was computed, is what actually runs. Such a call is
    // signed as what ran, once per function (and once per source for copies every instance gets).
    if (expected === null || record.signs === null) return record;
    const ran = unwrapFunction(expected);
    return ran === record.signs
      ? record
      : this.variant(record, target, method, moduleName, ran, expected, receiver);
  }

  /** The record of a call whose function is not the one `base` signs. */
  private variant(
    base: TrackedRecord,
    target: object,
    method: string | symbol | null,
    moduleName: string | null,
    ran: Function,
    expected: Function,
    receiver: object | null,
  ): TrackedRecord {
    if (base.variants === null) base.variants = { byFunction: new WeakMap(), bySource: new Map() };
    const variants = base.variants;
    const known = variants.byFunction.get(ran);
    if (known !== undefined) return known;
    // Each instance gets its own copy of a function its constructor assigns: copies with the same source (and
    // held the same way) share a record rather than each being parsed again.
    const source = functionSource(ran);
    const held = receiver !== null && method !== null && ownFunction(receiver, method) === ran;
    const sourceKey = source === null ? null : `${held ? "own" : "call"}\0${source}`;
    let record = sourceKey === null ? undefined : variants.bySource.get(sourceKey);
    if (record === undefined) {
      record = this.compute(target, method, moduleName, expected, receiver);
      if (sourceKey !== null && variants.bySource.size < MAX_SOURCE_VARIANTS)
        variants.bySource.set(sourceKey, record);
    }
    variants.byFunction.set(ran, record);
    return record;
  }

  /** The full mapping a `version` event carries. */
  versionEventData(record: VersionRecord): JsonObject {
    const info = this.processInfo();
    const data: JsonObject = {
      strategy: record.details.strategy,
      code_signature: record.codeSignature,
      module_version: record.moduleVersion,
      git_commit: record.gitCommit,
      methods: record.details.methods.map((method) => ({ name: method.name, hash: method.hash })),
      package: info.package,
      runtime: { ...info.runtime },
      dependencies: { ...info.dependencies },
    };
    if (record.details.unavailable !== null) data.unavailable = record.details.unavailable;
    return data;
  }

  private compute(
    target: object,
    method: string | symbol | null,
    moduleName: string | null,
    expected: Function | null,
    receiver: object | null,
  ): TrackedRecord {
    const info = this.processInfo();
    const options = { strategy: this.options.strategy, moduleName };
    let details = computeCodeSignatureDetails(target, { ...options, method });
    let signs: Function | null = null;
    if (expected !== null && method !== null && !resolvesTo(target, method, expected)) {
      // The receiver's class does not lead to the function that actually ran. When the receiver holds it (a
      // class field, a function assigned in the constructor, a method replaced on this instance), it is
      // signed as the receiver's method, with the helpers it calls; otherwise (a function called with an
      // unrelated `this`) the function itself is.
      details =
        receiver !== null && ownFunction(receiver, method) === unwrapFunction(expected)
          ? computeCodeSignatureDetails(receiver, { ...options, method })
          : computeCodeSignatureDetails(expected, options);
    } else {
      signs = signedFunction(target, method);
    }
    return {
      moduleVersion: info.moduleVersion,
      codeSignature: details.signature,
      gitCommit: info.gitCommit,
      details,
      announcedAs: null,
      alsoAnnouncedAs: null,
      provisional: expected === null && details.unavailable === "not-found",
      signs,
      variants: null,
    };
  }

  private computeProcessInfo(): ProcessVersionInfo {
    const cwd = this.environment.cwd ?? process.cwd();
    const entryDir = this.environment.entryDir ?? entryDirectory(process.argv, cwd);
    const pkg = findNearestPackage(entryDir) ?? findNearestPackage(cwd);
    const label = pkg ? packageLabel(pkg) : null;
    const names = this.options.dependencies ?? pkg?.dependencies.slice(0, MAX_DEFAULT_DEPENDENCIES) ?? [];
    const gitCommit =
      this.options.gitCommit === "auto"
        ? detectGitCommit({ cwd, env: this.environment.env ?? process.env })
        : this.options.gitCommit;
    return {
      moduleVersion: this.options.moduleVersion ?? label,
      package: label,
      gitCommit,
      runtime: runtimeInfo(),
      dependencies: dependencyVersions(names, pkg?.dir ?? entryDir),
    };
  }
}

/** True when `method` looked up on `target` (instance side first, then static) is `expected`, unwrapped. */
function resolvesTo(target: object, method: string | symbol, expected: Function): boolean {
  const wanted = unwrapFunction(expected);
  const holders: unknown[] =
    typeof target === "function" ? [(target as { prototype?: unknown }).prototype, target] : [target];
  for (const holder of holders) {
    if (typeof holder !== "object" && typeof holder !== "function") continue;
    if (holder === null) continue;
    let current: object | null = holder as object;
    for (let depth = 0; current !== null && depth < 64; depth++) {
      const descriptor = Object.getOwnPropertyDescriptor(current, method);
      if (descriptor) {
        const fn: unknown = descriptor.value ?? descriptor.get;
        if (typeof fn === "function" && unwrapFunction(fn) === wanted) return true;
        break;
      }
      current = Object.getPrototypeOf(current) as object | null;
    }
  }
  return false;
}

/** The own property `method` of `receiver` as a function the user wrote (wrappers unwrapped), or null. */
function ownFunction(receiver: object, method: string | symbol): Function | null {
  const value: unknown = Object.getOwnPropertyDescriptor(receiver, method)?.value;
  return typeof value === "function" ? unwrapFunction(value) : null;
}

/** The engine, its version, OS platform and CPU architecture. */
function runtimeInfo(): RuntimeInfo {
  const versions = process.versions as Record<string, string | undefined>;
  const name = versions.bun ? "bun" : versions.deno ? "deno" : "node";
  return {
    name,
    version: versions[name] ?? process.versions.node,
    platform: process.platform,
    arch: process.arch,
  };
}

/**
 * The tracker for `configure({ versionTracking })`: null when tracking is off. The process facts (package,
 * git commit, dependencies) are read here, at configuration time, so the first instrumented call does not
 * pay for them.
 */
export function createVersionTracker(
  options: boolean | VersionTrackingOptions | undefined | null,
): VersionTracker | null {
  if (options === undefined || options === null || options === false) return null;
  const tracker = new VersionTracker(options);
  tracker.processInfo();
  return tracker;
}
