/**
 * GGUF (v2/v3), the file format of llama.cpp's models: a reader for the header and the metadata
 * (never the weights), to describe a model and to check it before the engine gets it — a file
 * missing some keys aborts the whole process inside the engine (a native assert), so nothing
 * goes to it unchecked — and a writer, for the tiny test model the project generates.
 *
 * Layout: magic `GGUF`, version (u32), tensor count (u64), metadata count (u64), the metadata
 * as key (string) + type (u32) + value, the tensor infos (name, dims, type, offset), padding to
 * `general.alignment` (32), the tensor data. Little-endian throughout.
 */
import { open } from "node:fs/promises";

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufHeader {
  version: number;
  tensorCount: number;
  /** Every metadata key and its value. Arrays longer than `arrayLimit` keep their length only. */
  metadata: Map<string, GgufValue>;
  /** The length of each array, including the ones cut short. */
  arrayLengths: Map<string, number>;
}

export class GgufError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "GgufError";
  }
}

/** Reads a file piece by piece, asking the disk only for what the next value needs. */
class Cursor {
  private buf = Buffer.alloc(0);
  private at = 0;
  /** Where `buf` starts in the file. */
  private base = 0;
  private eof = false;

  constructor(
    private readonly fh: import("node:fs/promises").FileHandle,
    private readonly file: string,
  ) {}

  get position(): number {
    return this.base + this.at;
  }

  private async need(n: number): Promise<void> {
    if (this.buf.length - this.at >= n) return;
    if (this.eof)
      throw new GgufError(this.file, "the file ends inside its metadata (truncated or not a GGUF)");
    const keep = this.buf.subarray(this.at);
    const want = Math.max(n - keep.length, 1 << 20);
    const chunk = Buffer.alloc(want);
    const { bytesRead } = await this.fh.read(chunk, 0, want, this.base + this.buf.length);
    if (bytesRead < want) this.eof = true;
    this.base += this.at;
    this.buf = Buffer.concat([keep, chunk.subarray(0, bytesRead)]);
    this.at = 0;
    if (this.buf.length < n)
      throw new GgufError(this.file, "the file ends inside its metadata (truncated or not a GGUF)");
  }

  async u8(): Promise<number> {
    await this.need(1);
    return this.buf.readUInt8(this.at++);
  }
  async u32(): Promise<number> {
    await this.need(4);
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  async u64(): Promise<bigint> {
    await this.need(8);
    const v = this.buf.readBigUInt64LE(this.at);
    this.at += 8;
    return v;
  }
  async count(what: string, max = 1e9): Promise<number> {
    const v = await this.u64();
    if (v > BigInt(max)) throw new GgufError(this.file, `implausible ${what} (${v}): a damaged file`);
    return Number(v);
  }
  async scalar(type: GgufType): Promise<GgufValue> {
    const size = SIZES[type];
    if (size === undefined) throw new GgufError(this.file, `unknown metadata value type ${type}`);
    await this.need(size);
    const b = this.buf;
    const at = this.at;
    this.at += size;
    switch (type) {
      case GgufType.UINT8:
        return b.readUInt8(at);
      case GgufType.INT8:
        return b.readInt8(at);
      case GgufType.UINT16:
        return b.readUInt16LE(at);
      case GgufType.INT16:
        return b.readInt16LE(at);
      case GgufType.UINT32:
        return b.readUInt32LE(at);
      case GgufType.INT32:
        return b.readInt32LE(at);
      case GgufType.FLOAT32:
        return b.readFloatLE(at);
      case GgufType.BOOL:
        return b.readUInt8(at) !== 0;
      case GgufType.UINT64:
        return asNumber(b.readBigUInt64LE(at));
      case GgufType.INT64:
        return asNumber(b.readBigInt64LE(at));
      default:
        return b.readDoubleLE(at);
    }
  }
  async string(): Promise<string> {
    const n = await this.count("string length", 1 << 28);
    await this.need(n);
    const s = this.buf.toString("utf8", this.at, this.at + n);
    this.at += n;
    return s;
  }
  async skip(n: number): Promise<void> {
    // big skips (a long token list) go through `need` in 1 MiB steps
    while (n > 0) {
      const step = Math.min(n, 1 << 20);
      await this.need(step);
      this.at += step;
      n -= step;
    }
  }
}

const SIZES: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

function asNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Reads a GGUF file's header and metadata. Arrays longer than `arrayLimit` (the token list, the
 * merges) are skipped over, their length kept in `arrayLengths`. Throws GgufError for a file that
 * is not a GGUF, is truncated or is damaged.
 */
async function readGgufHeader(
  file: string,
  arrayLimit = 64,
  /** Arrays read whole whatever their length. */
  keep: ReadonlySet<string> = new Set(),
): Promise<GgufHeader> {
  let fh: import("node:fs/promises").FileHandle;
  try {
    fh = await open(file, "r");
  } catch (e) {
    throw new GgufError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  try {
    const c = new Cursor(fh, file);
    const magic = await c.u32().catch(() => -1);
    if (magic !== GGUF_MAGIC) throw new GgufError(file, "not a GGUF file (no GGUF magic at the start)");
    const version = await c.u32();
    if (version < 2 || version > 3)
      throw new GgufError(file, `GGUF version ${version} is not supported (2 and 3 are)`);
    const tensorCount = await c.count("tensor count", 1e7);
    const kvCount = await c.count("metadata count", 1e6);
    const metadata = new Map<string, GgufValue>();
    const arrayLengths = new Map<string, number>();
    for (let i = 0; i < kvCount; i++) {
      const key = await c.string();
      const type = (await c.u32()) as GgufType;
      if (type === GgufType.ARRAY) {
        const elem = (await c.u32()) as GgufType;
        const n = await c.count(`length of ${key}`);
        arrayLengths.set(key, n);
        if (n > arrayLimit && !keep.has(key)) {
          if (elem === GgufType.STRING)
            for (let j = 0; j < n; j++) await c.skip(await c.count("string length"));
          else if (SIZES[elem] !== undefined) await c.skip(n * SIZES[elem]!);
          else throw new GgufError(file, `metadata ${key}: arrays of type ${elem} are not supported`);
          metadata.set(key, []);
        } else {
          const values: GgufValue[] = [];
          for (let j = 0; j < n; j++)
            values.push(elem === GgufType.STRING ? await c.string() : await c.scalar(elem));
          metadata.set(key, values);
        }
      } else if (type === GgufType.STRING) metadata.set(key, await c.string());
      else metadata.set(key, await c.scalar(type));
    }
    return { version, tensorCount, metadata, arrayLengths };
  } finally {
    await fh.close();
  }
}

/** What a model's metadata says, for serving it and for checking it. */
export interface GgufInfo {
  architecture: string;
  name?: string;
  /** The context length it was trained with. */
  contextLength?: number;
  chatTemplate?: string;
  vocabSize?: number;
  layers?: number;
  /** KV cache bytes per token at f16. */
  kvBytesPerToken?: number;
}

/**
 * Checks that the metadata has what the engine needs to load the model without aborting the
 * process: the architecture, its sizes and heads, the tokenizer. Returns what it says, or throws a
 * GgufError naming the missing keys.
 */
function checkGgufMetadata(file: string, h: GgufHeader): GgufInfo {
  const m = h.metadata;
  const arch = m.get("general.architecture");
  if (typeof arch !== "string" || !arch)
    throw new GgufError(file, "not a loadable model: metadata has no general.architecture");
  const required = [
    `${arch}.context_length`,
    `${arch}.embedding_length`,
    `${arch}.block_count`,
    `${arch}.feed_forward_length`,
    `${arch}.attention.head_count`,
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
  ];
  // the norm's epsilon: llama-like models have an RMS norm, others a layer norm; one of the two
  const missing = required.filter((k) => !m.has(k));
  if (!m.has(`${arch}.attention.layer_norm_rms_epsilon`) && !m.has(`${arch}.attention.layer_norm_epsilon`))
    missing.push(`${arch}.attention.layer_norm_rms_epsilon`);
  if (missing.length)
    throw new GgufError(
      file,
      `not a loadable model: metadata lacks ${missing.join(", ")} (the engine would abort on it)`,
    );
  const num = (k: string): number | undefined => {
    const v = m.get(k);
    if (typeof v === "number") return v;
    if (Array.isArray(v) && v.length && v.every((x) => typeof x === "number"))
      return Math.max(...(v as number[]));
    return undefined;
  };
  for (const k of [`${arch}.embedding_length`, `${arch}.block_count`, `${arch}.attention.head_count`]) {
    const v = num(k);
    if (v === undefined || !Number.isInteger(v) || v <= 0)
      throw new GgufError(file, `not a loadable model: ${k} is ${JSON.stringify(String(m.get(k)))}`);
  }
  const info: GgufInfo = { architecture: arch };
  const name = m.get("general.name");
  if (typeof name === "string") info.name = name;
  const ctx = num(`${arch}.context_length`);
  if (ctx) info.contextLength = ctx;
  const template = m.get("tokenizer.chat_template");
  if (typeof template === "string") info.chatTemplate = template;
  const vocab = h.arrayLengths.get("tokenizer.ggml.tokens");
  if (vocab !== undefined) info.vocabSize = vocab;
  const layers = num(`${arch}.block_count`);
  if (layers) info.layers = layers;
  const heads = num(`${arch}.attention.head_count`)!;
  const kvHeads = num(`${arch}.attention.head_count_kv`) ?? heads;
  const headDim = num(`${arch}.embedding_length`)! / heads;
  const k = num(`${arch}.attention.key_length`) ?? headDim;
  const v = num(`${arch}.attention.value_length`) ?? headDim;
  info.kvBytesPerToken = Math.round(info.layers! * kvHeads * (k + v) * 2);
  return info;
}

/**
 * The ids of a SentencePiece vocabulary's byte tokens for bytes 0x80–0xFF (`<0x80>`…): a
 * grammar-constrained answer bans them, since one alone is a broken UTF-8 sequence.
 */
export async function highByteTokens(file: string): Promise<number[]> {
  const h = await readGgufHeader(file, 64, new Set(["tokenizer.ggml.tokens", "tokenizer.ggml.token_type"]));
  const tokens = h.metadata.get("tokenizer.ggml.tokens");
  const types = h.metadata.get("tokenizer.ggml.token_type");
  if (!Array.isArray(tokens) || !Array.isArray(types)) return [];
  const out: number[] = [];
  tokens.forEach((t, i) => {
    if (types[i] === 6 && typeof t === "string" && /^<0x[89A-F][0-9A-F]>$/i.test(t)) out.push(i);
  });
  return out;
}

/** Reads and checks a GGUF file in one step. */
export async function inspectGguf(file: string): Promise<GgufInfo> {
  return checkGgufMetadata(file, await readGgufHeader(file));
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** A metadata value with its GGUF type. */
export type GgufEntry =
  | { type: GgufType.STRING; value: string }
  | { type: GgufType.UINT32 | GgufType.INT32 | GgufType.FLOAT32 | GgufType.UINT8; value: number }
  | { type: GgufType.BOOL; value: boolean }
  | { type: GgufType.ARRAY; elem: GgufType.STRING; value: string[] }
  | { type: GgufType.ARRAY; elem: GgufType.FLOAT32 | GgufType.INT32 | GgufType.UINT32; value: number[] };

export interface GgufTensor {
  name: string;
  /** ggml's order: the fastest-varying dimension first. */
  dims: number[];
  /** F32 data, dims' product long. */
  data: Float32Array;
}

const ALIGNMENT = 32;

/** A whole GGUF v3 file: metadata and F32 tensors. */
export function writeGguf(metadata: Record<string, GgufEntry>, tensors: GgufTensor[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const str = (s: string) => {
    const b = Buffer.from(s, "utf8");
    u64(b.length);
    parts.push(b);
  };
  const scalar = (type: GgufType, v: number | boolean) => {
    const b = Buffer.alloc(SIZES[type]!);
    if (type === GgufType.UINT32) b.writeUInt32LE(v as number);
    else if (type === GgufType.INT32) b.writeInt32LE(v as number);
    else if (type === GgufType.FLOAT32) b.writeFloatLE(v as number);
    else if (type === GgufType.UINT8) b.writeUInt8(v as number);
    else if (type === GgufType.BOOL) b.writeUInt8(v ? 1 : 0);
    parts.push(b);
  };
  u32(GGUF_MAGIC);
  u32(3);
  u64(tensors.length);
  u64(Object.keys(metadata).length);
  for (const [key, e] of Object.entries(metadata)) {
    str(key);
    u32(e.type);
    if (e.type === GgufType.STRING) str(e.value);
    else if (e.type === GgufType.ARRAY) {
      u32(e.elem);
      u64(e.value.length);
      for (const v of e.value) {
        if (e.elem === GgufType.STRING) str(v as string);
        else scalar(e.elem, v as number);
      }
    } else scalar(e.type, e.value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(0); // GGML_TYPE_F32
    offsets.push(offset);
    u64(offset);
    offset += pad(t.data.byteLength);
  }
  const head = Buffer.concat(parts);
  const out = Buffer.alloc(pad(head.length) + offset);
  head.copy(out, 0);
  const dataStart = pad(head.length);
  tensors.forEach((t, i) => {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, dataStart + offsets[i]!);
  });
  return out;
}

function pad(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}
