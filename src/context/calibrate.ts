import { FEATURES, type Features, PRIOR, REQUEST, tokensOf } from "./estimate.js";

/**
 * The estimate's costs per character class, corrected per model from the prompt tokens the
 * backend reports. Each class's prior cost gets a multiplier, fitted by least squares over the
 * answers seen (older ones fading) and held near 1 where the answers say little about a class
 * (ridge): a model whose tokenizer is dear on punctuation learns that from a few requests with
 * code in them, without its prose estimate moving.
 *
 * The fixed cost of a request (the template's own text: a default system prompt, a generation
 * prompt) is held far more loosely than the per-character costs. Answers to small requests alone
 * cannot tell a fixed cost from a dear tokenizer; a template that adds 20 tokens to every prompt
 * would otherwise be learned as letters costing twice the prior, and the first large request
 * after a run of small ones (a client's title or quota requests, then the agent's real prompt)
 * estimated at twice its size: trimmed for nothing, and its honest count taken for a cut prompt.
 */
export class Calibration {
  /** Decayed normal equations over z = prior cost × feature: Σ z zᵀ and Σ z·reported. */
  private readonly zz = new Float64Array(FEATURES * FEATURES);
  private readonly zy = new Float64Array(FEATURES);
  private readonly costs = Float64Array.from(PRIOR);
  /** Answers learned from. */
  samples = 0;

  /** Tokens for a request or message of these features. */
  estimate(f: Features): number {
    return tokensOf(f, this.costs);
  }

  /** The cost of each class now (tokens per unit), for the log. */
  get current(): readonly number[] {
    return [...this.costs];
  }

  /**
   * Learns from one answer: the features sent and the prompt tokens the server counted. Counts
   * far off the estimate are not learned from (a server that cut the prompt, a script, a cache
   * it did not count); returns whether it learned.
   */
  observe(f: Features, reported: number): boolean {
    const prior = tokensOf(f);
    if (prior < MIN_TOKENS || !(reported > 0)) return false;
    const ratio = reported / prior;
    if (ratio < 1 / MAX_OFF || ratio > MAX_OFF) return false;
    if (this.samples >= 3) {
      const now = this.estimate(f);
      if (Math.abs(reported / now - 1) > OUTLIER) return false;
    }
    const z = new Float64Array(FEATURES);
    for (let i = 0; i < FEATURES; i++) z[i] = f[i]! * PRIOR[i]!;
    for (let i = 0; i < FEATURES * FEATURES; i++) this.zz[i]! *= DECAY;
    for (let i = 0; i < FEATURES; i++) {
      this.zy[i] = this.zy[i]! * DECAY + z[i]! * reported;
      for (let j = 0; j < FEATURES; j++) this.zz[i * FEATURES + j]! += z[i]! * z[j]!;
    }
    this.samples++;
    this.refit();
    return true;
  }

  /** Solves (ZZ + λ·diag) m = ZY + λ·diag·1 for the multipliers m, and sets the costs. */
  private refit(): void {
    const n = FEATURES;
    const a = new Float64Array(n * (n + 1));
    let trace = 0;
    for (let i = 0; i < n; i++) trace += this.zz[i * n + i]!;
    for (let i = 0; i < n; i++) {
      const ridge = (i === REQUEST ? RIDGE_REQUEST : RIDGE) * this.zz[i * n + i]! + 1e-9 * (trace + 1);
      for (let j = 0; j < n; j++) a[i * (n + 1) + j] = this.zz[i * n + j]! + (i === j ? ridge : 0);
      a[i * (n + 1) + n] = this.zy[i]! + ridge;
    }
    const m = solve(a, n);
    if (!m) return;
    for (let i = 0; i < n; i++) {
      const [lo, hi] = i === REQUEST ? [0, MAX_TEMPLATE / PRIOR[i]!] : [1 / MAX_OFF, MAX_OFF];
      this.costs[i] = PRIOR[i]! * Math.min(hi, Math.max(lo, m[i]!));
    }
  }
}

/** Requests smaller than this teach too little. */
const MIN_TOKENS = 16;
/** A class's cost stays within this factor of its prior; so does a count to be learned from. */
const MAX_OFF = 4;
/** Once calibrated, a count further than this from the estimate is not learned from. */
const OUTLIER = 0.6;
/** Weight of each earlier answer relative to the next. */
const DECAY = 0.95;
/** How firmly a class's multiplier is held at 1, relative to what the answers say of it. */
const RIDGE = 0.05;
/** The same for the fixed cost of a request: loosely, so that it takes what small requests cannot place. */
const RIDGE_REQUEST = 0.001;
/** The most a template is taken to add to every prompt, in tokens. */
const MAX_TEMPLATE = 2048;

/** Gaussian elimination with partial pivoting on an n × (n+1) augmented matrix. */
function solve(a: Float64Array, n: number): Float64Array | undefined {
  const w = n + 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(a[r * w + col]!) > Math.abs(a[pivot * w + col]!)) pivot = r;
    if (Math.abs(a[pivot * w + col]!) < 1e-12) return undefined;
    if (pivot !== col) {
      for (let k = 0; k < w; k++) {
        const t = a[col * w + k]!;
        a[col * w + k] = a[pivot * w + k]!;
        a[pivot * w + k] = t;
      }
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const factor = a[r * w + col]! / a[col * w + col]!;
      if (factor === 0) continue;
      for (let k = col; k < w; k++) a[r * w + k]! -= factor * a[col * w + k]!;
    }
  }
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = a[i * w + n]! / a[i * w + i]!;
  return x;
}
