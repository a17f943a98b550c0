// The console's onboarding funnel: what the proxy's records say about a range of days
// (`GET /admin/funnel`), drawn as SVG charts by this module (no chart library), each with
// the same numbers as a table, and the records behind it as a CSV download
// (`GET /admin/funnel.csv`, fetched with the admin token, then saved from a blob).
// Days are counted in the browser's time zone (its offset from UTC now).

const NS = "http://www.w3.org/2000/svg";
const BOUNDS = [0, 60, 300, 900, 3600, 21600, 86400, 259200];
const OUTCOMES = ["finished", "cancelled", "error", "code_rejected", "unknown"];
const WIDTH = 640;

// `setupFunnel({ request, t, locale, el })`: `request(path)` answers a `Response` of the proxy
// asked with the admin token; `t(id, values)` writes a catalog text; `locale()` is the page's
// language; `el(tag, className, text)` makes an element. Returns `{ load, reset }`.
export function setupFunnel({ request, t, locale, el }) {
  const $ = (id) => document.getElementById(id);
  const num = (n) => new Intl.NumberFormat(locale()).format(n);
  const rtl = () => document.documentElement.dir === "rtl";
  const view = { answer: null, download: null, query: null, asked: 0 };
  // Read by the end-to-end tests.
  window.__funnel = view;

  function isoDay(d) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function offsetName(minutes) {
    const sign = minutes < 0 ? "-" : "+";
    const a = Math.abs(minutes);
    return `UTC${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
  }

  function dayLabel(date, options = { month: "short", day: "numeric" }) {
    return new Intl.DateTimeFormat(locale(), { ...options, timeZone: "UTC" }).format(new Date(date + "T00:00:00Z"));
  }

  // A wait in the largest unit that keeps it readable ("45 sec", "12 min", "3.5 hr").
  function duration(secs) {
    const unit = (value, name) => new Intl.NumberFormat(locale(), { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
    if (secs < 60) return unit(secs, "second");
    if (secs < 3600) return unit(Math.round(secs / 6) / 10, "minute");
    if (secs < 86400) return unit(Math.round(secs / 360) / 10, "hour");
    return unit(Math.round(secs / 8640) / 10, "day");
  }

  function bucketLabel(b) {
    if (!b.min_secs) return t("console.funnel_under", { max: duration(b.max_secs) });
    if (b.max_secs == null) return t("console.funnel_over", { min: duration(b.min_secs) });
    return t("console.funnel_between", { min: duration(b.min_secs), max: duration(b.max_secs) });
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // An SVG image named `label`, focusable, its numbers in the table next to it.
  function chart(height, label) {
    const s = svgEl("svg", { viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-label": label, tabindex: 0, class: "funnel-chart" });
    s.append(svgEl("title", {}, label));
    return s;
  }

  // x of a box `w` wide starting `x` from the reading start (left, or right in RTL).
  const place = (x, w) => (rtl() ? WIDTH - x - w : x);
  // Text inherits the page's direction, which already turns `start` and `end` around.
  const anchor = (start) => (start ? "start" : "end");

  // Horizontal bars: one per item `{ label, value }`, longest the widest.
  function bars(items, label) {
    const row = 26;
    const s = chart(Math.max(1, items.length) * row + 8, label);
    const max = Math.max(1, ...items.map((i) => i.value));
    const labelWidth = 280;
    const room = WIDTH - labelWidth - 60;
    items.forEach((item, i) => {
      const y = 4 + i * row;
      const w = Math.max(2, (item.value / max) * room);
      s.append(svgEl("text", { x: place(labelWidth - 8, 0), y: y + 17, "text-anchor": anchor(false), class: "funnel-label" }, item.label));
      s.append(svgEl("rect", { x: place(labelWidth, w), y: y + 3, width: w, height: row - 8, rx: 3, class: item.className || "funnel-bar" }));
      s.append(svgEl("text", { x: place(labelWidth + w + 6, 0), y: y + 17, "text-anchor": anchor(true), class: "funnel-value" }, num(item.value)));
    });
    return s;
  }

  // Columns over a horizontal axis: per slot, the `series` values drawn over each other
  // (the first the tallest), every `every`-th slot labelled.
  function columns(slots, series, label, every = 1) {
    const height = 190;
    const base = 160;
    const s = chart(height, label);
    const max = Math.max(1, ...slots.map((slot) => slot.values[0]));
    const step = (WIDTH - 40) / Math.max(1, slots.length);
    const w = Math.max(2, step * 0.7);
    s.append(svgEl("text", { x: place(0, 0), y: 12, "text-anchor": anchor(true), class: "funnel-value" }, num(max)));
    s.append(svgEl("line", { x1: 0, x2: WIDTH, y1: base + 0.5, y2: base + 0.5, class: "funnel-axis" }));
    slots.forEach((slot, i) => {
      const x = 40 + i * step + (step - w) / 2;
      slot.values.forEach((v, k) => {
        const h = (v / max) * (base - 20);
        if (v > 0) s.append(svgEl("rect", { x: place(x, w), y: base - h, width: w, height: h, class: series[k] }));
      });
      if (i % every === 0) {
        s.append(svgEl("text", { x: place(x + w / 2, 0), y: base + 16, "text-anchor": "middle", class: "funnel-label" }, slot.label));
      }
    });
    return s;
  }

  // A table of `rows` (arrays of cells) under `head`, shown on demand.
  function table(caption, head, rows) {
    const details = el("details", "funnel-table");
    details.append(el("summary", null, t("console.funnel_table")));
    const tbl = el("table");
    tbl.append(el("caption", null, caption));
    const tr = el("tr");
    for (const h of head) {
      const th = el("th", null, h);
      th.scope = "col";
      tr.append(th);
    }
    const thead = el("thead");
    thead.append(tr);
    const tbody = el("tbody");
    for (const cells of rows) {
      const r = el("tr");
      cells.forEach((c, i) => {
        const cell = el(i === 0 ? "th" : "td", null, c);
        if (i === 0) cell.scope = "row";
        r.append(cell);
      });
      tbody.append(r);
    }
    tbl.append(thead, tbody);
    details.append(tbl);
    return details;
  }

  // One chart and its table, in a figure captioned `title`; an empty list says so.
  function figure(id, title, draw, head, rows) {
    const f = el("figure", "funnel-figure");
    f.dataset.chart = id;
    const cap = el("figcaption", null, title);
    f.append(cap);
    if (!rows.length) {
      f.append(el("p", "hint", t("console.funnel_empty")));
      return f;
    }
    f.append(draw(), table(title, head, rows));
    return f;
  }

  const keyOr = (key, none) => (key == null ? none : key);

  function render(a) {
    const box = $("funnel-charts");
    box.replaceChildren();
    const rate = a.attempts ? new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(a.finished / a.attempts) : "–";
    $("funnel-summary").textContent = t("console.funnel_summary", {
      attempts: num(a.attempts),
      finished: num(a.finished),
      rate,
      from: dayLabel(a.from, { dateStyle: "medium" }),
      to: dayLabel(a.to, { dateStyle: "medium" }),
      offset: offsetName(a.utc_offset),
    });
    const outcomes = $("funnel-outcomes");
    outcomes.replaceChildren();
    for (const o of a.outcomes) {
      const li = el("li", "waba-badge", t("console.status_count", { status: OUTCOMES.includes(o.key) ? t("console.outcome." + o.key) : o.key, n: num(o.count) }));
      li.dataset.outcome = o.key;
      outcomes.append(li);
    }
    const every = Math.ceil(a.days.length / 10);
    const daysTitle = t("console.funnel_days_title");
    box.append(figure("days", daysTitle,
      () => columns(a.days.map((d) => ({ label: dayLabel(d.date), values: [d.attempts, d.finished] })), ["funnel-bar funnel-bar--attempts", "funnel-bar"], daysTitle, every),
      [t("console.funnel_col_day"), t("console.funnel_col_attempts"), t("console.funnel_col_finished")],
      a.attempts ? a.days.map((d) => [dayLabel(d.date, { dateStyle: "medium" }), num(d.attempts), num(d.finished)]) : []));
    const legend = el("p", "funnel-legend");
    legend.append(el("span", "funnel-swatch funnel-swatch--attempts"), el("span", null, t("console.funnel_col_attempts")), el("span", "funnel-swatch"), el("span", null, t("console.funnel_col_finished")));
    if (a.attempts) box.lastChild.insertBefore(legend, box.lastChild.children[2]);
    const tallied = (id, title, list, none, head) => box.append(figure(id, title,
      () => bars(list.map((x) => ({ label: keyOr(x.key, none), value: x.count })), title),
      head, list.map((x) => [keyOr(x.key, none), num(x.count)])));
    tallied("stopped", t("console.funnel_stopped_title"), a.stopped_at, t("console.funnel_no_step"), [t("console.funnel_col_step"), t("console.funnel_col_records")]);
    tallied("errors", t("console.funnel_errors_title"), a.errors, t("console.funnel_no_code"), [t("console.funnel_col_code"), t("console.funnel_col_records")]);
    const r = a.time_to_ready;
    const readyTitle = t("console.funnel_ready_title");
    const ready = figure("ready", readyTitle,
      () => columns(r.buckets.map((b) => ({ label: bucketLabel(b), values: [b.count] })), ["funnel-bar"], readyTitle),
      [t("console.funnel_col_wait"), t("console.funnel_col_records")],
      r.ready ? r.buckets.map((b) => [bucketLabel(b), num(b.count)]) : []);
    ready.insertBefore(el("p", "funnel-line", t("console.funnel_ready_line", {
      ready: num(r.ready),
      finished: num(r.finished),
      min: r.min_secs == null ? "–" : duration(r.min_secs),
      mean: r.mean_secs == null ? "–" : duration(r.mean_secs),
      max: r.max_secs == null ? "–" : duration(r.max_secs),
    })), ready.children[1]);
    box.append(ready);
    tallied("reviews", t("console.funnel_reviews_title"), a.reviews, "?", [t("console.funnel_col_decision"), t("console.funnel_col_wabas")]);
  }

  function query() {
    const from = $("funnel-from").value;
    const to = $("funnel-to").value;
    const q = new URLSearchParams({ utc_offset: String(-new Date().getTimezoneOffset()) });
    if (from) q.set("from", from);
    if (to) q.set("to", to);
    return q.toString();
  }

  // The proxy's refusal of `res` as an error (its envelope's message).
  async function refusal(res) {
    const body = await res.json().catch(() => ({}));
    return new Error((body.error && body.error.message) || `HTTP ${res.status}`);
  }

  async function load() {
    const line = $("funnel-line");
    line.textContent = t("console.funnel_loading");
    view.query = query();
    // Only the latest question's answer is shown (an earlier one may arrive later).
    const asked = ++view.asked;
    try {
      const res = await request("/admin/funnel?" + view.query);
      if (!res.ok) throw await refusal(res);
      const body = await res.json();
      if (asked !== view.asked) return;
      view.answer = body;
      render(body);
      line.textContent = "";
    } catch (e) {
      if (asked === view.asked) line.textContent = t("console.funnel_failed", { error: e.message });
    }
  }

  async function download() {
    const line = $("funnel-line");
    try {
      const res = await request("/admin/funnel.csv?" + query());
      if (!res.ok) throw await refusal(res);
      const blob = await res.blob();
      const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "")?.[1] || "waba-funnel.csv";
      const a = el("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      if (view.download) URL.revokeObjectURL(view.download.url);
      view.download = { url: a.href, name, bytes: blob.size };
      line.textContent = t("console.funnel_downloaded", { name });
    } catch (e) {
      line.textContent = t("console.funnel_failed", { error: e.message });
    }
  }

  function reset() {
    const today = new Date();
    const first = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29);
    $("funnel-from").value = isoDay(first);
    $("funnel-to").value = isoDay(today);
    $("funnel-charts").replaceChildren();
    $("funnel-summary").textContent = "";
    $("funnel-line").textContent = "";
    $("funnel-outcomes").replaceChildren();
    view.answer = null;
    view.asked += 1;
  }

  $("funnel-form").addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  $("funnel-csv").addEventListener("click", download);
  reset();
  return { load, reset };
}
