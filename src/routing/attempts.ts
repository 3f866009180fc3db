import { countPrompt } from "../context/count.js";
import type { ExchangeHooks, ModelProfile, PromptProgress } from "../ir/contract.js";
import { GatewayError, toGatewayError } from "../ir/errors.js";
import { newAbort, type Signal } from "../ir/signal.js";
import type { Event, Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import { requestStages, responseStages, runStages, shapingStages } from "../stages/pipeline.js";
import type { NoteSubject, PromptCount, StageContext } from "../stages/types.js";
import type { BackendStates, PlaceObserver } from "./backend-state.js";
import { isBackendFailure } from "./breaker.js";
import type { LaneRules } from "./lanes.js";
import type { Target } from "./models.js";
import type { Slot } from "./queue.js";
import { RecentConversations } from "./conversations.js";
import { Attempt, DEFAULT_TIMEOUTS } from "./timeouts.js";

export interface RouteObserver extends PlaceObserver {
  /** Called with each note a stage made (dropped fields and the like): its subject and detail. */
  note?(subject: NoteSubject, detail: string): void;
  /** Called when the request is sent to a target: its backend and the model's name there. */
  sending?(backend: string, model: string): void;
  /** Called when the backend's response head arrives (it has loaded the model; it reads the prompt). */
  headers?(): void;
  /** Called with the body sent upstream; given, the HTTP client hands it over (capture). */
  upstream?(body: string | Buffer): void;
  /** Called for each thing a response stage did (a rescued tool call, a repair). */
  count?(what: string, n?: number): void;
  /** Called with the prompt tokens a backend reported: read afresh, and held by its cache (undefined: unknown). */
  promptTokens?(model: string, evaluated: number, cached: number | undefined): void;
  /** Called when routing moves on from a failed target. */
  switched?(from: ModelProfile, reason: GatewayError): void;
  /**
   * Called each time the backend reports reading the prompt (llama.cpp), with the request's phase
   * in words ("reading the prompt 12,000/20,000"): the hook for a live view of requests.
   */
  progress?(p: PromptProgress, phase: string): void;
}

/** An exchange's hooks that tell the observer too: the response head, the body sent. */
function watched(hooks: ExchangeHooks, observer: RouteObserver): ExchangeHooks {
  const { headers, upstream } = observer;
  return {
    ...hooks,
    onHeaders: () => {
      hooks.onHeaders?.();
      headers?.();
    },
    ...(upstream ? { onBody: upstream } : {}),
  };
}

/** The targets a model name resolves to, in the order they are tried. */
export type Resolve = (model: string) => readonly Target[];

/**
 * Runs a request on the targets its model resolves to: for each in turn, the request stages
 * (one runner for them all, `runStages`), a place at its backend, the backend under the
 * watchdog of the profile's time limits, the response stages. A target that fails before its
 * first event is left for the next; once an event went out nothing is retried.
 */
export class Attempts {
  /** Per backend, the last conversations it answered (the agent's own turns, not background work). */
  readonly recent = new Map<string, RecentConversations>();

  constructor(
    private readonly resolve: Resolve,
    private readonly backends: BackendStates,
    private readonly lanes: LaneRules,
  ) {}

  /** A stage context for one request on one target. */
  private context(req: Request, target: Target, signal: Signal, log: Logger): StageContext {
    return { profile: target.profile, state: target.state, log, notes: [], client: req, signal };
  }

  /**
   * The prompt tokens a request costs on the model it names (its first target), counted as it
   * would be sent: after the stages that reshape it, by the server where it can count.
   */
  async countTokens(req: Request, log: Logger): Promise<PromptCount> {
    const target = this.resolve(req.model)[0]!;
    const ctx = this.context(req, target, newAbort(), log);
    const shaped = await runStages(shapingStages, req, ctx);
    return countPrompt(shaped, target.state, true, log);
  }

  /**
   * A model that answered it does not support tools has them emulated for the rest of the
   * process, and the request is tried once more; the refusal never reaches the client.
   */
  private learnToolRefusal(err: GatewayError, target: Target, ctx: StageContext, log: Logger): boolean {
    if (err.code !== "tools_unsupported" || ctx.toolMode === "emulate" || ctx.toolMode === "strip")
      return false;
    target.state.refuseTools();
    log.warn(
      { model: target.profile.alias, backend: target.profile.backend.name, reason: err.message },
      "the model refused tools; emulating them from now on",
    );
    ctx.count?.("learned_emulate");
    return true;
  }

  /**
   * A model that answered it cannot think is no longer sent thinking (the thinking stage drops
   * it), and the request is tried once more; the refusal never reaches the client.
   */
  private learnThinkingRefusal(err: GatewayError, target: Target, sent: Request, log: Logger): boolean {
    if (err.code !== "thinking_unsupported" || sent.thinking.enabled === undefined) return false;
    if (target.state.supportsThinking === false) return false; // learned already: no second retry
    target.state.refuseThinking();
    log.warn(
      { model: target.profile.alias, backend: target.profile.backend.name, reason: err.message },
      "the model cannot think; thinking is not sent to it from now on",
    );
    return true;
  }

  /**
   * The one path from an IR request to an IR event stream: for each target in turn, its circuit
   * breaker, the request stages, a place in its backend's queue, then the backend under the
   * watchdog of the profile's time limits. A target that fails before its first event is left for
   * the next (a replica, then the fallback chain), each switch logged with its reason; once an
   * event went out nothing is retried.
   */
  async *stream(
    req: Request,
    signal: Signal,
    log: Logger,
    observer: RouteObserver = {},
  ): AsyncGenerator<Event[]> {
    const targets = this.resolve(req.model);
    const lane = this.lanes.laneOf(req);
    let lastError: GatewayError | undefined;
    /** The place held for the same target tried again (a learned tool refusal): it keeps its turn. */
    let kept: Slot | undefined;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      const { profile } = target;
      const backend = profile.backend;
      const next = targets[i + 1];
      const breaker = this.backends.get(backend.name)!.breaker;
      let slot = kept;
      kept = undefined;
      // An open circuit is skipped while another target can serve; the last one left is tried
      // all the same (an error either way, and an answer if the backend has recovered).
      let admission = breaker.admit();
      if (admission instanceof GatewayError) {
        lastError = admission;
        if (next) {
          slot?.release();
          this.switching(profile, next.profile, admission, log, observer);
          continue;
        }
        admission = "ok";
      }
      let heard = false;
      let counted = false;
      let attempt: Attempt | undefined;
      let iterator: AsyncIterator<Event[]> | undefined;
      try {
        const ctx = this.context(req, target, signal, log);
        if (observer.count) ctx.count = observer.count;
        const tokens = observer.promptTokens;
        if (tokens) ctx.promptTokens = (evaluated, cached) => tokens(profile.alias, evaluated, cached);
        const r = runStages(requestStages, req, ctx);
        const shaped = r instanceof Promise ? await r : r;
        if (ctx.notes.length) {
          log.debug({ notes: ctx.notes, backend: backend.name }, "request reshaped for the backend");
          for (const n of ctx.notes) observer.note?.(n.subject, n.detail);
        }
        const note = observer.note;
        if (note) ctx.answerNote = (n) => note(n.subject, n.detail);
        try {
          slot ??=
            this.backends.placeNow(backend, lane, observer) ??
            (await this.backends.place(backend, lane, signal, log, observer));
        } catch (e) {
          const err = toGatewayError(e);
          if (signal.aborted || !next) throw err;
          lastError = err;
          this.switching(profile, next.profile, err, log, observer);
          continue;
        }
        target.inFlight++;
        counted = true;
        attempt = new Attempt(
          signal,
          profile.timeouts ?? DEFAULT_TIMEOUTS,
          backend.name,
          log,
          observer.progress && ((p, phase) => observer.progress!(p, phase)),
        );
        observer.sending?.(backend.name, profile.model);
        let events = attempt.watch(
          backend.send(shaped, {
            profile,
            signal: attempt.signal,
            log,
            exchange:
              observer.headers || observer.upstream ? watched(attempt.hooks, observer) : attempt.hooks,
            ...(lane === "background" ? { background: true } : {}),
          }),
        );
        for (const stage of responseStages) events = stage(events, shaped, ctx);
        iterator = events[Symbol.asyncIterator]();
        let first: IteratorResult<Event[]>;
        try {
          first = await iterator.next();
        } catch (e) {
          const err = toGatewayError(e);
          if (signal.aborted) throw err; // the client left: no verdict on the backend
          lastError = err;
          heard = true;
          if (isBackendFailure(err)) breaker.failure(err);
          else if (err.upstreamStatus !== undefined)
            breaker.success(); // it answered: it is up
          else heard = false;
          if (
            this.learnToolRefusal(err, target, ctx, log) ||
            this.learnThinkingRefusal(err, target, shaped, log)
          ) {
            i--; // the same target again, now with emulated tools, in the same place
            kept = slot;
            continue;
          }
          if (!err.retryable || !next) throw err;
          this.switching(profile, next.profile, err, log, observer);
          continue;
        }
        heard = true;
        breaker.success();
        if (lane !== "background") {
          let recent = this.recent.get(backend.name);
          if (!recent) {
            recent = new RecentConversations();
            this.recent.set(backend.name, recent);
          }
          recent.note(shaped, profile);
        }
        if (first.done) return;
        yield first.value;
        for (;;) {
          let r: IteratorResult<Event[]>;
          try {
            r = await iterator.next();
          } catch (e) {
            const err = toGatewayError(e);
            if (!signal.aborted && isBackendFailure(err)) {
              breaker.failure(err);
              breaker.suspect = true;
              log.warn(
                { backend: backend.name, model: profile.alias, reason: err.message },
                "backend broke off an answer; marked suspect",
              );
            }
            throw err;
          }
          if (r.done) {
            breaker.suspect = false;
            return;
          }
          yield r.value;
        }
      } finally {
        if (!heard) breaker.settle(admission);
        // an attempt ended early (client gone, error, timeout) aborts its backend request first
        attempt?.dispose();
        await iterator?.return?.().catch(() => undefined);
        if (counted) target.inFlight--;
        if (slot && kept !== slot) slot.release();
      }
    }
    throw lastError ?? new GatewayError("api_error", `no target could serve '${req.model}'`);
  }

  /** Logs and counts a move from a failed target to the next. */
  private switching(
    from: ModelProfile,
    to: ModelProfile,
    reason: GatewayError,
    log: Logger,
    observer: RouteObserver,
  ): void {
    log.warn(
      {
        from: `${from.alias}@${from.backend.name}`,
        to: `${to.alias}@${to.backend.name}`,
        reason: reason.message,
        kind: reason.kind,
      },
      "target failed before answering; trying the next",
    );
    observer.switched?.(from, reason);
  }
}
