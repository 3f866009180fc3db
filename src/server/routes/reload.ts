/**
 * `POST /admin/reload`: re-reads the config file (what SIGHUP does), for `clawbridge reload`. Behind
 * the master key like every route but /health; its answer says whether the new config took effect,
 * or why not (the file:line of what is wrong).
 */
import { sendJson } from "../answer.js";
import type { Handler, ReloadOutcome } from "./route.js";

export const reload =
  (run: (() => Promise<ReloadOutcome>) | undefined): Handler =>
  async (_req, res) => {
    if (!run) {
      return sendJson(res, 409, {
        ok: false,
        error: "this gateway has no config file to re-read (it was started without one)",
      });
    }
    const outcome = await run();
    sendJson(res, outcome.ok ? 200 : 422, outcome);
  };
