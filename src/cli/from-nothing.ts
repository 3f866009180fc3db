import { offerModel } from "../setup/offer.js";

/**
 * What `launch` does when no model server answers and no model is on disk: offers the model that fits this
 * machine (src/setup/offer.ts: the catalogue, the pick by memory, the pull with its progress and checksum), asked
 * on a terminal or taken at once with `--yes`. True when a model was pulled (the caller then finds it on disk and
 * serves it in-process); otherwise the offer has said what to do instead.
 */
export async function noServerNoModel(client: string, yes: boolean): Promise<boolean> {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say(
    `clawbridge launch ${client}: no clawbridge is running, no local server answered, and no GGUF model is on disk.`,
  );
  const pulled = await offerModel({
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    yes,
    log: say,
  });
  return pulled !== undefined;
}
