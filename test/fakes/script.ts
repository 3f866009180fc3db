/**
 * Shared types for the fake backends (Ollama, OpenAI-compatible servers, Anthropic).
 * A test scripts what the "model" answers with a ScriptedReply; each fake encodes it in its backend's wire format.
 */

export interface ScriptedToolCall {
  id?: string;
  name: string;
  /** An object is JSON-encoded by the fake; a raw string is sent verbatim (use it for malformed arguments). */
  arguments: Record<string, unknown> | string;
}

export interface ScriptedReply {
  /** Assistant text content. */
  text?: string;
  /** Thinking text (openai-compat: `reasoning_content` delta; ollama: message.thinking; anthropic: thinking block). */
  reasoning?: string;
  toolCalls?: ScriptedToolCall[];
  /**
   * Default: tool_calls when toolCalls present, else stop.
   * The anthropic fake maps to end_turn / max_tokens / tool_use; ollama to done_reason "stop" / "length".
   */
  finishReason?: "stop" | "length" | "tool_calls";
  /**
   * The answer ended on this stop sequence (one the request asked for; the text excludes it, as the
   * servers do). Only a server that says which stopped it reports it: vLLM's `stop_reason`.
   */
  stopSequence?: string;
  /** Default: prompt = a rough count of the request, completion = chunks sent. */
  usage?: { prompt: number; completion: number };
  /** Characters per streamed text chunk (and per tool-argument delta), default 4. */
  chunkSize?: number;
  /**
   * Streaming: the text chunks are sent this many times over, one after the other (default 1). They are sent
   * as they are made, so an answer of any length costs the fake no memory: `text` of 64 KiB sent 1600 times is
   * a 100 MiB answer. Usage counts are the script's or those of one pass.
   */
  repeat?: number;
  fault?: Fault;
}

/**
 * `unfinished` leaves out what says the answer is over, the rest as usual: OpenAI-style servers send no chunk with
 * a `finish_reason` (their `data: [DONE]` still comes), Ollama no `done: true` line, Anthropic no `message_stop`.
 * A non-streaming body is sent whole. `garbageAfterEnd` sends the malformed chunk after the last one (a
 * non-streaming body: after the body, within its length).
 *
 * "Chunks" are the units of the stream on the wire: one SSE event (OpenAI-style `data:` frame, or Anthropic
 * `event:`+`data:` pair) or one NDJSON line (Ollama). The role chunk and the final chunks count too.
 * For a non-streaming request the body counts as one chunk: `resetAfterChunks`/`hangAfterChunks` with N >= 1
 * send the headers and the first half of the body; `malformed` truncates the body and appends garbage.
 */
export type Fault =
  // answer with this status and body (text/plain when the body is not JSON, unless the headers name a type)
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "delayFirstByte"; ms: number } // wait before sending headers (slow model load)
  | { kind: "delayBetweenChunks"; ms: number }
  | { kind: "resetBeforeHeaders" } // destroy socket without answering
  | { kind: "resetAfterChunks"; chunks: number } // stream N chunks then destroy the socket
  | { kind: "hangBeforeHeaders" } // never answer (until closed)
  | { kind: "hangAfterChunks"; chunks: number } // stream N chunks then go silent, socket open
  | { kind: "malformed"; afterChunks?: number } // send a garbage line/event in the stream
  | { kind: "emptyStream" } // 200 with headers and then end with no events at all
  | { kind: "unfinished" } // streaming: the stream ends without its finish marker (see below)
  | { kind: "garbageAfterEnd" } // after the last chunk (the finish marker, `[DONE]`), a garbage line/event
  | { kind: "slowLoad"; ms: number; chunkMs: number }; // no headers for ms (a model loading), then a chunk every chunkMs

export type ReplyFn = (req: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

export interface RecordedRequest {
  method: string;
  /** The request target as sent (path and query string). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The headers as they came: names and values in turn, in their order, repeats kept. */
  rawHeaders?: string[];
  /** Parsed JSON when the body is JSON, the raw text when it is not, undefined when there is none. */
  body: any;
  /** Chat requests: the prompt's tokens as the fake counted them (tokenizer.ts) and the window in effect. */
  prompt?: { tokens: number; window: number };
  /** llama.cpp: the slot that served it and the prompt tokens its cache held. */
  cache?: { slot: number; cached: number };
  /** performance.now() when the request had been read. */
  receivedAt?: number;
  /** performance.now() when its response closed: finished, or the client (the gateway) went away. */
  closedAt?: number;
  /** Whether the response was sent to its end (false: the connection closed before). */
  completed?: boolean;
}

export interface FakeServer {
  /** Base URL without any API prefix, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Every request received, in arrival order (all endpoints, including rejected ones). */
  requests: RecordedRequest[];
  setReply(fn: ReplyFn | ScriptedReply): void;
  /**
   * Whether connections are kept alive after a response (default true, as the real servers do); false: every
   * response says `Connection: close` and the fake closes the connection after it. The tinygrad flavor always
   * closes (its bodies are delimited by the close).
   */
  setKeepAlive(on: boolean): void;
  /** Destroys every open socket and clears every timer; pending hangs end. */
  close(): Promise<void>;
}
