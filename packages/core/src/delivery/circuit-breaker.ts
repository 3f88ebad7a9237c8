import { v, validateOptions } from "../options/schema";
import type { CircuitBreakerOptions, CircuitState } from "./delivery-types";

/** `CircuitBreakerOptions` with every default filled in. */
export type ResolvedCircuitBreakerOptions = Readonly<Required<CircuitBreakerOptions>>;

/** Defaults, as documented on `CircuitBreakerOptions`. */
export const DEFAULT_CIRCUIT_BREAKER_OPTIONS: ResolvedCircuitBreakerOptions = Object.freeze({
  failureThreshold: 5,
  resetTimeoutMs: 10_000,
});

/** A state transition of a `CircuitBreaker`. */
export interface CircuitTransition {
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** Epoch milliseconds, from the breaker's clock. */
  readonly at: number;
  /** Message of the failure that opened the circuit (only on transitions to `open`). */
  readonly reason?: string;
}

/** Injectable collaborators of a `CircuitBreaker`. */
export interface CircuitBreakerHooks {
  /** Time source; default `Date.now`. The breaker sets no timers itself. */
  clock?: { now(): number };
}

/** `CircuitBreakerOptions` as checked by `configure()` and the delivery pipeline. */
export const circuitBreakerOptionsSchema = v.object<CircuitBreakerOptions>({
  failureThreshold: v.integer({ min: 1 }).optional(),
  resetTimeoutMs: v.number({ min: 0 }).optional(),
});

const circuitBreakerHooksSchema = v.object<CircuitBreakerHooks>({
  clock: v
    .custom<{ now(): number }>(
      "an object with now()",
      (value) => typeof (value as { now?: unknown } | null)?.now === "function",
    )
    .optional(),
});

/** Fills in defaults for options that passed {@link circuitBreakerOptionsSchema}. */
export function resolveCircuitBreakerOptions(
  options: CircuitBreakerOptions | undefined,
): ResolvedCircuitBreakerOptions {
  if (options === undefined) return DEFAULT_CIRCUIT_BREAKER_OPTIONS;
  return Object.freeze({
    failureThreshold: options.failureThreshold ?? DEFAULT_CIRCUIT_BREAKER_OPTIONS.failureThreshold,
    resetTimeoutMs: options.resetTimeoutMs ?? DEFAULT_CIRCUIT_BREAKER_OPTIONS.resetTimeoutMs,
  });
}

/**
 * A three-state circuit breaker driven by its caller, with no timers of its own.
 *
 * - `closed`: every `tryAcquire()` succeeds; `failureThreshold` consecutive `recordFailure()` calls open it.
 * - `open`: `tryAcquire()` is refused until `resetTimeoutMs` has passed since it opened.
 * - `half-open`: exactly one caller gets a trial permit; everyone else is refused until that trial reports
 *   back. `recordSuccess()` closes the circuit, `recordFailure()` opens it again for a new `resetTimeoutMs`.
 *
 * The open → half-open move happens lazily on the first `tryAcquire()` (or `state` read) after the reset
 * timeout; `msUntilTrial()` tells a caller when to come back, so it can sleep on one timer instead of polling.
 */
export class CircuitBreaker {
  readonly options: ResolvedCircuitBreakerOptions;
  private readonly clock: { now(): number };
  private current: CircuitState = "closed";
  private consecutiveFailures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly listeners = new Set<(transition: CircuitTransition) => void>();

  /** @throws ConfigurationError when an option is out of range. */
  constructor(options?: CircuitBreakerOptions, hooks?: CircuitBreakerHooks) {
    validateOptions("CircuitBreaker", circuitBreakerOptionsSchema.optional(), options);
    validateOptions("CircuitBreaker hooks", circuitBreakerHooksSchema.optional(), hooks);
    this.options = resolveCircuitBreakerOptions(options);
    this.clock = hooks?.clock ?? { now: () => Date.now() };
  }

  /** The current state; an open circuit whose reset timeout has passed reads as `half-open`. */
  get state(): CircuitState {
    this.advance();
    return this.current;
  }

  /** Consecutive failures recorded while closed (reset by a success). */
  get failures(): number {
    return this.consecutiveFailures;
  }

  /**
   * Asks for permission to make one call. Always granted while closed; refused while open; in half-open,
   * granted to exactly one caller (the trial) until it reports with `recordSuccess()`/`recordFailure()`.
   */
  tryAcquire(): boolean {
    this.advance();
    if (this.current === "closed") return true;
    if (this.current === "open" || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  /**
   * Milliseconds until `tryAcquire()` can next succeed: 0 when it would succeed now, the remaining reset
   * timeout while open, `undefined` while a half-open trial is out (only its result can change the answer).
   */
  msUntilTrial(): number | undefined {
    this.advance();
    if (this.current === "closed") return 0;
    if (this.current === "half-open") return this.trialInFlight ? undefined : 0;
    return Math.max(0, this.openedAt + this.options.resetTimeoutMs - this.clock.now());
  }

  /** A call succeeded: the circuit closes (from any state) and the failure count resets. */
  recordSuccess(): void {
    this.trialInFlight = false;
    this.consecutiveFailures = 0;
    if (this.current !== "closed") this.transition("closed");
  }

  /**
   * A call failed. While closed this counts toward `failureThreshold`; a failed half-open trial re-opens the
   * circuit with a fresh reset timeout. Late failures of calls started before the circuit opened change nothing.
   */
  recordFailure(reason?: string): void {
    this.advance();
    if (this.current === "open") return;
    if (this.current === "half-open") {
      this.trialInFlight = false;
      this.open(reason);
      return;
    }
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= this.options.failureThreshold) this.open(reason);
  }

  /**
   * Subscribes to state transitions. Listener errors are swallowed: a faulty listener must not break delivery.
   * @returns a function that unsubscribes.
   */
  onStateChange(listener: (transition: CircuitTransition) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private open(reason: string | undefined): void {
    this.openedAt = this.clock.now();
    this.transition("open", reason);
  }

  private advance(): void {
    if (this.current === "open" && this.clock.now() >= this.openedAt + this.options.resetTimeoutMs) {
      this.trialInFlight = false;
      this.transition("half-open");
    }
  }

  private transition(to: CircuitState, reason?: string): void {
    const from = this.current;
    this.current = to;
    if (to === "closed") this.consecutiveFailures = 0;
    if (from === to) return;
    const change: CircuitTransition =
      reason === undefined ? { from, to, at: this.clock.now() } : { from, to, at: this.clock.now(), reason };
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch {
        // Listener errors are the listener's problem; see onStateChange.
      }
    }
  }
}
