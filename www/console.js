// The partner console: every client and owned WABA, filtered, sorted, searched, with counts
// per review status and a detail view. The list renders only the rows in view, so it stays
// smooth with 10,000 accounts; more pages load as you scroll, through the proxy's own
// `paging.next` links. Every text comes from the message catalogs (the package's, for the
// account details, and the console's own, `./locales/{tag}.js`), dates and numbers through
// `Intl`, in the language chosen at start.
import init, { WabaClient, StatusPanel, accountStatus, message, useMessages } from "./pkg/console/waba_onboard.js";
import { followStatus } from "./pkg/waba-onboard-stream.js";
import { chooseLocale, loadLocale } from "./pkg/waba-onboard-locales.js";
import { setupFunnel } from "./console-funnel.js";

const TOKEN_KEY = "waba-admin-token";
const ROW = 52;
const PAGE = 100;
const config = Object.assign({ proxyUrl: location.origin }, window.WABA_SIGNUP || {});
const $ = (id) => document.getElementById(id);

const state = {
  edge: "client",
  rows: [], // loaded accounts, in the order Graph returned them
  shown: [], // rows after search and any local filter
  next: null,
  loading: false,
  generation: 0,
  selected: null,
  alerts: new Map(), // WABA id -> what Meta announced since (ban, restriction, removal)
};
// Read by the end-to-end tests and the benchmarks.
window.__consoleMetrics = { renders: [] };
window.__console = state;

let client;
let funnel; // the onboarding funnel view (console-funnel.js)

// The language every text is written in: the chosen catalog's tag (`useLanguage`).
let locale = "en";
const LOCALE_KEY = "demo-locale";
const t = (id, values) => message(id, values);
const num = (n) => new Intl.NumberFormat(locale).format(n);
const DAY = { dateStyle: "medium", timeZone: "UTC" };
const MINUTE = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC", timeZoneName: "short" };
const SECOND = { ...MINUTE, second: "2-digit" };
// Each date format made once per page (the language is chosen once, at start).
const dateFormats = new Map();
function formatted(unix, options) {
  if (!dateFormats.has(options)) dateFormats.set(options, new Intl.DateTimeFormat(locale, options));
  return dateFormats.get(options).format(new Date(unix * 1000));
}

// The tag asked for: `?locale=` (the switch sets it, and it is kept for the tab, as on the
// signup page), then the tab's last choice, config.js, and else the browser's languages.
function askedLocale() {
  const asked = new URLSearchParams(location.search).get("locale");
  if (asked !== null) sessionStorage.setItem(LOCALE_KEY, asked);
  return asked ?? sessionStorage.getItem(LOCALE_KEY) ?? config.locale ?? "";
}

// A console catalog (`./locales/{tag}.js`); English, the source, stands in for any id
// another lacks.
async function consoleCatalog(tag) {
  const english = (await import("./locales/en.js")).default;
  if (tag === "en") return english;
  const chosen = (await import(`./locales/${tag}.js`)).default;
  return { ...chosen, messages: { ...english.messages, ...chosen.messages } };
}

// Chooses the language and loads its catalog: the package's merged with the console's
// (English when one cannot be loaded). Runs while the module loads.
async function loadLanguage() {
  const asked = askedLocale();
  const tag = chooseLocale(asked || undefined);
  try {
    const [pkg, own] = await Promise.all([loadLocale(tag), consoleCatalog(tag)]);
    return { asked, catalog: { ...pkg, messages: { ...pkg.messages, ...own.messages } } };
  } catch (e) {
    console.warn(`The ${tag} catalog could not be loaded; the console stays in English.`, e);
    const english = await consoleCatalog("en").catch(() => ({ messages: {} }));
    return { asked, catalog: { ...english, locale: "en", dir: "ltr" } };
  }
}

// Writes every text from then on in the loaded language, the page's static texts (`data-t`,
// `data-t-*`) included, lays the page out in its direction, and wires the switch.
function useLanguage({ asked, catalog }) {
  useMessages(catalog);
  locale = catalog.locale;
  document.documentElement.lang = catalog.locale;
  document.documentElement.dir = catalog.dir === "rtl" ? "rtl" : "ltr";
  translatePage();
  const select = $("locale");
  select.value = asked;
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("locale", select.value);
    location.assign(url.href);
  });
}

// The page's static texts: `data-t` names the text of an element, `data-t-placeholder`,
// `data-t-aria-label` and `data-t-title` those of its attributes.
function translatePage() {
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  for (const attr of ["placeholder", "aria-label", "title"]) {
    for (const e of document.querySelectorAll(`[data-t-${attr}]`)) e.setAttribute(attr, t(e.getAttribute(`data-t-${attr}`)));
  }
}

function day(value) {
  return value ? Math.floor(Date.parse(value + "T00:00:00Z") / 1000) : undefined;
}

function created(w) {
  return typeof w.creation_time === "number" ? formatted(w.creation_time, DAY) : "";
}

function statusClass(s) {
  return ["PENDING", "APPROVED", "REJECTED", "DEFERRED"].includes(s) ? "waba-badge--" + s.toLowerCase() : "waba-badge--unknown";
}

function query() {
  const after = day($("created-after").value);
  const before = day($("created-before").value);
  const q = { businessId: config.businessId, limit: PAGE, sort: $("sort").value, fields: "id,name,account_review_status,creation_time" };
  // A range is two conditions (GREATER_THAN and LESS_THAN), on both lists.
  if (after !== undefined) q.createdAfter = after;
  if (before !== undefined) q.createdBefore = before;
  return { q };
}

function applyView() {
  const needle = $("search").value.trim().toLowerCase();
  state.shown = state.rows.filter((w) =>
    (!needle || w.id.includes(needle) || (w.name || "").toLowerCase().includes(needle)));
  $("spacer").style.height = state.shown.length * ROW + "px";
  renderCounts();
  renderRows(true);
}

function renderCounts() {
  const counts = new Map();
  for (const w of state.shown) {
    const s = w.account_review_status || "UNKNOWN";
    counts.set(s, (counts.get(s) || 0) + 1);
  }
  const list = $("counts");
  list.replaceChildren();
  for (const [status, n] of [...counts].sort()) {
    const li = document.createElement("li");
    const badge = document.createElement("span");
    badge.className = "waba-badge " + statusClass(status);
    badge.dataset.status = status;
    badge.dataset.count = String(n);
    badge.textContent = t("console.status_count", { status, n });
    li.append(badge);
    list.append(li);
  }
  const shown = t("console.accounts_shown", { shown: state.shown.length, count: state.rows.length });
  $("status-line").textContent = state.next ? t("console.more_on_scroll", { text: shown }) : shown;
  $("status-line").dataset.loaded = String(state.rows.length);
  $("status-line").dataset.complete = String(!state.next);
  $("load-all").hidden = !state.next;
}

const pool = new Map(); // index -> row element
function renderRows(force) {
  const t0 = performance.now();
  const list = $("list");
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
  const last = Math.min(state.shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 5);
  for (const [i, el] of pool) {
    if (force || i < first || i >= last) {
      el.remove();
      pool.delete(i);
    }
  }
  for (let i = first; i < last; i++) {
    if (pool.has(i)) continue;
    const w = state.shown[i];
    const row = document.createElement("div");
    row.className = "row";
    row.setAttribute("role", "option");
    row.dataset.index = String(i);
    row.dataset.accountId = w.id;
    row.setAttribute("aria-selected", String(state.selected === w.id));
    row.style.top = i * ROW + "px";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = w.name || t("panel.unnamed");
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = t("console.row_meta", { id: w.id, date: created(w) });
    const status = w.account_review_status || "UNKNOWN";
    const badge = document.createElement("span");
    badge.className = "waba-badge " + statusClass(status);
    badge.textContent = status;
    row.append(name, badge);
    // What Meta announced since (a ban, a restriction, a removal), from the live stream.
    const alert = state.alerts.get(w.id);
    if (alert) {
      const chip = document.createElement("span");
      chip.className = "waba-chip waba-alert--" + alert.kind;
      chip.dataset.alert = alert.kind;
      chip.title = alert.text;
      chip.textContent = alert.label;
      row.append(chip);
    }
    row.append(meta);
    $("spacer").append(row);
    pool.set(i, row);
  }
  window.__consoleMetrics.renders.push(performance.now() - t0);
  if (state.next && !state.loading && last >= state.shown.length - 10) loadMore();
}

async function loadMore() {
  if (state.loading) return;
  const generation = state.generation;
  state.loading = true;
  try {
    const page = state.next
      ? await client.followPage(state.next)
      : await (state.edge === "client" ? client.clientWabas(query().q) : client.ownedWabas(query().q));
    if (generation !== state.generation) return;
    state.rows.push(...page.data);
    state.next = page.paging && page.paging.next ? page.paging.next : null;
    applyView();
  } catch (e) {
    if (generation !== state.generation) return;
    state.next = null;
    $("status-line").textContent = t("console.accounts_failed", { error: e.message });
    if (e.code === "unauthorized" || e.code === "forbidden") signOut();
  } finally {
    if (generation === state.generation) state.loading = false;
  }
}

function reload() {
  state.generation += 1;
  state.rows = [];
  state.shown = [];
  state.next = null;
  state.loading = false;
  $("list").scrollTop = 0;
  applyView();
  loadMore();
}

async function loadAll() {
  while (state.next || state.loading) {
    if (!state.loading) await loadMore();
    else await new Promise((r) => setTimeout(r, 20));
  }
}

let panel;
async function showDetail(id) {
  state.selected = id;
  for (const el of pool.values()) el.setAttribute("aria-selected", String(el.dataset.accountId === id));
  panel.loading(t("console.loading_account"));
  const line = $("detail-budget");
  line.hidden = true;
  line.textContent = "";
  // Meta limits calls per WABA per hour (200, or 5000 with a registered number). When its
  // last reading says the budget is nearly spent, the console shows what the list already
  // has instead of spending more of it: the signup pages need what is left.
  const before = await budget(id);
  const row = state.rows.find((r) => r.id === id);
  const fromList = Boolean(before && before.held && row);
  try {
    panel.render([accountStatus(fromList ? row : await client.waba(id))]);
  } catch (e) {
    panel.showError(e);
  }
  if (state.selected !== id) return;
  showBudget(fromList ? before : await budget(id), fromList);
}

// What Meta last said of a WABA's hourly budget (`GET /admin/graph-usage`), or null.
async function budget(id) {
  try {
    const answer = await admin(`/admin/graph-usage?object=${encodeURIComponent(id)}`);
    const u = answer.data && answer.data[0];
    if (!u) return null;
    // Spared while the proxy holds background work about it (its 60 s after a high reading).
    return { ...u, held: u.background_waits_secs > 0 };
  } catch {
    return null;
  }
}

function showBudget(u, fromList) {
  const line = $("detail-budget");
  line.hidden = false;
  line.classList.toggle("detail-budget-high", Boolean(u && u.held));
  if (!u) {
    line.textContent = t("console.budget_none");
    return;
  }
  const kinds = u.entries.map((e) => e.type).filter(Boolean).join(", ");
  const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 }).format(u.percent / 100);
  const used = { percent, kinds, seconds: u.seen_secs_ago };
  const parts = [t(kinds ? "console.budget_used_kinds" : "console.budget_used", used)];
  if (fromList) parts.push(t("console.budget_from_list"));
  if (u.held) {
    parts.push(u.background_waits_secs
      ? t("console.budget_held_for", { seconds: u.background_waits_secs })
      : t("console.budget_held"));
  }
  line.textContent = parts.join(" ");
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  adminToken = null;
  if (stream) stream.stop();
  resetBoard();
  resetWebhooks();
  funnel.reset();
  $("workspace").hidden = true;
  $("signin").hidden = false;
  $("admin-token").focus();
}

// Onboarding activity: the proxy's records that need follow-up, and WABAs the tracker found
// newly shared (or no longer shared). Events newer than the last visit are highlighted.
const SEEN_KEY = "waba-shares-seen";
let adminToken = null;

// A request to the proxy with the admin token.
function adminFetch(path, init = {}) {
  const headers = { ...init.headers, Authorization: "Bearer " + adminToken };
  return fetch(config.proxyUrl.replace(/\/$/, "") + path, { ...init, headers });
}

async function admin(path, method = "GET", payload) {
  const headers = {};
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const res = await adminFetch(path, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || `HTTP ${res.status}`);
  return body;
}

function when(unix) {
  return formatted(unix, MINUTE);
}

async function loadActivity() {
  await loadFollowUps();
  await loadShares();
}

// What someone must do: the record's follow-ups (a business that left the flow early, ...)
// and every failed pipeline step, with who acts and why.
let followUpSteps = new Set(); // ids of the failed steps listed
async function loadFollowUps() {
  const generation = board.generation;
  try {
    const f = await admin("/admin/follow-ups?limit=50");
    if (generation !== board.generation) return;
    const list = $("follow-ups");
    const items = [];
    const failed = new Set();
    for (const r of f.data) {
      for (const item of r.follow_ups) {
        const li = document.createElement("li");
        li.dataset.reason = item.reason;
        li.dataset.onboardingId = String(r.id);
        const what = document.createElement("span");
        what.textContent = aboutWaba(item.waba_id, item.message);
        const action = document.createElement("span");
        action.className = "action";
        action.textContent = t("console.with_time", { text: item.action, time: when(r.created_at) });
        li.append(what, action);
        items.push(li);
      }
      for (const s of r.steps || []) {
        if (s.state !== "failed") continue;
        failed.add(s.id);
        items.push(followUpOfStep(r, s));
      }
    }
    followUpSteps = failed;
    list.replaceChildren(...items);
    $("follow-up-count").textContent = num(items.length);
    if (!items.length) list.append(Object.assign(document.createElement("li"), { textContent: t("console.no_follow_ups") }));
  } catch (e) {
    $("follow-up-count").textContent = e.message;
  }
}

function followUpOfStep(r, s) {
  const li = document.createElement("li");
  li.className = "step-failed";
  li.dataset.onboardingId = String(r.id);
  li.dataset.stepId = String(s.id);
  li.dataset.kind = s.kind;
  const what = document.createElement("span");
  const where = stepWhere(s);
  what.textContent = where
    ? t("console.step_failed_for", { step: stepLabel(s.kind), where })
    : t("console.step_failed", { step: stepLabel(s.kind) });
  const why = document.createElement("span");
  why.className = "why";
  const reason = s.message || s.error || stepText(s);
  why.textContent = s.error_code != null ? t("console.why_code", { text: reason, code: String(s.error_code) }) : reason;
  const action = document.createElement("span");
  action.className = "action";
  action.textContent = t("console.step_follow_up_action", { actor: actorLabel(s.actor), id: String(r.id), time: when(r.created_at) });
  const show = button(t("console.show_step"), "link", () => showRecord(r.id, s.id));
  show.setAttribute("aria-label", t("console.show_step_label", { id: String(r.id) }));
  li.append(what, why, action, show);
  return li;
}

async function loadShares() {
  try {
    const seen = Number(localStorage.getItem(SEEN_KEY) || 0);
    const events = [];
    let after = 0;
    for (;;) {
      const page = await admin(`/admin/tracker/events?after=${after}&limit=500`);
      events.push(...page.data);
      if (page.data.length < 500) break;
      after = page.next_after;
    }
    const list = $("shares");
    list.replaceChildren();
    for (const e of events.slice().reverse().slice(0, 100)) {
      const li = document.createElement("li");
      li.className = e.seq > seen ? "is-new" : "";
      li.dataset.kind = e.kind;
      li.dataset.wabaId = e.waba_id;
      li.textContent = t(e.kind === "shared" ? "console.share_shared" : "console.share_removed", { waba: e.waba_id, time: when(e.detected_at) });
      list.append(li);
    }
    const fresh = events.filter((e) => e.seq > seen).length;
    $("shares-line").textContent = events.length ? t("console.new_since", { count: fresh }) : t("console.no_changes_yet");
    if (events.length) localStorage.setItem(SEEN_KEY, String(events[events.length - 1].seq));
  } catch (e) {
    $("shares-line").textContent = e.message;
  }
}

async function checkShares() {
  $("shares-line").textContent = t("console.checking");
  try {
    const pass = await admin("/admin/tracker/pass", "POST");
    await loadShares();
    if (pass.baseline) $("shares-line").textContent = t("console.baseline");
  } catch (e) {
    $("shares-line").textContent = e.message;
  }
}

// Onboardings: each record with the partner's post-signup steps (the proxy's pipeline: connect
// webhooks, register numbers, share the credit line, ...), where each stands and who must act
// when one is stuck. The partner can retry a failed step, give a number's existing two-step
// PIN, or offboard. Live step changes refresh the record in place, a burst in one fetch.
const ONBOARDING_PAGE = 20;
const COALESCE_MS = 200;
// The proxy's "no attempt by itself" when it says so with i64::MAX (JSON numbers round it to
// 2^63); it may also leave `next_attempt_at` out.
const WAITS_FOR_PERSON = 9e18;

// The step kinds, states, actors, flows and outcomes the console has words for
// (`step_name.*` in the package's catalog, `console.state.*`, ... in the console's).
const STEP_KINDS = ["subscribe", "assign_system_user", "share_credit_line", "find_phones", "register", "sync_contacts", "sync_history", "unsubscribe", "deregister"];
const STATE_ICON = { pending: "○", running: "◔", done: "✓", skipped: "–", failed: "✕" };
const ACTORS = ["business", "partner", "meta", "nobody", "unknown"];
const FLOWS = ["code", "token", "discovered"];
const OUTCOMES = ["finished", "cancelled", "error", "code_rejected", "unknown"];

const board = {
  records: new Map(), // id -> record, without its business token or PINs
  nextBefore: null,
  loaded: false, // the first page is in
  listing: false, // a page is loading
  dirty: new Set(), // records changed while a page was loading
  timers: new Map(), // record id -> pending coalesced refresh
  fetches: new Map(), // record id -> number of its latest fetch (older answers are dropped)
  mustRender: new Set(), // records to re-render even if unchanged (after an action of yours)
  notes: new Map(), // "step:ID" or "record:ID" -> what an action of yours ended with
  generation: 0,
};
// Read by the end-to-end tests.
window.__onboardings = board;
window.__consoleMetrics.recordFetches = 0;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(text, className, onClick) {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// `value` in words (the text `prefix` + `value`) when it is one of `known`, else as it is.
const named = (prefix, known, value) => (known.includes(value) ? t(prefix + value) : value);
const stepLabel = (kind) => named("step_name.", STEP_KINDS, kind);
const actorLabel = (actor) => named("console.actor.", ACTORS, actor || "unknown");
const stepWhere = (s) => s.phone || s.phone_id || (s.waba_id ? t("console.waba", { waba: s.waba_id }) : "");
const aboutWaba = (waba, text) => (waba ? t("console.about_waba", { waba, text }) : text);

// A step's progress line in the chosen language (the proxy's `text` is English), as
// `waba_graph::pipeline::progress` writes it.
function stepText(s) {
  if (!s || !STEP_KINDS.includes(s.kind)) return (s && s.text) || "";
  const phone = s.phone || s.phone_id || "";
  if (s.state === "pending" || s.state === "running") return t(`progress.${s.kind}.doing`, { phone });
  if (s.state === "done") return t(`progress.${s.kind}.done`, { phone });
  if (s.state === "skipped" || s.state === "failed") return t(`progress.${s.state}`, { step: stepLabel(s.kind) });
  return s.text || "";
}

function whenExact(unix) {
  return formatted(unix, SECOND);
}

function boardLine(text) {
  $("onboardings-line").textContent = text;
}

// The detail route also answers the business token, the numbers' PINs and Meta's changes:
// none of them is kept or shown here.
function keep(record) {
  const { business_token, business_token_expires_at, pins, changes, ...rest } = record;
  rest.steps = rest.steps || [];
  return rest;
}

const offboarded = (r) => Boolean(r.offboarded_at) || r.steps.some((s) => s.kind === "unsubscribe" || s.kind === "deregister");
const canOffboard = (r) => !r.revoked_at && r.wabas.length > 0 && !offboarded(r);

function mark(kind, text) {
  const m = el("span", "ob-mark ob-mark--" + kind, text);
  m.dataset.mark = kind;
  return m;
}

function renderRecord(r) {
  const li = el("li", "ob-record");
  li.id = `onboarding-${r.id}`;
  li.tabIndex = -1;
  li.dataset.onboardingId = String(r.id);
  if (r.revoked_at) li.dataset.revoked = "true";
  if (r.needs_follow_up) li.dataset.needsFollowUp = "true";
  const head = el("div", "ob-head");
  const title = el("h3", "ob-title", t("console.onboarding_title", { id: String(r.id) }));
  title.id = `onboarding-${r.id}-title`;
  const marks = el("span", "ob-marks");
  if (r.revoked_at) marks.append(mark("revoked", t("console.mark.revoked")));
  else if (offboarded(r)) marks.append(mark("offboarded", t("console.mark.offboarded")));
  if (r.needs_follow_up) marks.append(mark("follow-up", t("console.mark.follow_up")));
  head.append(title, marks);
  if (canOffboard(r)) {
    const off = button(t("console.offboard"), "ob-button ob-button--danger", (e) => offboard(r, e.currentTarget));
    off.dataset.focusKey = `offboard-${r.id}`;
    off.setAttribute("aria-describedby", title.id);
    head.append(off);
  }
  const outcome = named("console.outcome.", OUTCOMES, r.outcome);
  const facts = [when(r.created_at), named("console.flow.", FLOWS, r.flow),
    r.event ? t("console.outcome_event", { outcome, event: r.event }) : outcome];
  if (r.business_id) facts.push(t("console.business", { id: r.business_id }));
  if (r.revoked_at) facts.push(t("console.revoked_by_meta", { time: when(r.revoked_at) }));
  const meta = el("p", "ob-meta", facts.join(" · "));
  const wabas = el("p", "ob-wabas", r.wabas.length
    ? t("console.wabas", { count: r.wabas.length, wabas: r.wabas.join(", ") })
    : t("console.no_waba"));
  li.append(head, meta, wabas);
  const note = board.notes.get(`record:${r.id}`);
  if (note) li.append(el("p", "ob-note ob-note--error", note.text));
  if (!r.steps.length) {
    li.append(el("p", "hint", t("console.no_steps")));
    return li;
  }
  const steps = el("ol", "ob-steps");
  steps.setAttribute("aria-label", t("console.steps_label", { id: String(r.id) }));
  for (const s of r.steps) steps.append(renderStep(r, s));
  li.append(steps);
  return li;
}

function renderStep(r, s) {
  const li = el("li", "ob-step");
  li.tabIndex = -1;
  li.dataset.stepId = String(s.id);
  li.dataset.kind = s.kind;
  li.dataset.state = s.state;
  if (s.actor) li.dataset.actor = s.actor;
  const known = Object.hasOwn(STATE_ICON, s.state);
  const state = el("span", "ob-state ob-state--" + (known ? s.state : "unknown"));
  const icon = el("span", "ob-icon", STATE_ICON[s.state] || "?");
  icon.setAttribute("aria-hidden", "true");
  state.append(icon, document.createTextNode(known ? t("console.state." + s.state) : s.state));
  const what = el("div", "ob-what");
  const label = el("span", "ob-kind", stepLabel(s.kind));
  const text = el("span", "ob-text", stepText(s));
  text.id = `step-${s.id}-text`;
  what.append(label, text);
  li.append(state, what);

  const details = el("div", "ob-details");
  const facts = [];
  if (r.wabas.length > 1 && s.waba_id) facts.push(t("console.waba", { waba: s.waba_id }));
  const settled = s.state === "done" || s.state === "skipped";
  if (s.token && !settled) facts.push(t(s.token === "business" ? "console.with_business_token" : "console.with_system_user_token"));
  if (s.attempts && s.state !== "done") facts.push(t("console.attempts", { count: s.attempts }));
  if (facts.length) details.append(el("span", "ob-facts", facts.join(" · ")));
  if (s.actor && !settled && s.actor !== "nobody") {
    const who = el("span", "ob-actor ob-actor--" + s.actor, t("console.who_acts", { actor: actorLabel(s.actor) }));
    who.dataset.actor = s.actor;
    details.append(who);
  }
  if (s.message) details.append(el("p", "ob-message", s.message));
  if (s.state === "failed" && (s.error_code != null || s.error)) {
    const theirs = s.error || t("console.no_message");
    const error = el("p", "ob-error", s.error_code != null
      ? t("console.meta_error_code", { code: String(s.error_code), error: theirs })
      : t("console.meta_error", { error: theirs }));
    if (s.error_code != null) error.dataset.errorCode = String(s.error_code);
    details.append(error);
  }
  // A failed step without a next attempt (or with the proxy's "never") waits for a person.
  const at = typeof s.next_attempt_at === "number" ? s.next_attempt_at : null;
  const waits = s.state === "failed" && (at === null || at >= WAITS_FOR_PERSON);
  if (waits || ((s.state === "pending" || s.state === "failed") && at !== null)) {
    const next = el("p", "ob-next", waits ? t("console.next_waits") : t("console.next_at", { time: whenExact(at) }));
    next.dataset.waits = String(waits);
    details.append(next);
  }
  if (details.childNodes.length) li.append(details);

  if (s.state === "failed") {
    const actions = el("div", "ob-actions");
    const retry = button(t("console.retry"), "ob-button", (e) => retryStep(r, s, e.currentTarget));
    retry.dataset.focusKey = `retry-${s.id}`;
    retry.setAttribute("aria-describedby", text.id);
    actions.append(retry);
    if (s.kind === "register" && s.error_code === 133005 && s.phone_id) actions.append(pinForm(r, s));
    li.append(actions);
  }
  const note = board.notes.get(`step:${s.id}`);
  if (note && note.state === s.state) li.append(el("p", "ob-note" + (note.error ? " ob-note--error" : ""), note.text));
  else if (note) board.notes.delete(`step:${s.id}`);
  return li;
}

// A number whose business turned on two-step verification registers only with that PIN
// (Meta's 133005): the business tells it, the partner enters it, the step runs again.
function pinForm(r, s) {
  const form = el("form", "ob-pin");
  form.setAttribute("aria-label", t("console.pin_form_label", { phone: stepWhere(s) }));
  const id = `pin-${s.id}`;
  const label = el("label", null, t("console.pin_label"));
  label.htmlFor = id;
  const input = document.createElement("input");
  Object.assign(input, {
    id, name: "pin", type: "text", inputMode: "numeric", pattern: "[0-9]{6}", maxLength: 6,
    required: true, autocomplete: "off", spellcheck: false,
  });
  input.dataset.focusKey = id;
  const hint = el("span", "ob-pin-hint", t("console.pin_hint", { phone: stepWhere(s) }));
  hint.id = `${id}-hint`;
  input.setAttribute("aria-describedby", hint.id);
  const submit = el("button", "ob-button", t("console.pin_submit"));
  submit.type = "submit";
  submit.dataset.focusKey = `${id}-submit`;
  form.append(label, input, submit, hint);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitPin(r, s, input, submit);
  });
  return form;
}

async function submitPin(r, s, input, submit) {
  const pin = input.value.trim();
  if (!/^[0-9]{6}$/.test(pin)) {
    input.setCustomValidity(t("console.pin_invalid"));
    input.reportValidity();
    input.addEventListener("input", () => input.setCustomValidity(""), { once: true });
    return;
  }
  input.disabled = submit.disabled = true;
  board.notes.delete(`step:${s.id}`);
  try {
    await admin(`/admin/phones/${encodeURIComponent(s.phone_id)}/pin`, "PUT", { pin });
    input.value = ""; // not kept in the page
    await admin(`/admin/steps/${s.id}/retry`, "POST");
    boardLine(t("console.pin_registering", { phone: stepWhere(s) }));
  } catch (e) {
    const text = t("console.pin_failed", { error: e.message });
    board.notes.set(`step:${s.id}`, { state: s.state, error: true, text });
    boardLine(text);
  }
  await refreshRecord(r.id, { render: true });
}

async function retryStep(r, s, b) {
  b.disabled = true;
  board.notes.delete(`step:${s.id}`);
  try {
    await admin(`/admin/steps/${s.id}/retry`, "POST");
    const step = stepLabel(s.kind).toLocaleLowerCase(locale);
    const where = stepWhere(s);
    boardLine(where
      ? t("console.retrying_for", { step, where, id: String(r.id) })
      : t("console.retrying", { step, id: String(r.id) }));
  } catch (e) {
    const text = t("console.retry_refused", { error: e.message });
    board.notes.set(`step:${s.id}`, { state: s.state, error: true, text });
    boardLine(text);
  }
  await refreshRecord(r.id, { render: true });
}

async function offboard(r, b) {
  const wabas = r.wabas.join(", ");
  const ok = window.confirm(t("console.offboard_confirm", { id: String(r.id), wabas }));
  if (!ok) return;
  b.disabled = true;
  board.notes.delete(`record:${r.id}`);
  try {
    await admin(`/admin/onboardings/${r.id}/offboard`, "POST");
    boardLine(t("console.offboarding", { id: String(r.id) }));
  } catch (e) {
    const text = t("console.offboard_failed", { error: e.message });
    board.notes.set(`record:${r.id}`, { text });
    boardLine(t("console.onboarding_note", { id: String(r.id), text }));
  }
  await refreshRecord(r.id, { render: true });
}

// Re-renders keep what you were doing: the focus (or the step it was in) and any PIN typed.
function preserve(scope, replace) {
  const active = document.activeElement;
  const inside = active && active !== document.body && scope.contains(active);
  const key = inside ? active.dataset.focusKey : undefined;
  const step = inside ? active.closest("[data-step-id]") : null;
  const record = inside ? active.closest("[data-onboarding-id]") : null;
  const caret = inside && active.tagName === "INPUT" ? [active.selectionStart, active.selectionEnd] : null;
  const typed = [...scope.querySelectorAll("input[data-focus-key]")]
    .filter((i) => i.value)
    .map((i) => [i.dataset.focusKey, i.value]);
  const root = replace();
  for (const [k, v] of typed) {
    const input = root.querySelector(`input[data-focus-key="${k}"]`);
    if (input && !input.disabled) input.value = v;
  }
  if (!inside) return;
  const target = (key && root.querySelector(`[data-focus-key="${key}"]:not(:disabled)`)) ||
    (step && root.querySelector(`[data-step-id="${step.dataset.stepId}"]`)) ||
    (record && root.querySelector(`[data-onboarding-id="${record.dataset.onboardingId}"]`));
  if (!target) return;
  target.focus({ preventScroll: true });
  if (caret && target.tagName === "INPUT") target.setSelectionRange(caret[0], caret[1]);
}

function renderBoard() {
  const list = $("onboarding-list");
  preserve(list, () => {
    const ids = [...board.records.keys()].sort((a, b) => b - a);
    list.replaceChildren(...ids.map((id) => renderRecord(board.records.get(id))));
    if (!ids.length) list.append(el("li", "ob-empty hint", t("console.no_onboardings")));
    return list;
  });
  $("onboardings-more").hidden = board.nextBefore == null;
}

// One record replaced in place, or put where its id sorts (newest first).
function placeRecord(r) {
  const list = $("onboarding-list");
  const old = list.querySelector(`[data-onboarding-id="${r.id}"]`);
  const fresh = renderRecord(r);
  if (old) {
    preserve(old, () => {
      old.replaceWith(fresh);
      return fresh;
    });
    return;
  }
  list.querySelector(".ob-empty")?.remove();
  const after = [...list.children].find((li) => Number(li.dataset.onboardingId) < r.id);
  list.insertBefore(fresh, after || null);
}

async function loadOnboardings(more = false) {
  if (board.listing) return;
  const generation = board.generation;
  board.listing = true;
  $("onboardings-more").disabled = true;
  if (!more) boardLine(t("console.loading_onboardings"));
  try {
    const before = more && board.nextBefore != null ? `&before=${board.nextBefore}` : "";
    const page = await admin(`/admin/onboardings?limit=${ONBOARDING_PAGE}${before}`);
    if (generation !== board.generation) return;
    for (const r of page.data) board.records.set(r.id, keep(r));
    board.nextBefore = page.next_before ?? null;
    board.loaded = true;
    renderBoard();
    const n = board.records.size;
    boardLine(t(board.nextBefore != null ? "console.onboardings_shown_more" : "console.onboardings_shown", { count: n }));
  } catch (e) {
    if (generation === board.generation) boardLine(t("console.onboardings_failed", { error: e.message }));
  } finally {
    if (generation === board.generation) {
      board.listing = false;
      $("onboardings-more").disabled = false;
      const dirty = [...board.dirty];
      board.dirty.clear();
      for (const id of dirty) scheduleRefresh(id);
    }
  }
}

// `show`: even if it is older than the loaded pages (from a follow-up); `render`: even if
// nothing changed (after an action of yours: its note shows, its button comes back).
async function refreshRecord(id, { show = false, render = false } = {}) {
  const n = (board.fetches.get(id) || 0) + 1;
  board.fetches.set(id, n);
  if (render) board.mustRender.add(id);
  const generation = board.generation;
  window.__consoleMetrics.recordFetches += 1;
  try {
    const r = keep(await admin(`/admin/onboardings/${id}`));
    // Only the latest fetch of a record counts: an older answer may arrive last.
    if (generation !== board.generation || board.fetches.get(id) !== n) return;
    const newer = board.records.size === 0 || id > Math.max(...board.records.keys());
    const shown = board.records.get(id);
    if (!shown && !show && !(board.loaded && newer)) return;
    // A replayed change often brings nothing new: the record (and your typing) stays as is.
    const again = board.mustRender.delete(id);
    if (shown && !again && JSON.stringify(shown) === JSON.stringify(r)) return;
    board.records.set(id, r);
    placeRecord(r);
  } catch (e) {
    if (generation !== board.generation) return;
    boardLine(t("console.refresh_failed", { id: String(id), error: e.message }));
    if (board.fetches.get(id) === n && board.mustRender.delete(id) && board.records.has(id)) {
      placeRecord(board.records.get(id));
    }
  }
}

function scheduleRefresh(id) {
  if (!board.loaded || board.listing) {
    board.dirty.add(id);
    return;
  }
  if (board.timers.has(id)) return;
  board.timers.set(id, setTimeout(() => {
    board.timers.delete(id);
    refreshRecord(id);
  }, COALESCE_MS));
}

let followUpTimer = null;
function scheduleFollowUps() {
  if (followUpTimer) return;
  followUpTimer = setTimeout(() => {
    followUpTimer = null;
    loadFollowUps();
  }, COALESCE_MS * 2);
}

// A `pipeline_step` change from the live stream. Replays of what the record already shows
// (after a reconnect) cost nothing.
function onStepChange(step) {
  const id = Number(step.onboarding_id);
  if (!Number.isInteger(id)) return;
  const record = board.records.get(id);
  const shown = record && record.steps.find((s) => s.id === step.id);
  const current = shown && shown.state === step.state && shown.attempts === step.attempts &&
    shown.updated_at >= step.updated_at;
  if (!current) scheduleRefresh(id);
  if (step.state === "failed" || followUpSteps.has(step.id)) scheduleFollowUps();
}

async function showRecord(id, stepId) {
  if (!board.records.has(id)) await refreshRecord(id, { show: true });
  const target = stepId !== undefined
    ? document.querySelector(`#onboarding-list [data-step-id="${stepId}"]`)
    : document.querySelector(`#onboarding-list [data-onboarding-id="${id}"]`);
  if (!target) return;
  target.scrollIntoView({ block: "center", behavior: "smooth" });
  target.focus({ preventScroll: true });
}

function resetBoard() {
  board.generation += 1;
  for (const timer of board.timers.values()) clearTimeout(timer);
  board.timers.clear();
  board.records.clear();
  board.dirty.clear();
  board.fetches.clear();
  board.mustRender.clear();
  board.notes.clear();
  board.nextBefore = null;
  board.loaded = false;
  board.listing = false;
  clearTimeout(followUpTimer);
  followUpTimer = null;
  followUpSteps = new Set();
  $("onboarding-list").replaceChildren();
  $("onboardings-more").hidden = true;
  boardLine("");
}

// Webhooks: the partner's own endpoints the proxy delivers signed events to (Standard
// Webhooks), each with its state, counts and actions, a form to add one, and an endpoint's
// deliveries with their attempts. A signing secret is shown once, in the page only (never in
// sessionStorage or localStorage, nor in `hooks`), until it is hidden. The view refreshes
// itself every few seconds while the tab is visible.
const HOOK_PAGE = 20;
const HOOK_POLL_MS = 2000;
// The catalog's words for the event types the proxy knows; others show the proxy's own.
const EVENT_TYPE_TEXT = {
  "onboarding.finished": "console.hook_event.onboarding_finished",
  "onboarding.abandoned": "console.hook_event.onboarding_abandoned",
  "onboarding.failed": "console.hook_event.onboarding_failed",
  "onboarding.offboarded": "console.hook_event.onboarding_offboarded",
  "waba.shared": "console.hook_event.waba_shared",
  "waba.unshared": "console.hook_event.waba_unshared",
  "waba.review_decided": "console.hook_event.waba_review_decided",
  "waba.restricted": "console.hook_event.waba_restricted",
  "waba.reinstated": "console.hook_event.waba_reinstated",
  "phone.ready": "console.hook_event.phone_ready",
  "phone.needs_action": "console.hook_event.phone_needs_action",
  "phone.quality_changed": "console.hook_event.phone_quality_changed",
  "pipeline.step_changed": "console.hook_event.pipeline_step_changed",
  "pipeline.step_failed": "console.hook_event.pipeline_step_failed",
};
const HOOK_PAUSED = {
  admin: "console.hook_paused_admin",
  gone: "console.hook_paused_gone",
  circuit: "console.hook_paused_circuit",
};
const DELIVERY_STATE = {
  pending: { text: "console.delivery_state.pending", look: "pending", icon: "○" },
  delivered: { text: "console.delivery_state.delivered", look: "done", icon: "✓" },
  failed: { text: "console.delivery_state.failed", look: "failed", icon: "✕" },
};

const hooks = {
  endpoints: [], // as the proxy lists them (never a secret)
  types: [], // the event types an endpoint may ask for
  open: null, // the endpoint whose deliveries are shown
  deliveries: new Map(), // delivery id -> delivery, of the open endpoint
  more: false, // older deliveries than the ones loaded exist
  expanded: new Set(), // the <details> open (attempts, payload), by focus key
  notes: new Map(), // endpoint id -> what an action of yours on it ended with
  editing: null, // the endpoint the form changes (null: the form adds one)
  generation: 0, // a sign-out or another endpoint's deliveries drop older answers
  deliveriesGeneration: 0,
  timer: null,
  polling: false,
};
// Read by the end-to-end tests.
window.__hooks = hooks;

function hooksLine(text) {
  $("hooks-line").textContent = text;
}

function deliveriesLine(text) {
  $("hook-deliveries-line").textContent = text;
}

// A URL written left to right whatever the page's direction.
function ltr(tag, className, text) {
  const e = el(tag, className, text);
  e.dir = "ltr";
  return e;
}

function eventTypeText(type) {
  const id = EVENT_TYPE_TEXT[type.type];
  return id ? t(id) : type.description || "";
}

function startWebhooks() {
  resetWebhooks();
  loadEventTypes();
  loadEndpoints();
  hooks.timer = setInterval(pollWebhooks, HOOK_POLL_MS);
}

function resetWebhooks() {
  hooks.generation += 1;
  hooks.deliveriesGeneration += 1;
  clearInterval(hooks.timer);
  hooks.timer = null;
  hooks.endpoints = [];
  hooks.notes.clear();
  hooks.open = null;
  hooks.deliveries = new Map();
  hooks.expanded.clear();
  $("hook-list").replaceChildren();
  $("hook-deliveries").hidden = true;
  $("hook-delivery-list").replaceChildren();
  hideSecret(false);
  hooksLine("");
  $("hook-form").reset();
  formMode(null);
  $("hook-form-line").textContent = "";
}

async function pollWebhooks() {
  if (document.hidden || hooks.polling) return;
  hooks.polling = true;
  try {
    await loadEndpoints({ quiet: true });
    if (hooks.open != null) await loadDeliveries({ quiet: true });
  } finally {
    hooks.polling = false;
  }
}

async function loadEventTypes() {
  const generation = hooks.generation;
  try {
    const answer = await admin("/admin/webhook-event-types");
    if (generation !== hooks.generation) return;
    hooks.types = answer.data;
    $("hook-event-types").replaceChildren(...answer.data.map((type, i) => {
      const li = el("li");
      const input = document.createElement("input");
      Object.assign(input, { type: "checkbox", id: `hook-type-${i}`, value: type.type, name: "events" });
      input.addEventListener("change", () => {
        if (input.checked) $("hook-all-events").checked = false;
      });
      const label = el("label");
      label.htmlFor = input.id;
      const what = el("span", "hook-type-what", eventTypeText(type));
      what.id = `hook-type-${i}-what`;
      label.append(ltr("code", "hook-type", type.type), what);
      li.append(input, label);
      return li;
    }));
  } catch (e) {
    if (generation === hooks.generation) $("hook-form-line").textContent = t("console.hook_types_failed", { error: e.message });
  }
}

// `render`: even if nothing changed (after an action of yours: its button comes back).
async function loadEndpoints({ quiet = false, render = false } = {}) {
  const generation = hooks.generation;
  if (!quiet) hooksLine(t("console.hooks_loading"));
  try {
    const answer = await admin("/admin/webhook-endpoints");
    if (generation !== hooks.generation) return;
    const list = answer.data.map(({ secret, ...rest }) => rest);
    const changed = JSON.stringify(list) !== JSON.stringify(hooks.endpoints);
    hooks.endpoints = list;
    if (changed || render || !quiet) renderEndpoints();
    if (!quiet) hooksLine(t("console.hooks_shown", { count: list.length }));
    // Deleted meanwhile (by another admin): its deliveries go too.
    if (hooks.open != null && !list.some((e) => e.id === hooks.open)) closeDeliveries(false);
  } catch (e) {
    if (generation === hooks.generation && !quiet) hooksLine(t("console.hooks_failed", { error: e.message }));
  }
}

function renderEndpoints() {
  const list = $("hook-list");
  preserve(list, () => {
    list.replaceChildren(...hooks.endpoints.map(renderEndpoint));
    if (!hooks.endpoints.length) list.append(el("li", "hook-empty hint", t("console.hooks_none")));
    return list;
  });
}

// Where an endpoint stands: active, paused (and why) or its circuit open (until when).
function hookState(e) {
  if (!e.enabled) {
    const id = HOOK_PAUSED[e.paused_reason];
    return { kind: "paused", text: id ? t(id) : t("console.hook_paused") };
  }
  if (e.circuit === "open" && typeof e.open_until === "number") {
    return { kind: "circuit", text: t("console.hook_circuit_open", { time: whenExact(e.open_until) }) };
  }
  return { kind: "active", text: t("console.hook_active") };
}

function renderEndpoint(e) {
  const li = el("li", "hook");
  li.dataset.endpointId = String(e.id);
  const state = hookState(e);
  li.dataset.state = state.kind;
  if (!e.enabled && e.paused_reason) li.dataset.pausedReason = e.paused_reason;
  for (const count of ["pending", "delivered", "failed"]) li.dataset[count] = String(e[count]);
  const head = el("div", "hook-head");
  const title = el("h3", "hook-title");
  title.id = `hook-${e.id}-title`;
  title.append(ltr("span", "hook-url", e.url));
  const badge = el("span", "hook-state hook-state--" + state.kind, state.text);
  badge.dataset.state = state.kind;
  head.append(title, badge);
  li.append(head);
  li.append(el("p", "hook-meta", t("console.hook_meta", { id: String(e.id), time: when(e.created_at) })));
  if (e.description) li.append(el("p", "hook-description", e.description));
  li.append(el("p", "hook-events-line", e.events.includes("*")
    ? t("console.hook_events_all")
    : t("console.hook_events", { events: e.events.join(", ") })));
  const counts = [
    t("console.hook_pending", { count: e.pending }),
    t("console.hook_delivered", { count: e.delivered }),
    t("console.hook_failed", { count: e.failed }),
  ];
  li.append(el("p", "hook-counts", counts.join(" · ")));
  const last = e.last_attempt_at ? t("console.hook_last_attempt", { time: whenExact(e.last_attempt_at) }) : t("console.hook_no_attempt");
  const facts = [last];
  if (e.failures) facts.push(t("console.hook_failures", { count: e.failures }));
  li.append(el("p", "hook-last", facts.join(" · ")));
  const note = hooks.notes.get(e.id);
  if (note) li.append(el("p", "ob-note ob-note--error", note));

  const actions = el("div", "hook-actions");
  const action = (name, text, className, onClick) => {
    const b = button(text, className, (ev) => onClick(e, ev.currentTarget));
    b.dataset.action = name;
    b.dataset.focusKey = `hook-${name}-${e.id}`;
    b.setAttribute("aria-describedby", title.id);
    actions.append(b);
    return b;
  };
  // One focus key for pause and resume: the focus stays when the button changes.
  const toggle = action("toggle", t(e.enabled ? "console.hook_pause" : "console.hook_resume"), "ob-button", toggleEndpoint);
  toggle.dataset.enabled = String(e.enabled);
  action("edit", t("console.hook_edit"), "ob-button", editEndpoint);
  action("secret", t("console.hook_new_secret"), "ob-button", rotateSecret);
  const show = action("deliveries", t("console.hook_show_deliveries"), "ob-button", (x) => openDeliveries(x.id));
  show.setAttribute("aria-controls", "hook-deliveries");
  show.setAttribute("aria-expanded", String(hooks.open === e.id));
  action("delete", t("console.hook_delete"), "ob-button ob-button--danger", deleteEndpoint);
  li.append(actions);
  return li;
}

async function toggleEndpoint(e, b) {
  b.disabled = true;
  hooks.notes.delete(e.id);
  const enabled = !e.enabled;
  try {
    await admin(`/admin/webhook-endpoints/${e.id}`, "PATCH", { enabled });
    hooksLine(t(enabled ? "console.hook_resumed" : "console.hook_paused_now", { id: String(e.id) }));
  } catch (err) {
    hooks.notes.set(e.id, t("console.hook_action_failed", { error: err.message }));
    hooksLine(t("console.hook_note", { id: String(e.id), text: err.message }));
  }
  await loadEndpoints({ quiet: true, render: true });
  if (hooks.open === e.id) loadDeliveries({ quiet: true });
}

async function rotateSecret(e, b) {
  if (!window.confirm(t("console.hook_secret_confirm", { url: e.url }))) return;
  b.disabled = true;
  hooks.notes.delete(e.id);
  let secret = null;
  try {
    const answer = await admin(`/admin/webhook-endpoints/${e.id}/secret`, "POST");
    secret = answer.secret;
    hooksLine(t("console.hook_secret_rotated", { id: String(e.id) }));
  } catch (err) {
    hooks.notes.set(e.id, t("console.hook_action_failed", { error: err.message }));
    hooksLine(t("console.hook_note", { id: String(e.id), text: err.message }));
  }
  await loadEndpoints({ quiet: true, render: true });
  if (secret) showSecret(e.id, secret, `hook-secret-${e.id}`);
}

async function deleteEndpoint(e, b) {
  if (!window.confirm(t("console.hook_delete_confirm", { url: e.url }))) return;
  b.disabled = true;
  hooks.notes.delete(e.id);
  try {
    await admin(`/admin/webhook-endpoints/${e.id}`, "DELETE");
    if (hooks.open === e.id) closeDeliveries(false);
    if ($("hook-secret").dataset.endpointId === String(e.id)) hideSecret(false);
    if (hooks.editing === e.id) {
      $("hook-form").reset();
      formMode(null);
    }
    hooksLine(t("console.hook_deleted", { id: String(e.id) }));
    await loadEndpoints({ quiet: true, render: true });
    // Its item is gone: the focus goes to the section's heading.
    $("hooks-title").focus();
  } catch (err) {
    hooks.notes.set(e.id, t("console.hook_action_failed", { error: err.message }));
    hooksLine(t("console.hook_note", { id: String(e.id), text: err.message }));
    await loadEndpoints({ quiet: true, render: true });
  }
}

// The secret, shown this once: in the page only, until hidden. `back`: the focus key of the
// button to return to.
let secretBack = null;
function showSecret(id, secret, back) {
  $("hook-secret-title").textContent = t("console.hook_secret_title", { id: String(id) });
  $("hook-secret-value").textContent = secret;
  $("hook-secret-copied").textContent = "";
  const box = $("hook-secret");
  box.dataset.endpointId = String(id);
  box.hidden = false;
  secretBack = back;
  box.scrollIntoView({ block: "center" });
  box.focus({ preventScroll: true });
}

function hideSecret(refocus = true) {
  const box = $("hook-secret");
  const was = !box.hidden;
  $("hook-secret-value").textContent = "";
  $("hook-secret-copied").textContent = "";
  delete box.dataset.endpointId;
  box.hidden = true;
  window.getSelection()?.removeAllRanges();
  if (!refocus || !was) return;
  const back = secretBack && document.querySelector(`[data-focus-key="${secretBack}"]`);
  (back || $("hook-url")).focus();
}

async function copySecret() {
  const code = $("hook-secret-value");
  let copied = false;
  try {
    await navigator.clipboard.writeText(code.textContent);
    copied = true;
  } catch {
    // No clipboard access (an insecure page, a refused permission): the text is selected
    // and copied the older way.
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
  }
  $("hook-secret-copied").textContent = t(copied ? "console.hook_copied" : "console.hook_copy_failed");
}

// The form adds an endpoint, or changes the one `hooks.editing` names (its texts say which).
function formMode(id) {
  hooks.editing = id;
  $("hook-form-title").dataset.t = id === null ? "console.hook_form_title" : "console.hook_form_edit_title";
  $("hook-add").dataset.t = id === null ? "console.hook_add" : "console.hook_save";
  $("hook-form-title").textContent = t($("hook-form-title").dataset.t);
  $("hook-add").textContent = t($("hook-add").dataset.t);
  $("hook-cancel-edit").hidden = id === null;
}

function editEndpoint(e) {
  $("hook-form").reset();
  formMode(e.id);
  $("hook-url").value = e.url;
  $("hook-description").value = e.description;
  const all = e.events.includes("*");
  $("hook-all-events").checked = all;
  for (const i of document.querySelectorAll("#hook-event-types input")) i.checked = !all && e.events.includes(i.value);
  $("hook-form-line").textContent = "";
  $("hook-url").focus();
}

function cancelEdit() {
  const id = hooks.editing;
  $("hook-form").reset();
  formMode(null);
  $("hook-form-line").textContent = "";
  const back = id === null ? null : document.querySelector(`[data-focus-key="hook-edit-${id}"]`);
  (back || $("hook-url")).focus();
}

async function addEndpoint(ev) {
  ev.preventDefault();
  const url = $("hook-url");
  const line = $("hook-form-line");
  url.removeAttribute("aria-invalid");
  if (!url.value.trim() || !url.checkValidity()) {
    url.setAttribute("aria-invalid", "true");
    line.textContent = t("console.hook_url_invalid");
    url.focus();
    return;
  }
  const events = $("hook-all-events").checked
    ? ["*"]
    : [...document.querySelectorAll("#hook-event-types input:checked")].map((i) => i.value);
  if (!events.length) {
    line.textContent = t("console.hook_choose_event");
    $("hook-all-events").focus();
    return;
  }
  const submit = $("hook-add");
  submit.disabled = true;
  const generation = hooks.generation;
  const editing = hooks.editing;
  if (editing !== null) {
    line.textContent = t("console.hook_saving");
    try {
      await admin(`/admin/webhook-endpoints/${editing}`, "PATCH", {
        url: url.value.trim(),
        description: $("hook-description").value.trim(),
        events,
      });
      if (generation !== hooks.generation) return;
      $("hook-form").reset();
      formMode(null);
      line.textContent = t("console.hook_saved", { id: String(editing) });
      await loadEndpoints({ quiet: true, render: true });
    } catch (err) {
      if (generation === hooks.generation) line.textContent = t("console.hook_save_failed", { error: err.message });
    } finally {
      submit.disabled = false;
    }
    return;
  }
  line.textContent = t("console.hook_adding");
  try {
    const created = await admin("/admin/webhook-endpoints", "POST", {
      url: url.value.trim(),
      description: $("hook-description").value.trim(),
      events,
    });
    if (generation !== hooks.generation) return;
    $("hook-form").reset();
    line.textContent = t("console.hook_added", { id: String(created.id) });
    await loadEndpoints({ quiet: true, render: true });
    showSecret(created.id, created.secret, `hook-toggle-${created.id}`);
  } catch (err) {
    if (generation === hooks.generation) line.textContent = t("console.hook_add_failed", { error: err.message });
  } finally {
    submit.disabled = false;
  }
}

async function openDeliveries(id) {
  hooks.open = id;
  hooks.deliveriesGeneration += 1;
  hooks.deliveries = new Map();
  hooks.more = false;
  hooks.expanded.clear();
  const e = hooks.endpoints.find((x) => x.id === id);
  $("hook-deliveries-title").textContent = t("console.hook_deliveries_title", { id: String(id) });
  $("hook-deliveries-url").replaceChildren(ltr("span", "hook-url", e ? e.url : ""));
  $("hook-delivery-list").replaceChildren();
  $("hook-deliveries-more").hidden = true;
  $("hook-deliveries").hidden = false;
  for (const b of document.querySelectorAll("#hook-list [data-action=deliveries]")) {
    b.setAttribute("aria-expanded", String(b.dataset.focusKey === `hook-deliveries-${id}`));
  }
  $("hook-deliveries-title").focus();
  await loadDeliveries();
}

function closeDeliveries(refocus = true) {
  const id = hooks.open;
  hooks.open = null;
  hooks.deliveriesGeneration += 1;
  hooks.deliveries = new Map();
  hooks.expanded.clear();
  $("hook-deliveries").hidden = true;
  $("hook-delivery-list").replaceChildren();
  deliveriesLine("");
  for (const b of document.querySelectorAll("#hook-list [data-action=deliveries]")) b.setAttribute("aria-expanded", "false");
  if (refocus && id != null) document.querySelector(`[data-focus-key="hook-deliveries-${id}"]`)?.focus();
}

// The open endpoint's deliveries, newest first: the first page (again, when `quiet`: what
// changed is re-rendered), or with `more` the page older than those loaded.
async function loadDeliveries({ more = false, quiet = false, render = false } = {}) {
  const id = hooks.open;
  if (id == null) return;
  const generation = hooks.deliveriesGeneration;
  const moreButton = $("hook-deliveries-more");
  if (!quiet) deliveriesLine(t("console.hook_deliveries_loading"));
  moreButton.disabled = true;
  try {
    const loaded = [...hooks.deliveries.keys()];
    const before = more && loaded.length ? `&before=${Math.min(...loaded)}` : "";
    const page = await admin(`/admin/webhook-endpoints/${id}/deliveries?limit=${HOOK_PAGE}${before}`);
    if (generation !== hooks.deliveriesGeneration) return;
    let changed = false;
    for (const d of page.data) {
      const old = hooks.deliveries.get(d.id);
      if (!old || JSON.stringify(old) !== JSON.stringify(d)) {
        hooks.deliveries.set(d.id, d);
        changed = true;
      }
    }
    // Whether older ones exist is known from the first page and from each older one.
    if (more || !loaded.length) hooks.more = page.next_before != null;
    if (changed || render || !quiet) renderDeliveries();
    if (!quiet) {
      const count = hooks.deliveries.size;
      deliveriesLine(count
        ? t(hooks.more ? "console.hook_deliveries_shown_more" : "console.hook_deliveries_shown", { count })
        : t("console.hook_deliveries_none"));
    }
  } catch (e) {
    if (generation === hooks.deliveriesGeneration) deliveriesLine(t("console.hook_deliveries_failed", { error: e.message }));
  } finally {
    if (generation === hooks.deliveriesGeneration) {
      moreButton.disabled = false;
      moreButton.hidden = !hooks.more;
    }
  }
}

function renderDeliveries() {
  const list = $("hook-delivery-list");
  preserve(list, () => {
    const ids = [...hooks.deliveries.keys()].sort((a, b) => b - a);
    list.replaceChildren(...ids.map((id) => renderDelivery(hooks.deliveries.get(id))));
    return list;
  });
}

// A <details> that stays open or closed across re-renders.
function expandable(key, summaryText, className) {
  const details = el("details", className);
  details.open = hooks.expanded.has(key);
  details.addEventListener("toggle", () => {
    if (details.open) hooks.expanded.add(key);
    else hooks.expanded.delete(key);
  });
  const summary = el("summary", null, summaryText);
  summary.dataset.focusKey = key;
  details.append(summary);
  return details;
}

function renderDelivery(d) {
  const li = el("li", "delivery");
  li.dataset.deliveryId = String(d.id);
  li.dataset.state = d.state;
  li.dataset.eventId = d.event_id;
  li.dataset.eventType = d.event_type;
  li.dataset.attempts = String(d.attempts);
  const known = DELIVERY_STATE[d.state];
  const head = el("div", "delivery-head");
  head.id = `delivery-${d.id}-head`;
  const state = el("span", "ob-state ob-state--" + (known ? known.look : "unknown"));
  const icon = el("span", "ob-icon", known ? known.icon : "?");
  icon.setAttribute("aria-hidden", "true");
  state.append(icon, document.createTextNode(known ? t(known.text) : d.state));
  head.append(state, ltr("code", "delivery-type", d.event_type), el("span", "hook-meta", t("console.delivery_title", { id: String(d.id) })));
  li.append(head);
  const facts = el("p", "delivery-facts");
  const eventId = el("span", "delivery-event-id", t("console.delivery_event_id", { id: d.event_id }));
  facts.append(eventId);
  const more = [t("console.delivery_occurred", { time: whenExact(d.occurred_at) }), t("console.attempts", { count: d.attempts })];
  if (d.state === "pending" && typeof d.next_attempt_at === "number") more.push(t("console.delivery_next", { time: whenExact(d.next_attempt_at) }));
  if (typeof d.delivered_at === "number") more.push(t("console.delivery_delivered_at", { time: whenExact(d.delivered_at) }));
  facts.append(el("span", null, more.join(" · ")));
  li.append(facts);

  const tries = expandable(`tries-${d.id}`, t("console.delivery_tries", { count: d.tries.length }), "delivery-tries");
  const list = el("ol", "delivery-try-list");
  for (const a of d.tries) {
    const item = el("li", null, t(a.status != null ? "console.delivery_try_status" : "console.delivery_try_error", {
      time: whenExact(a.at),
      status: String(a.status),
      error: a.error || t("console.no_message"),
      ms: a.latency_ms,
    }));
    item.dataset.ok = String(a.status != null && a.status >= 200 && a.status < 300);
    if (a.status != null) item.dataset.status = String(a.status);
    list.append(item);
  }
  if (!d.tries.length) list.append(el("li", "hint", t("console.delivery_no_tries")));
  tries.append(list);
  const payload = expandable(`payload-${d.id}`, t("console.delivery_payload"), "delivery-payload");
  const pre = ltr("pre", "delivery-json", JSON.stringify(d.payload, null, 2));
  pre.tabIndex = 0; // it may scroll: the keyboard reaches it
  payload.append(pre);
  li.append(tries, payload);

  // A pending delivery is still tried: it can be given up (so the endpoint's next event
  // goes); a delivered or given-up one can be sent again.
  const actions = el("div", "hook-actions");
  const pending = d.state === "pending";
  const action = pending ? "give-up" : "resend";
  const b = button(t(pending ? "console.delivery_give_up" : "console.delivery_resend"), "ob-button", (ev) =>
    deliveryAction(d, action, ev.currentTarget),
  );
  b.dataset.action = action;
  b.dataset.focusKey = `${action}-${d.id}`;
  b.setAttribute("aria-describedby", head.id);
  actions.append(b);
  li.append(actions);
  return li;
}

async function deliveryAction(d, action, b) {
  b.disabled = true;
  const resend = action === "resend";
  try {
    const answer = await admin(`/admin/webhook-deliveries/${d.id}/${action}`, "POST");
    deliveriesLine(
      resend
        ? t("console.delivery_resent", { id: String(d.id), queued: String(answer.delivery_id) })
        : t("console.delivery_given_up", { id: String(d.id) }),
    );
  } catch (err) {
    const failed = resend ? "console.delivery_resend_failed" : "console.delivery_give_up_failed";
    deliveriesLine(t(failed, { id: String(d.id), error: err.message }));
  }
  await loadDeliveries({ quiet: true, render: true });
  loadEndpoints({ quiet: true });
}

function setupWebhooks() {
  $("hook-form").addEventListener("submit", addEndpoint);
  $("hook-cancel-edit").addEventListener("click", cancelEdit);
  $("hook-url").addEventListener("input", () => $("hook-url").removeAttribute("aria-invalid"));
  $("hook-all-events").addEventListener("change", () => {
    if (!$("hook-all-events").checked) return;
    for (const i of document.querySelectorAll("#hook-event-types input")) i.checked = false;
  });
  $("hooks-refresh").addEventListener("click", () => {
    loadEndpoints();
    if (hooks.open != null) loadDeliveries();
  });
  $("hook-secret-copy").addEventListener("click", copySecret);
  $("hook-secret-done").addEventListener("click", () => hideSecret());
  $("hook-deliveries-close").addEventListener("click", () => closeDeliveries());
  $("hook-deliveries-more").addEventListener("click", () => loadDeliveries({ more: true }));
  // Escape closes the deliveries, as it would a dialog.
  $("hook-deliveries").addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeDeliveries();
  });
}

// Live: review decisions and shares Meta announces by webhook update the rows and counts
// in place (the package's followStatus: a stream ticket per connection, reconnects with
// backoff and resumes after the last event id).
let stream = null;
// Many changes at once (a replay after reconnecting) cost one re-render.
let viewQueued = false;
function queueView() {
  if (viewQueued) return;
  viewQueued = true;
  requestAnimationFrame(() => { viewQueued = false; applyView(); });
}

// Each change kind's description (`console.change.{kind}`, with Meta's value as `{value}`).
const said = (c) => ({ value: c.value || "?" });
const CHANGE_TEXT = {
  review: (c) => t("console.change.review", { value: String(c.value) }),
  partner_added: () => t("console.change.partner_added"),
  partner_removed: () => t("console.change.partner_removed"),
  partner_app_installed: () => t("console.change.partner_app_installed"),
  partner_app_uninstalled: () => t("console.change.partner_app_uninstalled"),
  account_violation: (c) => t("console.change.account_violation", said(c)),
  disabled_update: (c) => c.value === "REINSTATE" ? t("console.change.reinstated") : t("console.change.disabled_update", said(c)),
  account_restriction: (c) => t("console.change.account_restriction", said(c)),
  account_deleted: () => t("console.change.account_deleted"),
  account_offboarded: () => t("console.change.account_offboarded"),
  account_reconnected: () => t("console.change.account_reconnected"),
  certification: (c) => t("console.change.certification", said(c)),
  account_update: (c) => t("console.change.account_update", { value: c.value || t("console.change.no_event_name") }),
  phone_quality: (c) => t("console.change.phone_quality", said(c)),
  phone_name: (c) => t("console.change.phone_name", said(c)),
  // Not from Meta: the proxy's own post-signup steps, as they move.
  pipeline_step: (c) => t("console.change.pipeline_step", { text: (c.step && stepText(c.step)) || c.value || "?" }),
};

// The latest changes, newest first; kinds this page does not know are shown as Meta sent them.
function showChange(change) {
  const list = $("changes");
  const li = document.createElement("li");
  li.dataset.kind = change.kind;
  if (change.waba_id) li.dataset.wabaId = change.waba_id;
  const what = document.createElement("span");
  const known = CHANGE_TEXT[change.kind];
  what.textContent = aboutWaba(change.waba_id, known ? known(change) : t("console.change.unknown", { field: String(change.field) }));
  li.append(what);
  if (!known && change.raw) {
    const raw = document.createElement("code");
    raw.textContent = JSON.stringify(change.raw);
    li.append(raw);
  }
  const at = document.createElement("span");
  at.className = "action";
  at.textContent = when(change.received_at);
  li.append(at);
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild.remove();
}

// The kinds that put a lasting mark on an account's row, and the kinds that lift it.
const ALERT_KINDS = [
  "disabled_update", "account_restriction", "account_violation", "account_deleted", "account_offboarded",
  "partner_removed", "partner_app_uninstalled",
];
function markAlert(change) {
  if (!change.waba_id) return false;
  const lifted = (change.kind === "disabled_update" && change.value === "REINSTATE") ||
    (change.kind === "account_reconnected") || (change.kind === "partner_added");
  if (lifted) return state.alerts.delete(change.waba_id);
  if (!ALERT_KINDS.includes(change.kind)) return false;
  const text = CHANGE_TEXT[change.kind](change);
  const scheduled = change.kind === "disabled_update" && change.value === "SCHEDULE_FOR_DISABLE";
  const label = t(scheduled ? "console.alert.ban_scheduled" : "console.alert." + change.kind);
  state.alerts.set(change.waba_id, { kind: change.kind, label, text });
  return true;
}

function onChange(change) {
  window.__consoleMetrics.changes = (window.__consoleMetrics.changes || 0) + 1;
  showChange(change);
  if (change.kind === "pipeline_step" && change.step) onStepChange(change.step);
  if (markAlert(change)) queueView();
  if (change.kind === "review" && change.value) {
    const row = state.rows.find((w) => w.id === change.waba_id);
    if (row && row.account_review_status !== change.value) {
      row.account_review_status = change.value;
      queueView();
    }
    if (state.selected === change.waba_id) showDetail(change.waba_id);
  } else if (change.kind === "partner_added" || change.kind === "partner_removed") {
    loadShares();
  }
}

function followChanges() {
  if (stream) stream.stop();
  stream = followStatus({
    proxyUrl: config.proxyUrl,
    credential: adminToken,
    onChange,
    onEnd: ({ status }) => {
      $("status-line").textContent = t("console.stream_refused", { status: String(status) });
    },
  });
}

function start(token) {
  adminToken = token;
  client = new WabaClient({ proxyUrl: config.proxyUrl, credential: token, timeoutMs: 20000 });
  $("signin").hidden = true;
  $("workspace").hidden = false;
  startWebhooks();
  reload();
  resetBoard();
  loadOnboardings();
  loadActivity();
  followChanges();
  funnel.reset();
  funnel.load();
}

async function main() {
  const language = loadLanguage();
  await init();
  useLanguage(await language);
  panel = new StatusPanel($("detail-panel"));
  funnel = setupFunnel({
    request: adminFetch,
    t,
    locale: () => locale,
    el,
  });
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("admin-token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("admin-token").value = "";
    start(token);
  });
  $("signout").addEventListener("click", signOut);
  $("check-shares").addEventListener("click", checkShares);
  $("refresh-follow-ups").addEventListener("click", loadFollowUps);
  $("onboardings-more").addEventListener("click", () => loadOnboardings(true));
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      state.edge = tab.dataset.edge;
      for (const other of document.querySelectorAll("[role=tab]")) other.setAttribute("aria-selected", String(other === tab));
      reload();
    });
  }
  for (const id of ["created-after", "created-before", "sort"]) $(id).addEventListener("change", reload);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("search").addEventListener("input", applyView);
  $("load-all").addEventListener("click", loadAll);
  $("list").addEventListener("scroll", () => renderRows(false), { passive: true });
  $("list").addEventListener("click", (e) => {
    const row = e.target.closest(".row");
    if (row) showDetail(row.dataset.accountId);
  });
  $("list").addEventListener("keydown", (e) => {
    if (!["ArrowDown", "ArrowUp", "Enter"].includes(e.key) || !state.shown.length) return;
    e.preventDefault();
    let i = state.shown.findIndex((w) => w.id === state.selected);
    if (e.key === "ArrowDown") i = Math.min(state.shown.length - 1, i + 1);
    if (e.key === "ArrowUp") i = Math.max(0, i - 1);
    const w = state.shown[Math.max(0, i)];
    const list = $("list");
    const top = Math.max(0, i) * ROW;
    if (top < list.scrollTop || top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 2;
    showDetail(w.id);
  });
  setupWebhooks();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else signOut();
}

main();
