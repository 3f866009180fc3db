import type { Surface } from "../types.js";
import { decodeAnthropicRequest } from "./decode.js";
import { AnthropicStreamEncoder, encodeAnthropicError, encodeAnthropicResponse } from "./encode.js";

export const anthropicSurface: Surface = {
  name: "anthropic",
  idPrefix: "msg_",
  decode: decodeAnthropicRequest,
  streamEncoder: (_req, meta) => new AnthropicStreamEncoder(meta),
  encodeResponse: encodeAnthropicResponse,
  encodeError: encodeAnthropicError,
};
