import type { Logger } from "../log.js";
import type { Event, Request } from "../ir/types.js";
import type { ModelProfile } from "../routing/profile.js";

/** What a stage knows of the request it works on. */
export interface StageContext {
  profile: ModelProfile;
  log: Logger;
  /** Things changed or dropped on the way, for the log and the counters ("what: why"). */
  notes: string[];
}

/** A request stage reshapes the request for its target. */
export type RequestStage = (req: Request, ctx: StageContext) => Request;

/** A response stage transforms the event stream. */
export type ResponseStage = (
  events: AsyncIterable<Event>,
  req: Request,
  ctx: StageContext,
) => AsyncIterable<Event>;
