// The partner console: every client and owned WABA, filtered, sorted, searched, with counts
// per review status and a detail view. The list renders only the rows in view, so it stays
// smooth with 10,000 accounts; more pages load as you scroll, through the proxy's own
// `paging.next` links.
import init, { WabaClient, StatusPanel, accountStatus } from "./pkg/web/waba_onboard.js";
import { followStatus } from "./pkg/waba-onboard-stream.js";

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

function day(value) {
  return value ? Math.floor(Date.parse(value + "T00:00:00Z") / 1000) : undefined;
}

function created(w) {
  return typeof w.creation_time === "number" ? new Date(w.creation_time * 1000).toISOString().slice(0, 10) : "";
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
    badge.textContent = `${status} ${n}`;
    li.append(badge);
    list.append(li);
  }
  const more = state.next ? " · more load as you scroll" : "";
  $("status-line").textContent = `${state.shown.length} of ${state.rows.length} loaded accounts shown${more}`;
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
    name.textContent = w.name || "Unnamed account";
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${w.id} · created ${created(w)}`;
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
    $("status-line").textContent = `Could not load accounts: ${e.message}`;
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
  panel.loading("Loading the account…");
  try {
    const waba = await client.waba(id);
    panel.render([accountStatus(waba)]);
  } catch (e) {
    panel.showError(e);
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  adminToken = null;
  if (stream) stream.stop();
  $("workspace").hidden = true;
  $("signin").hidden = false;
  $("admin-token").focus();
}

// Onboarding activity: the proxy's records that need follow-up, and WABAs the tracker found
// newly shared (or no longer shared). Events newer than the last visit are highlighted.
const SEEN_KEY = "waba-shares-seen";
let adminToken = null;

async function admin(path, method = "GET") {
  const res = await fetch(config.proxyUrl.replace(/\/$/, "") + path, {
    method,
    headers: { Authorization: "Bearer " + adminToken },
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || `HTTP ${res.status}`);
  return body;
}

function when(unix) {
  return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

async function loadActivity() {
  try {
    const f = await admin("/admin/follow-ups?limit=50");
    const list = $("follow-ups");
    list.replaceChildren();
    $("follow-up-count").textContent = String(f.data.length);
    for (const r of f.data) {
      for (const item of r.follow_ups) {
        const li = document.createElement("li");
        li.dataset.reason = item.reason;
        li.dataset.onboardingId = String(r.id);
        const what = document.createElement("span");
        what.textContent = `${item.waba_id ? "WABA " + item.waba_id + ": " : ""}${item.message}`;
        const action = document.createElement("span");
        action.className = "action";
        action.textContent = `${item.action} (${when(r.created_at)})`;
        li.append(what, action);
        list.append(li);
      }
    }
    if (!f.data.length) list.append(Object.assign(document.createElement("li"), { textContent: "Nothing to follow up." }));
  } catch (e) {
    $("follow-up-count").textContent = e.message;
  }
  await loadShares();
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
      li.textContent = `${e.kind === "shared" ? "Shared" : "No longer shared"}: WABA ${e.waba_id} · ${when(e.detected_at)}`;
      list.append(li);
    }
    const fresh = events.filter((e) => e.seq > seen).length;
    $("shares-line").textContent = events.length ? `${fresh} new since your last visit` : "No changes seen yet.";
    if (events.length) localStorage.setItem(SEEN_KEY, String(events[events.length - 1].seq));
  } catch (e) {
    $("shares-line").textContent = e.message;
  }
}

async function checkShares() {
  $("shares-line").textContent = "Checking the client list…";
  try {
    const pass = await admin("/admin/tracker/pass", "POST");
    await loadShares();
    if (pass.baseline) $("shares-line").textContent = "Recorded the current accounts; changes show from now on.";
  } catch (e) {
    $("shares-line").textContent = e.message;
  }
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

const CHANGE_TEXT = {
  review: (c) => `Review decided: ${c.value}`,
  partner_added: () => "Shared with you",
  partner_removed: () => "No longer shared with you: its onboarding is revoked",
  partner_app_installed: () => "The business granted your app permissions",
  partner_app_uninstalled: () => "The business removed your app: its onboarding is revoked",
  account_violation: (c) => `Policy violation: ${c.value || "?"}`,
  disabled_update: (c) => c.value === "REINSTATE" ? "Reinstated by Meta" : `Disabled by Meta: ${c.value || "?"}`,
  account_restriction: (c) => `Restricted by Meta: ${c.value || "?"}`,
  account_deleted: () => "Account deleted",
  account_offboarded: () => "Offboarded (device change or number re-registration)",
  account_reconnected: () => "Reconnected",
  certification: (c) => `Partner-led business verification: ${c.value || "?"}`,
  account_update: (c) => `Account update: ${c.value || "(no event name)"}`,
  phone_quality: (c) => `Phone quality: ${c.value || "?"}`,
  phone_name: (c) => `Display name: ${c.value || "?"}`,
};

// The latest changes, newest first; kinds this page does not know are shown as Meta sent them.
function showChange(change) {
  const list = $("changes");
  const li = document.createElement("li");
  li.dataset.kind = change.kind;
  if (change.waba_id) li.dataset.wabaId = change.waba_id;
  const what = document.createElement("span");
  const known = CHANGE_TEXT[change.kind];
  what.textContent = `${change.waba_id ? "WABA " + change.waba_id + ": " : ""}${known ? known(change) : "Unrecognised " + change.field}`;
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
const ALERT_LABEL = {
  disabled_update: "DISABLED", account_restriction: "RESTRICTED", account_violation: "VIOLATION",
  account_deleted: "DELETED", account_offboarded: "OFFBOARDED", partner_removed: "REMOVED",
  partner_app_uninstalled: "APP REMOVED",
};
function markAlert(change) {
  if (!change.waba_id) return false;
  const lifted = (change.kind === "disabled_update" && change.value === "REINSTATE") ||
    (change.kind === "account_reconnected") || (change.kind === "partner_added");
  if (lifted) return state.alerts.delete(change.waba_id);
  const label = ALERT_LABEL[change.kind];
  if (!label) return false;
  const text = CHANGE_TEXT[change.kind](change);
  state.alerts.set(change.waba_id, { kind: change.kind, label: change.kind === "disabled_update" && change.value === "SCHEDULE_FOR_DISABLE" ? "BAN SCHEDULED" : label, text });
  return true;
}

function onChange(change) {
  window.__consoleMetrics.changes = (window.__consoleMetrics.changes || 0) + 1;
  showChange(change);
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
      $("status-line").textContent =
        `Live changes stopped: the proxy refused the admin token (HTTP ${status}). Sign in again.`;
    },
  });
}

function start(token) {
  adminToken = token;
  client = new WabaClient({ proxyUrl: config.proxyUrl, credential: token, timeoutMs: 20000 });
  $("signin").hidden = true;
  $("workspace").hidden = false;
  reload();
  loadActivity();
  followChanges();
}

async function main() {
  await init();
  panel = new StatusPanel($("detail"));
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
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => {
      state.edge = tab.dataset.edge;
      for (const t of document.querySelectorAll("[role=tab]")) t.setAttribute("aria-selected", String(t === tab));
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
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token);
  else signOut();
}

main();
