import { GatewayError } from "../ir/errors.js";

export type CircuitState = "closed" | "open" | "half_open";

export interface BreakerSettings {
  /** Consecutive failures that open the circuit; 0: never. */
  failures: number;
  /** How long an open circuit refuses requests before one probe may try, ms. */
  cooldownMs: number;
}

export const DEFAULT_BREAKER: Readonly<BreakerSettings> = { failures: 3, cooldownMs: 30_000 };

/** What `admit` answers: go ahead (as a probe when half-open), or the reason not to. */
export type Admission = "ok" | "probe" | GatewayError;

/**
 * Whether a failure says something about the backend's health: it could not be reached, it
 * answered 5xx, it broke off or timed out. Client errors (4xx), rate limits and requests the
 * client abandoned do not count.
 */
export function isBackendFailure(err: GatewayError): boolean {
  if (err.code === "client_gone") return false;
  if (err.kind === "timeout") return true;
  if (err.code === "backend_unreachable" || err.code === "backend_stream_broken") return true;
  return (err.upstreamStatus ?? 0) >= 500;
}

/**
 * A circuit breaker for one backend: closed while it answers; open after `failures` failures in
 * a row, refusing at once (so routing moves to a replica or fallback without waiting out another
 * timeout); after `cooldownMs` half-open, letting one probe through: its success closes the
 * circuit, its failure opens it again. The router skips an open backend only while another
 * target can serve the request: the last target left is tried all the same.
 */
export class Breaker {
  private state_: CircuitState = "closed";
  private failures_ = 0;
  private openedAt = 0;
  private probing = false;
  private last: GatewayError | undefined;
  /** Set when an answer broke off mid-stream (hang, reset); cleared by the next complete answer. */
  suspect = false;
  /** Told of every verdict on a request (the backend's watch: a failure or a recovery is looked at at once). */
  onVerdict: ((err?: GatewayError) => void) | undefined;

  constructor(
    readonly backend: string,
    readonly settings: BreakerSettings,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): CircuitState {
    if (this.state_ === "open" && this.now() - this.openedAt >= this.settings.cooldownMs) return "half_open";
    return this.state_;
  }

  get failures(): number {
    return this.failures_;
  }

  get lastError(): GatewayError | undefined {
    return this.last;
  }

  /** Whether a request may go to the backend now. A "probe" must end in success, failure or settle. */
  admit(): Admission {
    if (this.state_ === "closed") return "ok";
    const waited = this.now() - this.openedAt;
    if (this.state_ === "open" && waited >= this.settings.cooldownMs) this.state_ = "half_open";
    if (this.state_ === "half_open" && !this.probing) {
      this.probing = true;
      return "probe";
    }
    const retryAfter = Math.max(1, Math.ceil((this.settings.cooldownMs - waited) / 1000));
    const kind =
      this.last?.kind === "timeout" || this.last?.kind === "overloaded" ? this.last.kind : "unavailable";
    return new GatewayError(
      kind,
      `backend ${this.backend} is failing (${this.failures_} failure(s) in a row, the last: ${this.last?.message ?? "unknown"}); ${
        this.probing ? "a probe request is testing it now" : `it is tried again in ${retryAfter} s`
      }`,
      { retryable: true, retryAfter, code: "circuit_open" },
    );
  }

  success(): void {
    this.failures_ = 0;
    this.probing = false;
    this.state_ = "closed";
    this.onVerdict?.();
  }

  failure(err: GatewayError): void {
    this.last = err;
    this.failures_++;
    this.probing = false;
    if (
      this.state_ === "half_open" ||
      (this.settings.failures > 0 && this.failures_ >= this.settings.failures)
    ) {
      this.state_ = "open";
      this.openedAt = this.now();
    }
    this.onVerdict?.(err);
  }

  /** A request admitted as a probe ended without a verdict (its client left): the next may probe. */
  settle(admission: Admission): void {
    if (admission === "probe") this.probing = false;
  }
}
