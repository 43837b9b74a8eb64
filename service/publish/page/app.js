// The live page: scores, transitions, alerts and liquidations from /v1/stream (Server-Sent
// Events), history from /v1/assets/{asset}/history, venue health from /v1/venues.
// No build step: plain JavaScript, and uPlot (vendored) for the charts. Rendering is
// throttled (at most RENDER_MS apart) and the DOM is capped (MAX_GRID_ROWS assets,
// TAPE_ROWS liquidations), so a thousand instruments and a busy tape stay cheap.
"use strict";
(() => {
  const MAX_TAPE = 500;
  const TAPE_ROWS = 100;
  const MAX_GRID_ROWS = 40;
  const RENDER_MS = 500;
  const VENUES_MS = 5000;
  const HISTORY_MS = 10000;
  const MIN_POINTS = 12;

  const $ = (sel) => document.querySelector(sel);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  const st = {
    market: null,
    assets: new Map(), // asset -> score
    instruments: new Map(), // venue|symbol -> score
    venues: new Map(), // venue -> health item
    tape: [],
    tapeTotal: 0,
    tapeOrder: "newest",
    alerts: new Map(), // alert id -> alert
    selected: null,
    filter: "",
    dirty: new Set(["market", "grid", "tape", "alerts", "venues"]),
    charts: [],
    history: null,
    transitions: [],
  };

  // -- formatting ------------------------------------------------------------------------
  function usd(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    const a = Math.abs(x);
    const short = (v, unit) => `${Number(v.toPrecision(3))}${unit}`;
    if (a >= 1e9) return short(x / 1e9, "B");
    if (a >= 1e6) return short(x / 1e6, "M");
    if (a >= 1e3) return short(x / 1e3, "k");
    return x.toFixed(0);
  }
  function price(x) {
    if (x >= 1000) return x.toFixed(1);
    if (x >= 1) return x.toFixed(3);
    return x.toPrecision(4);
  }
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  const stateText = (s) => (s.side ? `${s.state} · ${s.side}s` : s.state);

  // -- the stream --------------------------------------------------------------------------
  let source = null;
  function connect() {
    source = new EventSource("/v1/stream");
    const conn = $("#conn");
    source.onopen = () => setConn("live", "live");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setConn("reconnecting", "reconnecting…");
        setTimeout(connect, 3000);
      } else {
        setConn("reconnecting", "reconnecting…");
      }
    };
    source.addEventListener("score", (e) => onScore(JSON.parse(e.data)));
    source.addEventListener("liquidation", (e) => onLiquidation(JSON.parse(e.data)));
    source.addEventListener("alert", (e) => onAlert(JSON.parse(e.data)));
    source.addEventListener("transition", (e) => onTransition(JSON.parse(e.data)));
    source.addEventListener("heartbeat", () => setConn("live", "live"));
    source.addEventListener("dropped", (e) => {
      conn.title = JSON.parse(e.data).reason;
      setConn("reconnecting", "catching up…");
    });
  }
  function setConn(state, text) {
    const conn = $("#conn");
    conn.dataset.state = state;
    conn.textContent = text;
  }

  function onScore(s) {
    if (s.scope === "market") {
      st.market = s;
      st.dirty.add("market");
    } else if (s.scope === "asset") {
      st.assets.set(s.asset, s);
      st.dirty.add("grid");
    } else {
      st.instruments.set(`${s.venue}|${s.symbol}`, s);
      st.dirty.add("grid");
    }
  }
  function onLiquidation(l) {
    l.fresh = true;
    st.tape.unshift(l);
    if (st.tape.length > MAX_TAPE) st.tape.length = MAX_TAPE;
    st.tapeTotal += 1;
    st.dirty.add("tape");
  }
  function onAlert(ev) {
    const a = ev.alert;
    if (a.status === "open") st.alerts.set(a.id, a);
    else st.alerts.delete(a.id);
    st.dirty.add("alerts");
  }
  function onTransition(t) {
    if (t.scope === "asset" && t.asset === st.selected) {
      st.transitions.push(t);
      st.dirty.add("charts");
    }
  }

  // -- first state, and what the stream does not carry -----------------------------------
  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  }
  async function loadTape() {
    try {
      const page = await getJSON("/v1/liquidations?limit=100");
      const known = new Set(st.tape.map((l) => l.ts + l.venue + l.symbol));
      for (const l of page.items) if (!known.has(l.ts + l.venue + l.symbol)) st.tape.push(l);
      st.tape.sort((a, b) => (a.ts < b.ts ? 1 : -1));
      st.dirty.add("tape");
    } catch (err) {
      note("tape", err);
    }
  }
  async function loadAlerts() {
    try {
      const page = await getJSON("/v1/alerts?status=open&limit=100");
      for (const a of page.items) st.alerts.set(a.id, a);
      st.dirty.add("alerts");
    } catch (err) {
      note("alerts", err);
    }
  }
  async function loadVenues() {
    try {
      const page = await getJSON("/v1/venues");
      st.venues = new Map(page.items.map((v) => [v.venue, v]));
      st.dirty.add("venues");
      st.dirty.add("grid");
    } catch (err) {
      note("venues", err);
    }
  }
  function note(what, err) {
    // Shown on the page (a console error would be noise for a transient 503).
    $("#conn").title = `${what}: ${err.message}`;
  }

  // -- rendering ---------------------------------------------------------------------------
  function render() {
    if (st.selected === null) selectAsset(defaultAsset());
    const d = st.dirty;
    if (d.size === 0) return;
    const t0 = performance.now();
    st.dirty = new Set();
    if (d.has("market")) renderMarket();
    if (d.has("grid")) renderGrid();
    if (d.has("tape")) renderTape();
    if (d.has("alerts")) renderAlerts();
    if (d.has("venues")) renderVenues();
    if (d.has("charts")) drawCharts();
    // How long a redraw takes, for whoever looks (the browser test with a thousand instruments).
    document.documentElement.dataset.renderMs = (performance.now() - t0).toFixed(1);
  }

  function renderMarket() {
    const m = st.market;
    if (!m) return;
    const el = $("#market-state");
    el.textContent = stateText(m);
    el.dataset.state = m.state;
    $("#gauge").dataset.state = m.state;
    $("#gauge-arc").setAttribute("stroke-dasharray", `${Math.max(0.5, m.score)} 100`);
    $("#gauge-arc").style.stroke = "var(--state)";
    $("#market-score").textContent = m.score.toFixed(0);
    $("#market-since").textContent =
      `since ${clock(m.since)} · data quality ${(m.data_quality * 100).toFixed(0)}%`;
    $("#market-reasons").innerHTML = (m.reasons.length ? m.reasons : ["nothing unusual"])
      .slice(0, 5).map((r) => `<li>${esc(r)}</li>`).join("");
  }

  function venueList() {
    const names = new Set(st.venues.keys());
    for (const s of st.instruments.values()) names.add(s.venue);
    return [...names].sort();
  }

  function renderGrid() {
    const venues = venueList();
    const byAsset = new Map();
    for (const s of st.instruments.values()) {
      if (!byAsset.has(s.asset)) byAsset.set(s.asset, new Map());
      const cell = byAsset.get(s.asset);
      if (!cell.has(s.venue)) cell.set(s.venue, []);
      cell.get(s.venue).push(s);
    }
    for (const a of st.assets.keys()) if (!byAsset.has(a)) byAsset.set(a, new Map());
    const score = (a) => (st.assets.get(a) || { score: -1 }).score;
    const filter = st.filter.trim().toUpperCase();
    let assets = [...byAsset.keys()].filter((a) => !filter || a.includes(filter));
    assets.sort((a, b) => score(b) - score(a) || (a < b ? -1 : 1));
    const total = assets.length;
    assets = assets.slice(0, MAX_GRID_ROWS);
    if (st.selected && !assets.includes(st.selected) && byAsset.has(st.selected) && !filter) {
      assets.push(st.selected);
    }
    const head = ["<th>asset</th>",
      ...venues.map((v) => `<th>${esc(v).replace(/_/g, "_<wbr>")}</th>`)].join("");
    $("#grid thead tr").innerHTML = head;
    const rows = assets.map((asset) => {
      const agg = st.assets.get(asset);
      const aState = agg ? ` data-state="${agg.state}"` : "";
      const aText = agg ? `<span class="state">${esc(stateText(agg))} ${agg.score.toFixed(0)}</span>` : "";
      const cells = venues.map((v) => {
        const list = (byAsset.get(asset).get(v) || []).slice().sort((x, y) => y.score - x.score);
        if (!list.length) return `<td class="cell"></td>`;
        const top = list[0];
        const title = list.map((s) => `${s.symbol}: ${stateText(s)} ${s.score.toFixed(1)}`).join("\n");
        const stale = top.data_quality < 0.5;
        return `<td class="cell" data-venue="${esc(v)}" data-state="${top.state}" data-stale="${stale}"` +
          ` title="${esc(title)}">${top.score.toFixed(0)}</td>`;
      }).join("");
      const sel = asset === st.selected ? ' class="selected"' : "";
      return `<tr data-asset="${esc(asset)}"${sel}><td class="asset"${aState}>${esc(asset)}${aText}</td>${cells}</tr>`;
    });
    $("#grid tbody").innerHTML = rows.join("");
    $("#grid-more").textContent = total > MAX_GRID_ROWS
      ? `${MAX_GRID_ROWS} of ${total} assets, highest scores first: type to find the others`
      : "";
  }

  function renderTape() {
    const rows = st.tapeOrder === "largest"
      ? st.tape.slice().sort((a, b) => b.notional_usd - a.notional_usd).slice(0, TAPE_ROWS)
      : st.tape.slice(0, TAPE_ROWS);
    $("#tape tbody").innerHTML = rows.map((l) => {
      const cls = l.fresh ? ' class="new"' : "";
      l.fresh = false;
      const sampled = l.sampled ? ' title="sampled feed"' : "";
      return `<tr${cls}><td>${clock(l.ts)}</td><td>${esc(l.venue)}</td><td${sampled}>${esc(l.symbol)}</td>` +
        `<td class="side-${l.side}">${l.side}</td><td class="num">${usd(l.notional_usd)}</td>` +
        `<td class="num">${price(l.price)}</td></tr>`;
    }).join("");
    $("#tape-count").textContent = st.tapeTotal ? `${st.tapeTotal.toLocaleString()} live` : "";
  }

  function renderAlerts() {
    const list = [...st.alerts.values()].sort((a, b) => b.score - a.score);
    $("#alerts-count").textContent = list.length ? String(list.length) : "";
    $("#alerts").innerHTML = list.length
      ? list.slice(0, 50).map((a) => {
        const where = a.scope === "instrument" ? `${a.venue} ${a.symbol}` : a.asset || "market";
        return `<li data-state="${a.state}"><span class="what">${esc(stateText(a))}</span> ` +
          `${esc(where)} · score ${a.score.toFixed(0)} · opened ${clock(a.opened_at)}` +
          `<div class="muted small">${esc(a.reasons[0] || "")}</div></li>`;
      }).join("")
      : '<li class="muted">none</li>';
  }

  function renderVenues() {
    $("#venues").innerHTML = [...st.venues.values()].map((v) => {
      const tags = [];
      if (!v.connected) tags.push("disconnected");
      else if (!v.fresh) tags.push(`stale: ${v.problem || "no recent data"}`);
      if (v.liquidations === "sampled") tags.push("sampled liquidations");
      if (v.liquidations === "none") tags.push("no liquidations");
      if (v.mode === "polled") tags.push("polled");
      const ok = v.connected && v.fresh;
      return `<li data-ok="${ok}" data-venue="${esc(v.venue)}">${ok ? "●" : "○"} ${esc(v.venue)}` +
        tags.map((t) => `<span class="tag">${esc(t)}</span>`).join("") + "</li>";
    }).join("");
  }

  // -- charts ------------------------------------------------------------------------------
  function defaultAsset() {
    const fromHash = decodeURIComponent(location.hash.slice(1)).toUpperCase();
    const known = new Set([...st.assets.keys(), ...[...st.instruments.values()].map((s) => s.asset)]);
    if (fromHash && known.has(fromHash)) return fromHash;
    if (known.has("BTC")) return "BTC";
    return [...known][0] || null;
  }

  function selectAsset(asset) {
    if (!asset || asset === st.selected) return;
    st.selected = asset;
    st.history = null;
    st.transitions = [];
    $("#charts-title").textContent = `${asset}: history`;
    st.dirty.add("grid");
    loadHistory();
  }

  let historyTimer = null;
  async function loadHistory() {
    clearTimeout(historyTimer);
    historyTimer = setTimeout(loadHistory, HISTORY_MS);
    const asset = st.selected;
    if (!asset) return;
    const choice = $("#window").value;
    const url = (win) => `/v1/assets/${encodeURIComponent(asset)}/history?window_s=${win}`;
    try {
      let win = choice === "auto" ? 14400 : Number(choice);
      let h = await getJSON(url(win));
      if (choice === "auto") {
        // As long as there is data: a service started minutes ago gets minutes, in detail.
        const first = h.points.find((p) => p.oi_usd !== null || p.score !== null || p.liq_count > 0);
        const span = first ? (Date.now() - Date.parse(first.at)) / 1000 : 0;
        const fits = [900, 3600].find((w) => span < w * 0.9);
        if (fits) {
          win = fits;
          h = await getJSON(url(win));
        }
      }
      const since = new Date(Date.now() - win * 1000).toISOString();
      const t = await getJSON(
        `/v1/transitions?scope=asset&asset=${encodeURIComponent(asset)}&since=${since}&limit=200`);
      if (asset !== st.selected) return;
      st.history = h;
      st.transitions = t.items;
      st.dirty.add("charts");
    } catch (err) {
      note("history", err);
    }
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawCharts() {
    const box = $("#charts");
    for (const c of st.charts) c.destroy();
    st.charts = [];
    box.innerHTML = "";
    const h = st.history;
    if (!h) return;
    // From the first bucket with data on (a service that started minutes ago fills the
    // right edge of a 4 h window only), at least MIN_POINTS.
    const has = (p) => p.oi_usd !== null || p.score !== null || p.liq_count > 0;
    const first = h.points.findIndex(has);
    const points = h.points.slice(Math.max(0, Math.min(first, h.points.length - MIN_POINTS)));
    const xs = points.map((p) => Date.parse(p.at) / 1000);
    const col = (k) => points.map((p) => p[k]);
    const fg = cssVar("--muted");
    const grid = cssVar("--line");
    const width = Math.max(240, Math.floor((box.clientWidth - 8) / (box.clientWidth > 600 ? 2 : 1)));
    const axes = (fmt) => [
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60,
        values: (u, vals) => vals.map(fmt) },
    ];
    const bars = uPlot.paths.bars({ size: [0.7, 24] });
    const specs = [
      { title: "open interest (USD)", series: [{ label: "OI", stroke: cssVar("--accent"), width: 2,
        value: (u, v) => usd(v) }], data: [col("oi_usd")], fmt: usd },
      { title: "funding per hour (%)", series: [{ label: "funding", stroke: cssVar("--building"),
        width: 2, value: (u, v) => (v == null ? "–" : v.toFixed(4)) }],
        data: [col("funding_rate_1h").map((v) => (v == null ? null : v * 100))],
        fmt: (v) => v.toFixed(4) },
      { title: "liquidations by side (USD; longs up, shorts down)", series: [
        { label: "longs", fill: cssVar("--long"), stroke: cssVar("--long"), paths: bars,
          points: { show: false }, value: (u, v) => usd(v) },
        { label: "shorts", fill: cssVar("--short"), stroke: cssVar("--short"), paths: bars,
          points: { show: false }, value: (u, v) => usd(v == null ? v : -v) }],
        data: [col("liq_long_usd"), col("liq_short_usd").map((v) => -v)], fmt: usd },
      { title: "score, with transitions", series: [{ label: "score", stroke: cssVar("--cascade"),
        width: 2, value: (u, v) => (v == null ? "–" : v.toFixed(1)) }],
        data: [col("score")], fmt: (v) => v.toFixed(0), range: [0, 100], marks: true },
    ];
    for (const spec of specs) {
      const wrap = document.createElement("div");
      wrap.className = "chart";
      wrap.innerHTML = `<h3>${esc(spec.title)}</h3>`;
      box.appendChild(wrap);
      const empty = spec.data.every((ys) => ys.every((v) => v === null || v === 0));
      if (empty && !spec.marks) {
        wrap.insertAdjacentHTML("beforeend", '<div class="empty">no data yet</div>');
        continue;
      }
      const opts = {
        width, height: 150, legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: spec.range ? { range: spec.range } : {} },
        axes: axes(spec.fmt),
        series: [{}, ...spec.series],
        hooks: spec.marks ? { draw: [drawMarks] } : {},
      };
      st.charts.push(new uPlot(opts, [xs, ...spec.data], wrap));
    }
  }

  function drawMarks(u) {
    const ctx = u.ctx;
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    let row = 0;
    for (const t of st.transitions) {
      const x = Date.parse(t.ts) / 1000;
      if (x < lo || x > hi) continue;
      row = (row + 1) % 3;
      const px = u.valToPos(x, "x", true);
      ctx.strokeStyle = cssVar(`--${t.to_state}`) || cssVar("--muted");
      ctx.fillStyle = ctx.strokeStyle;
      ctx.beginPath();
      ctx.moveTo(px, u.bbox.top);
      ctx.lineTo(px, u.bbox.top + u.bbox.height);
      ctx.stroke();
      const y = u.bbox.top + (12 + 13 * row) * devicePixelRatio;
      ctx.fillText(t.to_state + (t.side ? ` ${t.side}` : ""), px + 3, y);
    }
    ctx.restore();
  }

  // -- controls ----------------------------------------------------------------------------
  const THEMES = ["auto", "light", "dark"];
  function applyTheme(theme) {
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    $("#theme").textContent = `theme: ${theme}`;
    st.dirty.add("charts");
  }
  function savedTheme() {
    try {
      return localStorage.getItem("deleverage.theme") || "auto";
    } catch (err) {
      return "auto";
    }
  }
  $("#theme").addEventListener("click", () => {
    const next = THEMES[(THEMES.indexOf(savedTheme()) + 1) % THEMES.length];
    try {
      localStorage.setItem("deleverage.theme", next);
    } catch (err) {
      // private mode: the toggle still works for this page
    }
    applyTheme(next);
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => st.dirty.add("charts"));
  $("#grid tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-asset]");
    if (row) {
      location.hash = row.dataset.asset;
      selectAsset(row.dataset.asset);
    }
  });
  $("#filter").addEventListener("input", (e) => {
    st.filter = e.target.value;
    st.dirty.add("grid");
  });
  $("#window").addEventListener("change", loadHistory);
  for (const order of ["newest", "largest"]) {
    $(`#order-${order}`).addEventListener("click", () => {
      st.tapeOrder = order;
      $("#order-newest").setAttribute("aria-pressed", String(order === "newest"));
      $("#order-largest").setAttribute("aria-pressed", String(order === "largest"));
      st.dirty.add("tape");
    });
  }
  let resizeTimer = null;
  addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => st.dirty.add("charts"), 200);
  });

  applyTheme(savedTheme());
  connect();
  loadTape();
  loadAlerts();
  loadVenues();
  setInterval(loadVenues, VENUES_MS);
  setInterval(render, RENDER_MS);
})();
