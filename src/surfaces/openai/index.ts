import type { Request } from "../../ir/types.js";
import type { Surface } from "../types.js";
import { decodeOpenAIRequest, type OpenAIRequestExtras } from "./decode.js";
import { OpenAIStreamEncoder, encodeOpenAIError, encodeOpenAIResponse } from "./encode.js";

export const openaiSurface: Surface = {
  name: "openai",
  idPrefix: "chatcmpl-",
  decode: decodeOpenAIRequest,
  streamEncoder: (req, meta) =>
    new OpenAIStreamEncoder(
      meta,
      (req as Request & { openai?: OpenAIRequestExtras }).openai?.includeUsage === true,
    ),
  encodeResponse: encodeOpenAIResponse,
  encodeError: encodeOpenAIError,
};
