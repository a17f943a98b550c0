// The browser side of the waba-onboard module, imported by its wasm (wasm-bindgen ships it
// next to the glue). Measured, building DOM nodes, waiting on fetch and timers and listening
// for events cost several times more bytes as wasm and glue than as JS, so they live here; the
// model (parsing, validation, statuses, who acts, error codes) stays in Rust, which calls in.
// Text reaches the page only through `textContent`, never as HTML. Every text comes from the
// chosen message catalog (English, `./locales/en.js`, until `useMessages` chooses another).
import ENGLISH from "./locales/en.js";

const ACTORS = ["business", "partner", "meta", "nobody"];

/** An actor name as Rust's `Actor::parse` reads it. */
const actor = (a) => (ACTORS.includes(a) ? a : "unknown");

/** The class suffix of a status value: lower case letters, digits and dashes only. */
const slug = (s) =>
  [...s]
    .slice(0, 40)
    .map((c) => (/[A-Za-z0-9]/.test(c) ? c.toLowerCase() : "-"))
    .join("");

/** A new element with `className` and, when given, text, appended to `parent`. */
function el(parent, tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.append(e);
  return e;
}

/** Sets attributes from an object, skipping `undefined` and `null` values. */
function attrs(e, values) {
  for (const [k, v] of Object.entries(values)) if (v != null) e.setAttribute(k, v);
  return e;
}

/** The catalog every text is written from (`useMessages`). */
let active = ENGLISH;

/** Whether `tag` is a language tag `Intl` takes. */
function isTag(tag) {
  try {
    return typeof tag == "string" && tag.length <= 35 && Intl.getCanonicalLocales(tag).length == 1;
  } catch {
    return false;
  }
}

/** Chooses the catalog every text is written from (`null`: English); refuses anything else. */
export function useCatalog(catalog) {
  if (catalog == null) catalog = ENGLISH;
  const m = catalog?.messages;
  if (!(isTag(catalog?.locale) && m !== null && typeof m == "object")) {
    throw Object.assign(new Error("a catalog is {locale, dir?, messages} (waba-onboard/locales)"), { name: "WabaOnboardError", code: "invalid_argument" });
  }
  active = catalog;
}

const own = (m, id) => (Object.hasOwn(m, id) && typeof m[id] == "string" ? m[id] : undefined);

/** The language and direction of what is written now (`lang` and `dir` of what shows it). */
export const language = () => ({ lang: active.locale, dir: active.dir == "rtl" ? "rtl" : "ltr" });

/**
 * The template of `id` in the chosen catalog, or English's. In a right-to-left catalog each
 * value is isolated (U+2068 ... U+2069), so a phone number or a code keeps its own order.
 */
export function template(id) {
  const t = own(active.messages, id);
  if (t === undefined) return own(ENGLISH.messages, id);
  return active.dir == "rtl" ? t.replace(/\{[a-z_]+\}/g, "\u2068$&\u2069") : t;
}

const made = new Map();
/** One `Intl` formatter of a kind per locale, made once (making one costs far more than using it). */
function intl(Kind, locale) {
  const key = Kind.name + " " + locale;
  if (!made.has(key)) made.set(key, new Kind(locale));
  return made.get(key);
}

/**
 * The text of `id` in the chosen language with `values` filled in: numbers through
 * `Intl.NumberFormat`; a `count` picks the plural form (`id.one`, `id.few`, ..., `id.other`)
 * by `Intl.PluralRules`. An id no catalog has is returned as it is.
 */
export function message(id, values) {
  const v = values !== null && typeof values == "object" ? values : {};
  const locale = active.locale;
  let t;
  const n = typeof v.count == "string" && v.count.trim() != "" ? Number(v.count) : v.count;
  const count = typeof n == "number" && !Number.isNaN(n) ? n : undefined;
  if (count !== undefined) {
    // The chosen catalog's form, or its "other"; English's only when it has neither.
    const form = id + "." + intl(Intl.PluralRules, locale).select(count);
    const other = id + ".other";
    const chosen = own(active.messages, form) !== undefined ? form : own(active.messages, other) !== undefined ? other : null;
    t = chosen ? template(chosen) : template(form) ?? template(other);
  }
  t ??= template(id) ?? template(id + ".other");
  if (t === undefined) return id;
  return t.replace(/\{([a-z_]+)\}/g, (all, k) => {
    const x = k == "count" && count !== undefined ? count : Object.hasOwn(v, k) ? v[k] : undefined;
    return typeof x == "number" ? intl(Intl.NumberFormat, locale).format(x) : typeof x == "string" ? x : all;
  });
}

/** The status panel's DOM (`StatusPanel` in Rust holds one). */
export class Panel {
  constructor(container) {
    container.textContent = "";
    this.root = el(container, "section", "waba-panel");
    this.live = attrs(el(this.root, "div", "waba-live"), { role: "status", "aria-live": "polite" });
    this.state = el(this.root, "div", "waba-state");
    this.list = el(this.root, "ul", "waba-accounts");
    // Review status last shown, by WABA id, to announce changes.
    this.shown = new Map();
    this.mark();
  }

  /** The panel's language, direction and name, as the texts it writes now. */
  mark() {
    attrs(this.root, { ...language(), "aria-label": this.t("label") });
  }

  /** The panel's text `id` (`panel.` left out) with `values`. */
  t(id, values) {
    return message("panel." + id, values);
  }

  show(kind, title, detail) {
    this.mark();
    const s = this.state;
    s.textContent = "";
    s.className = "waba-state waba-state--" + kind;
    if (kind == "idle") return;
    el(s, "strong", "waba-state__title", title);
    if (detail != null) el(s, "p", "waba-state__detail", detail);
  }

  busy(on) {
    this.root.setAttribute("aria-busy", on);
  }

  loading(text = this.t("loading")) {
    this.busy(true);
    this.show("loading", text);
    this.live.textContent = text;
  }

  notice(title, detail) {
    this.show("notice", title, detail);
    this.live.textContent = title;
  }

  error(e) {
    this.busy(false);
    const code = e?.code;
    const detail = typeof e?.message == "string" ? e.message : typeof e == "string" ? e : this.t("error_detail");
    this.state.setAttribute("role", "alert");
    // An upstream timeout reads as any other to the business.
    const key = code == "upstream_timeout" ? "timeout" : code;
    const title = typeof key == "string" && /^[a-z_]+$/.test(key) ? template("panel.error." + key) : undefined;
    this.show("error", title ?? this.t("error"), detail);
    if (typeof code == "string") this.state.setAttribute("data-error-code", code);
  }

  signup(outcome, title, detail) {
    this.busy(false);
    this.state.setAttribute("data-outcome", outcome);
    this.show("signup", title, detail);
    this.live.textContent = title;
  }

  /**
   * Renders `accounts` (read and checked by Rust, which gives each one's review, whether it
   * is a known status, and its time zone as shown), updating rows in place by WABA id.
   */
  render(accounts, views, warnings) {
    this.busy(false);
    this.state.removeAttribute("role");
    this.show(accounts.length ? "idle" : "empty", this.t("none_shared"));
    for (const w of Array.isArray(warnings) ? warnings : []) {
      if (w === null || typeof w != "object") continue;
      el(this.state, "p", "waba-warning", w.message ?? "").setAttribute("data-warning", w.code ?? "");
      this.state.className = "waba-state waba-state--warning";
    }
    const existing = new Map();
    for (const item of this.list.children) {
      const id = item.getAttribute("data-account-id");
      if (id != null) existing.set(id, item);
    }
    const changes = [];
    accounts.forEach((a, i) => {
      const [id, review, known, timezone] = views[i];
      let item = existing.get(id);
      existing.delete(id);
      if (item) item.textContent = "";
      else attrs((item = el(null, "li")), { "data-account-id": id });
      account(this, item, a, review, known, timezone, id);
      // Appending moves existing rows into the new order.
      this.list.append(item);
      const before = this.shown.get(id);
      if (before !== undefined && before != review) {
        changes.push(this.t("review_changed", { name: str(a.waba.name, id), before, after: review }));
      }
      this.shown.set(id, review);
    });
    for (const [id, stale] of existing) {
      stale.remove();
      this.shown.delete(id);
    }
    const n = accounts.length;
    this.live.textContent = changes.length ? changes.join(". ") : this.t("shown", { count: n });
  }
}

function account(panel, item, a, review, known, timezone, id) {
  const t = (k) => panel.t(k);
  const waba = a.waba;
  const alerts = list(a.alerts);
  item.className =
    "waba-account" +
    (a.newest ? " waba-account--newest" : "") +
    (a.incomplete ? " waba-account--incomplete" : "") +
    (alerts.length ? " waba-account--alert" : "");
  const header = el(item, "header", "waba-account__header");
  el(header, "h3", "waba-account__name", str(waba.name, t("unnamed")));
  attrs(el(header, "span", "waba-badge waba-badge--" + (known ? slug(review) : "unknown"), review), {
    "data-status": review,
    title: t("review_status"),
  });
  if (a.newest) el(header, "span", "waba-newest", t("newest"));

  const facts = el(item, "dl", "waba-account__facts");
  for (const [label, value] of [
    [t("waba_id"), id],
    [t("currency"), waba.currency],
    [t("timezone"), timezone],
    [t("namespace"), waba.message_template_namespace],
    [t("health"), waba.health_status?.can_send_message],
    [t("verification"), waba.business_verification_status],
  ]) {
    if (typeof value != "string") continue;
    el(facts, "dt", "", label);
    el(facts, "dd", "", value);
  }

  const v = a.verification;
  if (v) attrs(el(item, "p", "waba-verification", v.message ?? ""), { "data-status": v.kind ?? "", "data-actor": actor(v.actor) });
  for (const x of alerts) {
    const notice = attrs(el(item, "div", "waba-notice waba-alert waba-alert--" + slug(x.kind ?? "")), {
      role: "alert",
      "data-kind": x.kind ?? "",
      "data-actor": actor(x.actor),
    });
    el(notice, "p", "", x.message ?? "");
  }
  const inc = a.incomplete;
  if (inc) {
    const notice = attrs(el(item, "div", "waba-notice waba-notice--incomplete"), { role: "note", "data-reason": inc.reason ?? "" });
    el(notice, "strong", "", t("incomplete"));
    el(notice, "p", "", inc.message ?? "");
  }
  const problems = Array.isArray(a.healthProblems) ? a.healthProblems.filter((p) => typeof p == "string") : [];
  if (problems.length) {
    const ul = el(item, "ul", "waba-health-problems");
    for (const p of problems) el(ul, "li", "", p);
  }
  // Steps that were not needed say nothing to the business.
  const steps = list(a.progress).filter((p) => p.state != "skipped");
  if (list(a.progress).length) {
    const ol = attrs(el(item, "ol", "waba-steps"), { "aria-label": t("steps") });
    for (const p of steps) {
      const state = p.state ?? "";
      const li = attrs(el(ol, "li", "waba-step waba-step--" + state, p.text ?? ""), {
        "data-step": p.step ?? p.kind ?? "",
        "data-state": state,
        "data-actor": actor(p.actor),
        "data-phone-id": p.phoneId ?? p.phone_id,
      });
      if (state == "failed" && p.message != null) el(li, "p", "waba-step__message", p.message);
    }
  }
  const phones = attrs(el(item, "ul", "waba-phones"), { "aria-label": t("phones") });
  const statuses = list(a.phones);
  if (!statuses.length) el(phones, "li", "waba-phone waba-phone--none", t("no_phone"));
  for (const p of statuses) phone(panel, phones, p);
}

function phone(panel, parent, p) {
  const n = p.phone;
  const who = actor(p.actor);
  const li = el(parent, "li", "waba-phone waba-phone--" + (p.ready ? "ready" : "not-ready"));
  li.setAttribute("data-phone-id", n.id);
  el(li, "span", "waba-phone__number", str(n.display_phone_number, String(n.id)));
  if (typeof n.verified_name == "string") el(li, "span", "waba-phone__name", n.verified_name);
  if (typeof n.status == "string") el(li, "span", "waba-chip waba-chip--" + slug(n.status), n.status);
  if (typeof n.quality_rating == "string") {
    el(li, "span", "waba-quality waba-quality--" + slug(n.quality_rating), n.quality_rating).title = panel.t("quality");
  }
  attrs(li, { "data-actor": who, "data-action": p.action ?? "unknown" });
  el(li, "span", "waba-phone__ready", panel.t(p.ready ? "ready" : who == "nobody" || who == "unknown" ? "not_ready" : "not_ready." + who));
  if (typeof p.problem == "string") el(li, "p", "waba-phone__problem", p.problem);
}

/** The objects in an array (nothing when it is not one). */
const list = (v) => (Array.isArray(v) ? v.filter((x) => x !== null && typeof x == "object") : []);

/** A string, or `fallback`. */
const str = (v, fallback) => (typeof v == "string" ? v : fallback);

/**
 * `fetch` with the credential and a timeout: `{status, retryAfter, body}` (`body` the parsed
 * JSON, or `undefined` when the answer is not JSON), or `{timedOut}` when no answer came.
 * With `body`, a `POST` of it as JSON.
 */
export async function request(url, credential, timeoutMs, body) {
  const headers = {};
  if (credential != null) headers.Authorization = "Bearer " + credential;
  const init = { headers, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res, text;
  try {
    res = await fetch(url, init);
    text = await res.text();
  } catch (e) {
    return { timedOut: e?.name == "TimeoutError" || e?.name == "AbortError" };
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: json };
}

/**
 * Runs `onboard` on its Rust state `o`: the first request (the code exchange or `debug_token`),
 * then every granted WABA, `parallel` at a time (a request runs from the moment it starts),
 * read in order. Rust reads each answer and throws the error it stands for.
 */
export async function runOnboard(o, parallel) {
  try {
    const n = o.granted(await o.begin());
    const calls = [];
    for (let i = 0; i < n; i++) {
      while (calls.length < Math.min(i + parallel, n)) calls.push(o.start(calls.length));
      o.account(i, await calls[i]);
    }
    return o.done();
  } finally {
    o.free();
  }
}

/**
 * `SignupListener`'s events and timer around its Rust `tracker`, which reads every message and
 * the login response and says when the signup result is complete.
 */
export class Listener {
  constructor(tracker, graceMs) {
    this.tracker = tracker;
    this.graceMs = graceMs;
    this.waiting = [];
    this.onMessage = (ev) => this.deliver(tracker.message(ev.origin, ev.data));
    addEventListener("message", this.onMessage);
  }

  deliver(result) {
    if (result === undefined) return;
    this.result = result;
    for (const resolve of this.waiting.splice(0)) resolve(result);
  }

  login(response) {
    const t = this.tracker;
    this.deliver(t.login(response));
    if (t.waiting()) setTimeout(() => this.deliver(t.stopWaiting()), this.graceMs);
  }

  wait() {
    return new Promise((resolve) => (this.result === undefined ? this.waiting.push(resolve) : resolve(this.result)));
  }

  dispose() {
    removeEventListener("message", this.onMessage);
  }
}
