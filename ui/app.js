// The dashboard's page: Preact + htm (no JSX step: esbuild bundles this file as it is, scripts/build.mjs).
// It reads the gateway's /_dashboard/ endpoints (src/server/routes/dashboard.ts) and its event stream.
import htm from "htm";
import { h, render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";

const html = htm.bind(h);

// ---- data ------------------------------------------------------------------------------------

async function getJson(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (r.status === 401) {
    location.href = "/";
    throw new Error("signed out");
  }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

/** The live feed: requests in flight, and a count of those finished (to refresh what lists them). */
function useFeed() {
  const [inFlight, setInFlight] = useState(() => new Map());
  const [finished, setFinished] = useState([]);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    const es = new EventSource("/_dashboard/events");
    es.addEventListener("open", () => setConnected(true));
    es.addEventListener("error", () => setConnected(false));
    es.addEventListener("snapshot", (m) => {
      setInFlight(new Map(JSON.parse(m.data).map((r) => [r.id, r])));
    });
    es.addEventListener("update", (m) => {
      const r = JSON.parse(m.data);
      setInFlight((prev) => new Map(prev).set(r.id, r));
    });
    es.addEventListener("done", (m) => {
      const e = JSON.parse(m.data);
      setInFlight((prev) => {
        const next = new Map(prev);
        next.delete(e.id);
        return next;
      });
      setFinished((prev) => [...prev.slice(-499), e]);
    });
    return () => es.close();
  }, []);
  return { inFlight: [...inFlight.values()], finished, connected };
}

/** Backends, models and queues, read again every two seconds. */
function useGatewayState() {
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stop = false;
    const load = () =>
      getJson("/_dashboard/api/state").then(
        (s) => {
          if (stop) return;
          setState(s);
          setError(null);
        },
        (e) => !stop && setError(String(e.message ?? e)),
      );
    load();
    const t = setInterval(load, 2000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, []);
  return { state, error };
}

function useRoute() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash.slice(1);
}

/** A clock that ticks every half second (elapsed times of requests in flight). */
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, []);
  return now;
}

// ---- formatting ------------------------------------------------------------------------------

const ms = (v) =>
  v === undefined || v === null ? "—" : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
const num = (v) => (v === undefined || v === null ? "—" : v.toLocaleString("en-US"));
const time = (at) => new Date(at).toLocaleTimeString("en-GB", { hour12: false });
const ago = (iso) => {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : `${Math.floor(s / 3600)} h ago`;
};
const statusClass = (e) =>
  e.outcome === "ok" ? "ok" : e.status === null || e.status >= 500 ? "bad" : e.status >= 400 ? "warn" : "bad";
const pretty = (text) => {
  if (!text) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
};

// ---- pieces ----------------------------------------------------------------------------------

function Badge({ kind, children }) {
  return html`<span class=${`badge ${kind}`}>${children}</span>`;
}

const STATE_KIND = { up: "ok", degraded: "warn", down: "bad" };
const PHASE_KIND = {
  received: "idle",
  waiting: "warn",
  loading: "info",
  "reading the prompt": "info",
  generating: "ok",
};

function Section({ title, aside, children }) {
  return html`<section class="card">
    <header><h2>${title}</h2>${aside ? html`<span class="aside">${aside}</span>` : null}</header>
    ${children}
  </section>`;
}

function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}

function Backends({ state }) {
  if (!state.backends.length) return html`<${Empty}>No backend is configured.<//>`;
  return html`<table>
    <thead><tr><th>Backend</th><th>Kind</th><th>URL</th><th>State</th><th>Since</th><th>Circuit</th><th>Running</th><th>Waiting (fg / bg)</th></tr></thead>
    <tbody>${state.backends.map(
      (b) => html`<tr data-backend=${b.name}>
        <td class="strong">${b.name}</td><td>${b.kind}</td><td class="mono dim">${b.url}</td>
        <td><${Badge} kind=${STATE_KIND[b.state] ?? "idle"}>${b.state}<//>${b.suspect ? html` <${Badge} kind="warn">suspect<//>` : null}
          ${b.reason ? html`<div class="reason">${b.reason}</div>` : null}</td>
        <td class="dim">${ago(b.since)}</td>
        <td>${b.circuit ?? "—"}${b.failures ? html` <span class="dim">(${b.failures} failed)</span>` : null}</td>
        <td class="num">${b.queue ? `${b.queue.running} / ${b.queue.limit ?? "∞"}` : "—"}</td>
        <td class="num">${b.queue ? `${b.queue.waiting.foreground} / ${b.queue.waiting.background}` : "—"}</td>
      </tr>`,
    )}</tbody></table>`;
}

function Models({ state }) {
  if (!state.models.length) return html`<${Empty}>No model is served.<//>`;
  return html`<table>
    <thead><tr><th>Model (as clients name it)</th><th>Served by</th><th>Context window</th><th>Window from</th><th>Available</th></tr></thead>
    <tbody>${state.models.map(
      (m) => html`<tr>
        <td class="strong mono">${m.id}</td><td class="mono">${m.backend}/${m.model}</td>
        <td class="num">${m.contextWindow ? num(m.contextWindow) : "—"}</td>
        <td class="dim">${m.windowFrom ?? "—"}</td>
        <td>${m.loaded ? html`<${Badge} kind="ok">listed<//>` : html`<${Badge} kind="bad">not listed<//>`}
          ${m.source === "discovered" ? html` <${Badge} kind="idle">discovered<//>` : null}</td>
      </tr>`,
    )}</tbody></table>`;
}

function InFlight({ inFlight }) {
  const now = useNow();
  if (!inFlight.length) return html`<${Empty}>No request in flight.<//>`;
  return html`<table class="inflight">
    <thead><tr><th>Request</th><th>Model</th><th>Served by</th><th>Client dialect</th><th>Phase</th><th>Elapsed</th></tr></thead>
    <tbody>${inFlight.map(
      (r) => html`<tr data-request=${r.id}>
        <td class="mono"><a href=${`#/requests/${r.id}`}>${r.id}</a></td>
        <td class="strong mono">${r.model ?? "—"}</td>
        <td class="mono dim">${r.backend ? `${r.backend}/${r.target}` : "—"}</td>
        <td>${r.surface}</td>
        <td><${Badge} kind=${PHASE_KIND[r.phase] ?? "idle"}><span class="pulse"></span>${r.phase}<//></td>
        <td class="num">${ms(now - r.at)}</td>
      </tr>`,
    )}</tbody></table>`;
}

function Queues({ state }) {
  const rows = state.backends.filter((b) => b.queue);
  if (!rows.length) return html`<${Empty}>No queue.<//>`;
  return html`<div class="queues">${rows.map((b) => {
    const { running, limit, waiting, maxQueue } = b.queue;
    const cap = limit ?? Math.max(running, 1);
    return html`<div class="queue">
      <div class="queue-name">${b.name}</div>
      <div class="slots">${Array.from({ length: Math.min(cap, 32) }, (_, i) => html`<span class=${i < running ? "slot busy" : "slot"}></span>`)}</div>
      <div class="dim">${running} running of ${limit ?? "no limit"} · foreground lane ${waiting.foreground} waiting · background lane ${waiting.background} waiting · at most ${maxQueue} queued</div>
    </div>`;
  })}</div>`;
}

function Overview({ state, feed }) {
  return html`<div class="grid">
    <${Section} title="Requests in flight" aside=${`${feed.inFlight.length} now`}><${InFlight} inFlight=${feed.inFlight} /><//>
    <${Section} title="Backends" aside=${state.config ?? "no config file"}><${Backends} state=${state} /><//>
    <${Section} title="Queues and lanes"><${Queues} state=${state} /><//>
    <${Section} title="Models"><${Models} state=${state} /><//>
  </div>`;
}

function RequestRows({ rows }) {
  if (!rows.length) return html`<${Empty}>No request matches.<//>`;
  return html`<table class="requests">
    <thead><tr><th>Time</th><th>Request</th><th>Model asked</th><th>Served by</th><th>Client</th><th>Status</th><th>Queue</th><th>First token</th><th>Duration</th><th>Tokens in / out / cached</th><th>tok/s</th><th>Changes</th></tr></thead>
    <tbody>${[...rows].reverse().map(
      (e) => html`<tr data-request=${e.id} class=${e.outcome === "ok" ? "" : "failed"}>
        <td class="dim">${time(e.at)}</td>
        <td class="mono"><a href=${`#/requests/${e.id}`}>${e.id.slice(0, 12)}…</a></td>
        <td class="strong mono">${e.model ?? "—"}</td>
        <td class="mono dim">${e.backend ? `${e.backend}/${e.target}` : "—"}</td>
        <td class="mono dim">${e.client}</td>
        <td><${Badge} kind=${statusClass(e)}>${e.status ?? "—"} ${e.outcome}<//></td>
        <td class="num">${ms(e.queueMs)}</td><td class="num">${ms(e.ttftMs)}</td><td class="num">${ms(e.durationMs)}</td>
        <td class="num">${num(e.tokensIn)} / ${num(e.tokensOut)} / ${num(e.tokensCached)}</td>
        <td class="num">${e.tokensPerSecond ? e.tokensPerSecond.toFixed(1) : "—"}</td>
        <td class="num">${e.notes.length || ""}</td>
      </tr>
      ${
        e.explanation
          ? html`<tr class="why" data-why=${e.id}><td></td><td colspan="11">
            <span class="why-detail">${e.explanation.detail}</span><span class="why-fix"><b>Fix:</b> ${e.explanation.fix}</span></td></tr>`
          : null
      }`,
    )}</tbody></table>`;
}

function Requests({ state, feed }) {
  const [filter, setFilter] = useState({ model: "", status: "", client: "" });
  const [rows, setRows] = useState(null);
  const last = feed.finished.length;
  useEffect(() => {
    const q = new URLSearchParams({ limit: "200" });
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
    let stop = false;
    getJson(`/_dashboard/api/requests?${q}`).then((r) => !stop && setRows(r.requests));
    return () => {
      stop = true;
    };
  }, [filter, last]);
  const set = (k) => (ev) => setFilter({ ...filter, [k]: ev.target.value });
  return html`<div class="grid">
    <${Section} title="Requests in flight" aside=${`${feed.inFlight.length} now`}><${InFlight} inFlight=${feed.inFlight} /><//>
    <${Section} title="Recent requests" aside=${rows ? `${rows.length} shown` : "loading"}>
      <form class="filters" onSubmit=${(e) => e.preventDefault()}>
        <label>Model <select name="model" value=${filter.model} onChange=${set("model")}>
          <option value="">any</option>${(state?.models ?? []).map((m) => html`<option value=${m.id}>${m.id}</option>`)}
        </select></label>
        <label>Status <select name="status" value=${filter.status} onChange=${set("status")}>
          <option value="">any</option><option value="ok">ok</option><option value="2xx">2xx</option>
          <option value="4xx">4xx</option><option value="5xx">5xx</option><option value="client_gone">client gone</option>
          <option value="timeout">timeout</option>
        </select></label>
        <label>Client <input name="client" placeholder="address, e.g. 127.0.0.1" value=${filter.client} onInput=${set("client")} /></label>
      </form>
      ${rows ? html`<${RequestRows} rows=${rows} />` : html`<${Empty}>Loading…<//>`}
    <//>
  </div>`;
}

function Body({ title, text, capture }) {
  return html`<${Section} title=${title}>
    ${text ? html`<pre class="body">${pretty(text)}</pre>` : html`<${Empty}>${capture ? "Not captured for this request." : "Bodies are kept only with journal.capture: true in the config."}<//>`}
  <//>`;
}

function Timeline({ events, total }) {
  const end = Math.max(total, ...events.map((t) => t.ms), 1);
  return html`<table class="timeline">
    <thead><tr><th>Event</th><th>At</th><th>Detail</th><th class="bar-col"></th></tr></thead>
    <tbody>${events.map(
      (
        t,
      ) => html`<tr><td>${t.event}</td><td class="num">${ms(t.ms)}</td><td class="mono dim">${t.detail ?? ""}</td>
        <td class="bar-col"><div class="bar"><span style=${`left:${(100 * t.ms) / end}%`}></span></div></td></tr>`,
    )}</tbody></table>`;
}

function Detail({ id, feed }) {
  const [e, setE] = useState(null);
  const [error, setError] = useState(null);
  const doneHere = feed.finished.some((f) => f.id === id);
  const live = feed.inFlight.find((r) => r.id === id);
  useEffect(() => {
    getJson(`/_dashboard/api/requests/${id}`).then(setE, (err) => setError(String(err.message ?? err)));
  }, [id, doneHere]);
  if (error) return html`<${Section} title="Request"><${Empty}>${error}<//><//>`;
  if (!e) return html`<${Section} title="Request"><${Empty}>Loading…<//><//>`;
  if (e.inFlight || (live && !doneHere))
    return html`<${Section} title=${`Request ${id}`}>
      <p>In flight: <${Badge} kind=${PHASE_KIND[(live ?? e).phase] ?? "idle"}>${(live ?? e).phase}<//> — <span class="strong mono">${e.model}</span>. Its detail appears when it ends.</p>
    <//>`;
  const b = e.bodies ?? {};
  return html`<div class="grid">
    <${Section} title=${`Request ${e.id}`} aside=${new Date(e.at).toLocaleString("en-GB")}>
      <dl class="facts">
        <dt>Model asked</dt><dd class="strong mono">${e.model ?? "—"}</dd>
        <dt>Served by</dt><dd class="mono">${e.backend ? `${e.backend}/${e.target}` : "—"}</dd>
        <dt>Route</dt><dd class="mono">${e.route} (${e.surface})</dd>
        <dt>Client</dt><dd class="mono">${e.client}</dd>
        <dt>Status</dt><dd><${Badge} kind=${statusClass(e)}>${e.status ?? "—"} ${e.outcome}<//></dd>
        <dt>Queue / first token / duration</dt><dd class="num">${ms(e.queueMs)} / ${ms(e.ttftMs)} / ${ms(e.durationMs)}</dd>
        <dt>Tokens in / out / cached</dt><dd class="num">${num(e.tokensIn)} / ${num(e.tokensOut)} / ${num(e.tokensCached)}${e.tokensPerSecond ? ` · ${e.tokensPerSecond.toFixed(1)} tok/s` : ""}</dd>
      </dl>
      ${e.explanation ? html`<div class="explain"><h3>What went wrong</h3><p>${e.explanation.detail}</p><h3>Fix</h3><p>${e.explanation.fix}</p></div>` : null}
    <//>
    <${Section} title="What the stages changed" aside=${`${e.notes.length} change${e.notes.length === 1 ? "" : "s"}`}>
      ${
        e.notes.length
          ? html`<table class="notes"><thead><tr><th>Subject</th><th>What was done, and why</th></tr></thead>
            <tbody>${e.notes.map((n) => html`<tr><td class="mono strong">${n.subject}</td><td>${n.detail}</td></tr>`)}</tbody></table>`
          : html`<${Empty}>Nothing was changed on the way.<//>`
      }
    <//>
    <${Section} title="Timeline"><${Timeline} events=${e.timeline} total=${e.durationMs} /><//>
    <${Body} title="The client's request" text=${b.request} capture=${e.captureOn} />
    <${Body} title="The upstream request" text=${b.upstream} capture=${e.captureOn} />
    <${Body} title="The answer" text=${b.answer} capture=${e.captureOn} />
  </div>`;
}

/** A line chart of one measure over time, in SVG (no library: three small charts). */
function Chart({ title, unit, points, fmt }) {
  const W = 560;
  const H = 180;
  const P = { l: 52, r: 12, t: 12, b: 26 };
  if (!points.length) return html`<${Section} title=${title}><${Empty}>No data yet.<//><//>`;
  const xs = points.map((p) => p.x);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...points.map((p) => p.y), 1e-9) * 1.1;
  const X = (x) => P.l + ((x - x0) / (x1 - x0)) * (W - P.l - P.r);
  const Y = (y) => H - P.b - (y / y1) * (H - P.t - P.b);
  const path = points.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join("");
  const ticks = [0, 0.5, 1].map((f) => f * y1);
  const last = points[points.length - 1];
  return html`<${Section} title=${title} aside=${`latest ${fmt(last.y)} ${unit} · ${points.length} requests`}>
    <svg class="chart" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${title}>
      ${ticks.map((t) => html`<g><line x1=${P.l} x2=${W - P.r} y1=${Y(t)} y2=${Y(t)} class="grid-line" /><text x=${P.l - 6} y=${Y(t) + 4} class="tick" text-anchor="end">${fmt(t)}</text></g>`)}
      <text x=${P.l} y=${H - 6} class="tick">${time(x0)}</text>
      <text x=${W - P.r} y=${H - 6} class="tick" text-anchor="end">${time(x1)}</text>
      <path d=${path} class="line" />
      ${points.map((p) => html`<circle cx=${X(p.x)} cy=${Y(p.y)} r="2.5" class="dot" />`)}
    </svg>
  <//>`;
}

function Charts({ feed }) {
  const [rows, setRows] = useState([]);
  const last = feed.finished.length;
  useEffect(() => {
    getJson("/_dashboard/api/requests?limit=500").then((r) => setRows(r.requests));
  }, [last]);
  const series = useMemo(() => {
    const ok = rows.filter((e) => e.outcome === "ok");
    return {
      ttft: ok.filter((e) => e.ttftMs !== undefined).map((e) => ({ x: e.at, y: e.ttftMs })),
      tps: ok.filter((e) => e.tokensPerSecond).map((e) => ({ x: e.at, y: e.tokensPerSecond })),
      cache: ok
        .filter((e) => e.tokensIn)
        .map((e) => ({ x: e.at, y: (100 * (e.tokensCached ?? 0)) / e.tokensIn })),
    };
  }, [rows]);
  const one = (v) => (v >= 100 ? Math.round(v).toString() : v.toFixed(1));
  return html`<div class="grid charts">
    <${Chart} title="Time to first token" unit="ms" points=${series.ttft} fmt=${one} />
    <${Chart} title="Tokens per second" unit="tok/s" points=${series.tps} fmt=${one} />
    <${Chart} title="Cache reuse (prompt tokens the server already held)" unit="%" points=${series.cache} fmt=${one} />
  </div>`;
}

function App() {
  const route = useRoute();
  const feed = useFeed();
  const { state, error } = useGatewayState();
  const tab = route.startsWith("/requests")
    ? "requests"
    : route.startsWith("/charts")
      ? "charts"
      : "overview";
  const detail = /^\/requests\/([\w-]+)$/.exec(route);
  const up = state?.backends ?? [];
  const overall = !up.length
    ? "down"
    : up.every((b) => b.state === "up")
      ? "ok"
      : up.some((b) => b.state !== "down")
        ? "degraded"
        : "down";
  return html`
    <nav class="top">
      <span class="brand">clawbridge</span>
      <a href="#/" class=${tab === "overview" ? "active" : ""}>Overview</a>
      <a href="#/requests" class=${tab === "requests" ? "active" : ""}>Requests</a>
      <a href="#/charts" class=${tab === "charts" ? "active" : ""}>Charts</a>
      <span class="spacer"></span>
      ${state ? html`<${Badge} kind=${{ ok: "ok", degraded: "warn", down: "bad" }[overall]}>gateway ${overall}<//>` : null}
      <span class=${feed.connected ? "live on" : "live"} title="live updates">${feed.connected ? "live" : "reconnecting"}</span>
    </nav>
    <main>
      ${error ? html`<div class="banner">${error}</div>` : null}
      ${
        detail
          ? html`<${Detail} id=${detail[1]} feed=${feed} />`
          : tab === "charts"
            ? html`<${Charts} feed=${feed} />`
            : !state
              ? html`<${Empty}>Loading…<//>`
              : tab === "requests"
                ? html`<${Requests} state=${state} feed=${feed} />`
                : html`<${Overview} state=${state} feed=${feed} />`
      }
    </main>`;
}

render(html`<${App} />`, document.getElementById("app"));
