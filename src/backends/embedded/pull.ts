/**
 * `clawbridge pull`: a GGUF downloaded into the models folder — resumed from its `.part` file with
 * a Range request, its SHA-256 checked when the source gives one (`--sha256`, Hugging Face's
 * `x-linked-etag`, an ETag that is a SHA-256), its metadata checked before it is kept.
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import http from "node:http";
import https from "node:https";
import { basename, join } from "node:path";
import { inspectGguf } from "./gguf.js";

export class PullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PullError";
  }
}

/**
 * A URL from what the user typed: an http(s) URL as it is; `hf:owner/repo/path/file.gguf`
 * (`hf:owner/repo@revision/file.gguf`) as Hugging Face's download URL ($HF_ENDPOINT, default
 * https://huggingface.co).
 */
export function resolveSource(source: string, env: NodeJS.ProcessEnv = process.env): string {
  if (/^https?:\/\//i.test(source)) return source;
  const m = /^(?:hf:|huggingface:|hf\.co\/)([^/\s]+)\/([^/@\s]+)(?:@([^/\s]+))?\/(.+\.gguf)$/i.exec(source);
  if (m) {
    const [, owner, repo, revision, file] = m;
    const base = (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, "");
    const path = file!.split("/").map(encodeURIComponent).join("/");
    return `${base}/${owner}/${repo}/resolve/${encodeURIComponent(revision ?? "main")}/${path}`;
  }
  throw new PullError(
    `cannot tell where to download '${source}' from: give an http(s) URL of a .gguf file, or hf:owner/repo/file.gguf`,
  );
}

/** The SHA-256 a response header states, if one does (Hugging Face's x-linked-etag, a SHA-256 ETag). */
export function checksumFromHeaders(headers: http.IncomingHttpHeaders): string | undefined {
  for (const name of ["x-linked-etag", "x-checksum-sha256", "etag"]) {
    const raw = headers[name];
    const v = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    const m = v && /^(?:W\/)?"?([0-9a-f]{64})"?$/i.exec(v);
    if (m) return m[1]!.toLowerCase();
  }
  return undefined;
}

export interface Progress {
  received: number;
  total?: number;
  /** Bytes that were already there (resumed). */
  resumedFrom: number;
}

export interface PullOptions {
  /** The folder to write to. */
  dir: string;
  /** The file name (default: the URL's last path segment). */
  name?: string;
  /** The expected SHA-256 (hex); wins over what the server says. */
  sha256?: string;
  onProgress?: (p: Progress) => void;
  /** Said once, when the download resumes or is checked. */
  onNote?: (line: string) => void;
  signal?: AbortSignal;
  /** Gives up on a connection that sends nothing for this long (default 60 s). */
  idleMs?: number;
}

export interface Pulled {
  path: string;
  bytes: number;
  sha256: string;
  /** Where the expected checksum came from, or undefined when none was given. */
  checkedAgainst?: "option" | "server";
  resumedFrom: number;
}

interface Opened {
  res: http.IncomingMessage;
  /** A checksum seen on any hop (Hugging Face puts it on the redirect). */
  checksum?: string;
  url: string;
}

function request(
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
  idleMs = 60_000,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const lib = url.startsWith("https:") ? https : http;
    const req = lib.get(url, {
      headers: { "user-agent": "clawbridge-pull", ...headers },
      ...(signal ? { signal } : {}),
    });
    req.setTimeout(idleMs, () =>
      req.destroy(new PullError(`no answer from ${new URL(url).host} for ${idleMs / 1000} s`)),
    );
    req.on("response", resolve);
    req.on("error", reject);
  });
}

async function open(url: string, from: number, signal?: AbortSignal, idleMs?: number): Promise<Opened> {
  let checksum: string | undefined;
  for (let hop = 0; hop < 10; hop++) {
    const res = await request(url, from > 0 ? { range: `bytes=${from}-` } : {}, signal, idleMs);
    checksum ??= checksumFromHeaders(res.headers);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      url = new URL(res.headers.location, url).toString();
      continue;
    }
    return { res, url, ...(checksum ? { checksum } : {}) };
  }
  throw new PullError(`too many redirects from ${url}`);
}

/** The SHA-256 of a file, read as a stream. */
function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (d) => h.update(d))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** A failure to connect, in plain words (not `connect ECONNREFUSED 127.0.0.1:9`). */
export function plainly(url: string, e: unknown): unknown {
  if (e instanceof PullError || (e as Error)?.name === "AbortError") return e;
  const code = (e as NodeJS.ErrnoException)?.code ?? "";
  const host = new URL(url).host;
  const what =
    code === "ECONNREFUSED"
      ? `nothing answers at ${host} (connection refused): is the address right, and the server running?`
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? `the host ${new URL(url).hostname} is not known: check its spelling, and that this machine is online`
        : code === "ECONNRESET"
          ? `${host} closed the connection before answering: try again`
          : code === "ETIMEDOUT" || code === "ENETUNREACH" || code === "EHOSTUNREACH"
            ? `${host} cannot be reached from this machine (the network or a firewall)`
            : /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)
              ? `${host}'s TLS certificate is not trusted (${code})`
              : undefined;
  return what ? new PullError(`cannot download ${url}: ${what}`) : e;
}

/** Downloads a GGUF into `opts.dir`, resuming a `.part` left by an earlier attempt. */
export async function pull(url: string, opts: PullOptions): Promise<Pulled> {
  const name = opts.name ?? decodeURIComponent(basename(new URL(url).pathname));
  if (!name || name.includes("/") || name === "." || name === "..")
    throw new PullError(`cannot name the file from ${url}: give --name`);
  mkdirSync(opts.dir, { recursive: true });
  const dest = join(opts.dir, name);
  if (existsSync(dest)) throw new PullError(`${dest} exists already (remove it first to download it again)`);
  const part = `${dest}.part`;
  let from = existsSync(part) ? statSync(part).size : 0;

  let opened: Opened;
  try {
    opened = await open(url, from, opts.signal, opts.idleMs);
  } catch (e) {
    throw plainly(url, e);
  }
  const { res, checksum: fromServer } = opened;
  const status = res.statusCode ?? 0;
  let total: number | undefined;
  if (status === 416 && from > 0) {
    // the part is the whole file already (a pull stopped between the last byte and the rename)
    res.resume();
    total = from;
  } else if (status === 206 && from > 0) {
    const range = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(String(res.headers["content-range"] ?? ""));
    if (!range || Number(range[1]) !== from) {
      res.resume();
      throw new PullError(
        `the server answered the resume with the wrong range (${res.headers["content-range"]})`,
      );
    }
    if (range[3] !== "*") total = Number(range[3]);
    opts.onNote?.(`resuming at ${formatBytes(from)}`);
  } else if (status === 200) {
    if (from > 0) opts.onNote?.("the server cannot resume: starting over");
    from = 0;
    const length = Number(res.headers["content-length"]);
    if (Number.isFinite(length) && length > 0) total = length;
  } else {
    res.resume();
    throw new PullError(`${url}: the server answered ${status} ${res.statusMessage ?? ""}`.trim());
  }

  if (status !== 416) {
    const resumedFrom = from;
    await new Promise<void>((resolve, reject) => {
      const file = createWriteStream(part, { flags: from > 0 ? "a" : "w" });
      let received = from;
      let last = 0;
      res.on("data", (d: Buffer) => {
        received += d.length;
        const now = performance.now();
        if (now - last > 100) {
          last = now;
          opts.onProgress?.({ received, resumedFrom, ...(total !== undefined ? { total } : {}) });
        }
      });
      res.on("aborted", () =>
        reject(
          new PullError(
            `the connection broke at ${formatBytes(received)}: run the same pull again to resume`,
          ),
        ),
      );
      res.on("error", (e) =>
        reject(
          new PullError(
            `the download broke at ${formatBytes(received)} (${e.message}): run the same pull again to resume`,
          ),
        ),
      );
      file.on("error", reject);
      file.on("finish", () => {
        opts.onProgress?.({ received, resumedFrom, ...(total !== undefined ? { total } : {}) });
        resolve();
      });
      res.pipe(file);
    });
  }

  const bytes = statSync(part).size;
  if (total !== undefined && bytes !== total)
    throw new PullError(
      `the download stopped at ${formatBytes(bytes)} of ${formatBytes(total)}: run the same pull again to resume`,
    );
  const sha256 = await sha256File(part);
  const expected = opts.sha256?.toLowerCase() ?? fromServer;
  if (expected && sha256 !== expected) {
    rmSync(part, { force: true });
    throw new PullError(
      `checksum mismatch: expected sha256 ${expected}, got ${sha256}; the download was removed`,
    );
  }
  try {
    await inspectGguf(part);
  } catch (e) {
    // what the server sent is no model at all (a login or error page): nothing of it is kept
    rmSync(part, { force: true });
    throw new PullError(
      `${(e as Error).message}: the server sent ${formatBytes(bytes)} of ${
        String(res.headers["content-type"] ?? "").split(";")[0] || "something else"
      }, not a model (a login page or a wrong link?); nothing was kept`,
    );
  }
  renameSync(part, dest);
  return {
    path: dest,
    bytes,
    sha256,
    ...(expected ? { checkedAgainst: opts.sha256 ? ("option" as const) : ("server" as const) } : {}),
    resumedFrom: from,
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** A one-line progress bar for a terminal (`\r` redraws it), or a line per 10% elsewhere. */
export function progressPrinter(out: NodeJS.WriteStream): (p: Progress) => void {
  const started = performance.now();
  let lastDecile = -1;
  return (p) => {
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? (p.received - p.resumedFrom) / secs : 0;
    const frac = p.total ? Math.min(1, p.received / p.total) : undefined;
    const eta = frac !== undefined && rate > 0 ? Math.round((p.total! - p.received) / rate) : undefined;
    const figures = `${formatBytes(p.received)}${p.total ? ` / ${formatBytes(p.total)}` : ""}  ${formatBytes(rate)}/s${eta !== undefined ? `  ${eta} s left` : ""}`;
    if (out.isTTY) {
      const width = 30;
      const bar =
        frac === undefined
          ? ""
          : `[${"#".repeat(Math.round(frac * width)).padEnd(width, ".")}] ${(frac * 100).toFixed(0).padStart(3)}%  `;
      out.write(`\r${bar}${figures}\u001b[K`);
      if (frac === 1) out.write("\n");
    } else {
      const decile =
        frac === undefined ? Math.floor(p.received / (100 * 1024 * 1024)) : Math.floor(frac * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        out.write(`${frac !== undefined ? `${(frac * 100).toFixed(0)}%  ` : ""}${figures}\n`);
      }
    }
  };
}
