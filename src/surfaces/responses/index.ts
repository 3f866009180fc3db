import type { Surface } from "../types.js";
import { decodeResponsesRequest } from "./decode.js";
import { ResponsesStreamEncoder, encodeResponsesError, encodeResponsesResponse } from "./encode.js";
import { ResponseStore } from "./store.js";

/**
 * OpenAI's Responses API (`POST /v1/responses`: Codex, the AI SDK's default OpenAI provider,
 * OpenClaw's `openai-responses`). Each gateway has its own store of recent responses, which
 * `previous_response_id` and `item_reference` read.
 */
export function createResponsesSurface(store = new ResponseStore()): Surface & { store: ResponseStore } {
  return {
    name: "responses",
    idPrefix: "resp_",
    store,
    decode: (body) => decodeResponsesRequest(body, store),
    streamEncoder: (req, meta) => new ResponsesStreamEncoder(store, req, meta),
    encodeResponse: (res, req, meta) => encodeResponsesResponse(store, res, req, meta),
    encodeError: encodeResponsesError,
  };
}
