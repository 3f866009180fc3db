import { execFileSync } from "node:child_process";
import { connect } from "node:net";

/** Whether something accepts connections at host:port now. */
export function portTaken(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (taken: boolean) => {
      s.destroy();
      resolve(taken);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/** The process listening on a TCP port, in words (`pid 123 (llama-server)`), where the system says. */
export function portHolder(port: number): string | undefined {
  try {
    // Linux: ss names the process of each listening socket
    const out = execFileSync("ss", ["-Hltnp", `sport = :${port}`], { encoding: "utf8", timeout: 2000 });
    const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(out);
    if (m) return `pid ${m[2]} (${m[1]})`;
  } catch {}
  try {
    // macOS and others
    const out = execFileSync("lsof", ["-nP", `-iTCP:${port}`, "-sTCP:LISTEN", "-Fpc"], {
      encoding: "utf8",
      timeout: 2000,
    });
    const pid = /^p(\d+)/m.exec(out)?.[1];
    const cmd = /^c(.+)/m.exec(out)?.[1];
    if (pid) return `pid ${pid}${cmd ? ` (${cmd})` : ""}`;
  } catch {}
  return undefined;
}
