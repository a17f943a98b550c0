// waba-onboard signup: one Embedded Signup from the button to every account's status, shared
// by the script embed and the React binding (each draws its own button and notices).
//
//   const signup = await Signup.create(options, hooks);
//   button.onclick = () => signup.start();
//
// options: proxyUrl, appId, configId (required); responseType ("code" by default, Meta's
// documented flow; or "token"); esVersion ("v4" by default, chosen by the login configuration;
// "v3"; or "v2", deprecated by Meta on 2026-10-15); featureType (e.g.
// "whatsapp_business_app_onboarding" for coexistence); sdkUrl, graphVersion, extraOrigins
// (message origins to trust besides https://*.facebook.com, for tests and demos only),
// timeoutMs, live (false: no live status stream); login ("auto" by default: Meta's popup, and
// Meta's full-page dialog when the popup is blocked (Meta's SDK answers within a
// second, with nothing; a person who closes it cancelled);
// "popup"; or "redirect", the full-page dialog at once; the full page needs the code flow),
// dialogUrl (Meta's dialog, https://www.facebook.com/{graphVersion}/dialog/oauth by default),
// redirectUri (where the dialog returns: this page's address without its query by default; it
// must be among the app's valid OAuth redirect URIs); locale (a language tag or a list, best
// first: the panel's and notices' language, and Meta's SDK's; the browser's languages by
// default; see waba-onboard/locales).
// hooks (all optional): panelBox (an element the status panel is drawn in), onResult(result), onDone(result,
// loaded), onCancel(result), onError(error), onStatus(change, accounts, changed),
// onRetryWait(seconds) (Meta is limiting requests: the next try in `seconds`, 0 once it starts;
// `retryNow()` starts it sooner). `dispose()` ends it all: no hook is called after it.
import init, { SignupListener, StatusPanel, WabaClient, applyChange, message, onboard, useMessages } from "./web/waba_onboard.js";
import { followStatus } from "./waba-onboard-stream.js";

export { message };

/**
 * Meta's SDK in Meta's locale (`ll_CC`, `es_LA` and `ar_AR` being Meta's umbrella locales:
 * developers.facebook.com/docs/javascript/internationalization). `{locale}` in an `sdkUrl`
 * is replaced the same way.
 */
const META_SDK = "https://connect.facebook.net/{locale}/sdk.js";
/** Where the page keeps the full-page dialog's `state` and return address until it is back. */
const DIALOG_KEY = "waba-onboard:dialog";
/** What Meta's full-page dialog adds to the address it returns to. */
const DIALOG_PARAMS = ["code", "state", "error", "error_code", "error_description", "error_reason"];
/** A login answered sooner than this without anything was no person's doing: a blocked popup. */
const BLOCKED_MS = 1000;

// Back from Meta's full-page dialog (with the `state` this page sent): its answer leaves the
// address bar and the history as soon as this module runs, whatever happens next; `resume`
// takes it from here.
let dialogAnswer = takeDialogAnswer();

function takeDialogAnswer() {
  if (typeof location === "undefined" || typeof sessionStorage === "undefined") return null;
  const params = new URLSearchParams(location.search);
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(DIALOG_KEY) || "null");
  } catch {}
  const state = params.get("state");
  if (!saved || !state || saved.state !== state || !(params.has("code") || params.has("error"))) return null;
  sessionStorage.removeItem(DIALOG_KEY);
  const clean = new URL(location.href);
  for (const k of DIALOG_PARAMS) clean.searchParams.delete(k);
  history.replaceState(history.state, "", clean.href.replace(/#_=_$/, ""));
  return { params, back: saved.back };
}

// `extras` of FB.login per Embedded Signup version
// (developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/versions):
// v4 is chosen by the login configuration itself; v3 by `version`; v2 needs
// `sessionInfoVersion` to post the session message at all.
const ES_EXTRAS = {
  v4: () => ({ setup: {} }),
  v3: () => ({ setup: {}, version: "v3" }),
  v2: () => ({ setup: {}, sessionInfoVersion: "3" }),
};

/** Checks `options` and fills in the defaults; throws an Error naming what is wrong. */
export function signupOptions(options) {
  const given = Object.fromEntries(Object.entries(options || {}).filter(([, v]) => v !== undefined));
  const o = { responseType: "code", esVersion: "v4", graphVersion: "v26.0", live: true, extraOrigins: [], login: "auto", ...given };
  for (const key of ["proxyUrl", "appId", "configId"]) {
    if (!o[key]) throw new Error(`waba-onboard: ${key} is required`);
  }
  if (o.responseType !== "code" && o.responseType !== "token") {
    throw new Error('waba-onboard: the response type must be "code" or "token"');
  }
  if (!["auto", "popup", "redirect"].includes(o.login)) {
    throw new Error('waba-onboard: login must be "auto", "popup" or "redirect"');
  }
  if (o.login === "redirect" && o.responseType !== "code") {
    throw new Error("waba-onboard: Meta's full-page dialog needs the code flow");
  }
  const make = ES_EXTRAS[o.esVersion];
  if (!make) throw new Error(`waba-onboard: the Embedded Signup version must be one of ${Object.keys(ES_EXTRAS).join(", ")}`);
  o.extras = make();
  if (o.featureType) o.extras.featureType = o.featureType;
  return o;
}

/** English, the module's own templates (it overrides none). */
const ENGLISH = { locale: "en", dir: "ltr", sdk: "en_US", messages: {} };

/**
 * The catalog of the language asked for (the browser's by default): English at once when the
 * first tag asked for is English, as `chooseLocale` would answer; else through
 * `waba-onboard/locales`, loaded then (English when it cannot be).
 */
async function catalogFor(preferred) {
  const asked = preferred ?? (typeof navigator == "undefined" ? [] : navigator.languages || []);
  const first = typeof asked == "string" ? asked : Array.from(asked)[0];
  if (first == null || /^en(?:$|[-_])/i.test(String(first).trim())) return ENGLISH;
  try {
    return await (await import("./waba-onboard-locales.js")).loadLocale(asked);
  } catch (e) {
    console.warn("waba-onboard: the catalog could not be loaded; English instead", e);
    return ENGLISH;
  }
}

let sdkLoading = null;

/** Meta's SDK, loaded once per page (or the one already there). */
function loadSdk(src, appId, version) {
  if (window.FB) return Promise.resolve(window.FB);
  if (sdkLoading) return sdkLoading;
  sdkLoading = new Promise((resolve, reject) => {
    window.fbAsyncInit = () => {
      window.FB.init({ appId, autoLogAppEvents: true, xfbml: false, version });
      resolve(window.FB);
    };
    const tag = document.createElement("script");
    tag.src = src;
    tag.async = true;
    tag.crossOrigin = "anonymous";
    tag.onerror = () => {
      sdkLoading = null;
      reject(new Error(message("page.sdk_failed")));
    };
    document.head.appendChild(tag);
  });
  return sdkLoading;
}

export class Signup {
  /**
   * Loads the wasm module and the catalog of the chosen language (English when it cannot be
   * loaded), draws the panel (with `hooks.panelBox`) and starts loading Meta's SDK in the
   * same language (Meta's SDK loads once per page: in the first signup's language). Null
   * when `hooks.isLive()` says the caller went away meanwhile.
   */
  static async create(options, hooks = {}) {
    const o = signupOptions(options);
    const [catalog] = await Promise.all([catalogFor(o.locale), init()]);
    // Unmounted while loading (a React effect cleaned up): this one draws and chooses nothing.
    if (hooks.isLive && !hooks.isLive()) return null;
    useMessages(catalog);
    o.catalog = catalog;
    return new Signup(o, hooks);
  }

  /** The language and direction of the signup's texts, for the elements that show them. */
  get language() {
    return { lang: this.o.catalog.locale, dir: this.o.catalog.dir == "rtl" ? "rtl" : "ltr" };
  }

  constructor(o, hooks) {
    this.o = o;
    this.hooks = { ...hooks, panel: hooks.panelBox ? new StatusPanel(hooks.panelBox) : null };
    this.client = new WabaClient({ proxyUrl: o.proxyUrl, timeoutMs: Number(o.timeoutMs) || undefined });
    this.sdk = loadSdk((o.sdkUrl || META_SDK).replace("{locale}", o.catalog.sdk || "en_US"), o.appId, o.graphVersion);
    this.sdk.catch((e) => this.failed(e));
    this.following = null;
    this.retryNow = () => {};
    this.disposed = false;
  }

  /** Stops the live stream and any wait, and calls no hook any more (an unmounted component). */
  dispose() {
    this.disposed = true;
    this.retryNow();
    this.stop();
  }

  failed(e) {
    if (this.disposed) return;
    if (this.hooks.panel) this.hooks.panel.showError(e);
    if (this.hooks.onError) this.hooks.onError(e);
  }

  /**
   * One signup: Meta's dialog, the result, every account's status. Resolves with
   * `{result, loaded}` (`loaded` is `onboard`'s answer, or null without accounts); when the
   * page goes to Meta's full-page dialog instead, it resolves with nulls as it leaves.
   */
  async start() {
    const { o, hooks } = this;
    if (o.login === "redirect") return this.redirect();
    const listener = new SignupListener({ extraOrigins: o.extraOrigins });
    try {
      const FB = await this.sdk;
      if (hooks.panel) hooks.panel.loading(message("page.waiting"));
      const asked = Date.now();
      let answered = Infinity;
      FB.login((response) => {
        answered = Date.now();
        listener.login(response);
      }, {
        config_id: o.configId,
        response_type: o.responseType,
        override_default_response_type: true,
        extras: o.extras,
      });
      const result = await listener.result();
      // Blocked (Meta's SDK answers at once, with nothing): the full-page dialog instead. A
      // person who closed the popup is a cancelled signup.
      const blocked = result.outcome === "cancelled" && !result.sessionMessage && answered - asked < BLOCKED_MS;
      if (blocked && o.login === "auto" && o.responseType === "code") return this.redirect();
      return await this.finish(result, null);
    } catch (e) {
      this.failed(e);
      return { result: null, loaded: null };
    } finally {
      listener.dispose();
    }
  }

  /** Goes to Meta's full-page dialog, which returns to `redirectUri` (see `resume`). */
  redirect() {
    const o = this.o;
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const state = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const back = o.redirectUri || location.origin + location.pathname;
    sessionStorage.setItem(DIALOG_KEY, JSON.stringify({ state, back }));
    const query = new URLSearchParams({
      client_id: o.appId,
      redirect_uri: back,
      state,
      config_id: o.configId,
      response_type: "code",
      override_default_response_type: "true",
      extras: JSON.stringify(o.extras),
    });
    if (this.hooks.panel) this.hooks.panel.loading(message("page.opening"));
    location.assign(`${o.dialogUrl || `https://www.facebook.com/${o.graphVersion}/dialog/oauth`}?${query}`);
    return { result: null, loaded: null };
  }

  /**
   * On the page Meta's full-page dialog returned to (its `state` is the one this page sent):
   * the signup goes on from there (the code exchanged and the statuses shown, or the refusal
   * recorded); the dialog's parameters left the address bar when the module loaded. Null on
   * any other load, and after the first call.
   */
  resume() {
    const answer = dialogAnswer;
    dialogAnswer = null;
    if (!answer) return null;
    const { params, back } = answer;
    if (params.get("code")) {
      const credential = { kind: "code", value: params.get("code") };
      return this.finish({ outcome: "finished", credential, redirectUri: back, unknownEvents: [] }, null);
    }
    const refusal = {};
    for (const k of DIALOG_PARAMS.slice(2)) if (params.get(k)) refusal[k] = params.get(k).slice(0, 256);
    return this.finish({ outcome: "cancelled", unknownEvents: [], errorMessage: refusal.error_description }, refusal);
  }

  // From a complete result on: the hooks, the panel, every account's status, the record, the
  // live stream. `refusal`: the full-page dialog's error, when nobody logged in there.
  async finish(result, refusal) {
    const { o, hooks } = this;
    if (hooks.onResult) hooks.onResult(result);
    if (hooks.panel) hooks.panel.showSignup(result);
    const loaded = result.credential ? await this.load(result) : null;
    if (this.disposed) return { result, loaded };
    // Done as soon as the statuses are shown; the report and the live stream follow.
    if (hooks.onDone) hooks.onDone(result, loaded);
    // Closed without logging in, or left at a step (a CANCEL that reports no error).
    const cancelled = result.outcome === "cancelled" || (result.event === "CANCEL" && !result.errorMessage);
    if (hooks.onCancel && cancelled) hooks.onCancel(result);
    this.report(result, refusal);
    if (loaded && loaded.accounts.length && o.live !== false && o.live !== "off") {
      this.follow(loaded.session || result.credential.value, loaded);
    }
    return { result, loaded };
  }

  // Every account's status; null when it could not be shown (the error went to the hooks).
  async load(result) {
    const panel = this.hooks.panel;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        if (panel) panel.loading(message("signup.loading_accounts"));
        const loaded = await onboard(this.client, result);
        if (panel) {
          panel.render(loaded.accounts, loaded.warnings);
          if (result.outcome === "abandoned") panel.showSignup(result);
        }
        return loaded;
      } catch (e) {
        if (e && e.code === "throttled") {
          await this.waitForRetry(e.retryAfter || 60);
          if (this.disposed) return null;
          continue;
        }
        this.failed(e);
        return null;
      }
    }
    this.failed(new Error(message("page.gave_up")));
    return null;
  }

  // Meta's rate limits: a countdown to the next try, shown in the panel and told to
  // `onRetryWait`; `retryNow()` ends it sooner.
  waitForRetry(seconds) {
    const { panel, onRetryWait } = this.hooks;
    return new Promise((resolve) => {
      let left = Math.max(1, Math.min(seconds, 3600));
      const tick = () => {
        if (panel) panel.notice(message("panel.error.throttled"), message("page.retrying_in", { count: left }));
        if (onRetryWait) onRetryWait(left);
      };
      const timer = setInterval(() => {
        left -= 1;
        if (left <= 0) this.retryNow();
        else tick();
      }, 1000);
      this.retryNow = () => {
        clearInterval(timer);
        this.retryNow = () => {};
        if (onRetryWait) onRetryWait(0);
        resolve();
      };
      tick();
    });
  }

  // The proxy records every attempt (who finished, who left and where) from Meta's session
  // message, sent as it came. The code flow's exchange records itself; everything else is
  // reported here, after the panel is shown, and so is the full-page dialog's refusal.
  // Without either there is nothing to record. keepalive: the report goes out even when the
  // page moves on at once.
  report(result, refusal) {
    const headers = { "Content-Type": "application/json" };
    let body;
    if (refusal) {
      body = { dialog_error: refusal, flow: "code" };
    } else {
      if (!result.sessionMessage || (result.credential && result.credential.kind === "code")) return;
      if (result.credential) headers.Authorization = "Bearer " + result.credential.value;
      body = { event: result.sessionMessage, flow: this.o.responseType };
    }
    const request = { method: "POST", headers, body: JSON.stringify(body), keepalive: true };
    fetch(this.o.proxyUrl.replace(/\/$/, "") + "/signup/events", request).catch(() => {});
  }

  // Live status: Meta's decisions arrive by webhook at the proxy, which streams them; review
  // decisions, bans, restrictions and removals update the accounts (and the panel) in place.
  follow(credential, { accounts, warnings }) {
    this.stop();
    if (this.disposed) return;
    this.following = followStatus({
      proxyUrl: this.o.proxyUrl,
      credential,
      onChange: (change) => {
        const changed = applyChange(accounts, change);
        if (changed && this.hooks.panel) this.hooks.panel.render(accounts, warnings);
        if (this.hooks.onStatus) this.hooks.onStatus(change, accounts, changed);
      },
    });
  }

  /** Stops following the live status. */
  stop() {
    if (this.following) this.following.stop();
    this.following = null;
  }
}
