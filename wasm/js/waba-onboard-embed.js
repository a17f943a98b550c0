// waba-onboard script embed:
//
//   <script type="module" src=".../waba-onboard-embed.js"
//     data-proxy-url="https://signup.partner.example/waba" data-app-id="APP_ID"
//     data-config-id="CONFIG_ID" data-target="#waba-signup"></script>
//
// It loads Meta's JS SDK, adds the Embedded Signup button to the target, runs the whole flow
// and renders every shared account's status there. Optional: data-sdk-url (another SDK
// location, for tests and demos), data-extra-origins (comma-separated message origins to trust
// besides https://*.facebook.com, for tests and demos only), data-graph-version,
// data-response-type ("code" by default, Meta's documented flow; or "token"),
// data-es-version (the Embedded Signup version: "v4" by default, chosen by the login
// configuration; "v3"; or "v2", deprecated by Meta on 2026-10-15), data-feature-type (e.g.
// "whatsapp_business_app_onboarding" for coexistence), data-button-text, data-timeout-ms,
// data-live="off" (no live status stream).
// Events on the target (they bubble): "waba-onboard:result" when the signup result is
// complete (detail: the result), "waba-onboard:done" once every account's status is shown,
// "waba-onboard:status" for each live change Meta announced (detail: the change).
import init, { SignupListener, StatusPanel, WabaClient, applyChange, onboard } from "./web/waba_onboard.js";
import { followStatus } from "./waba-onboard-stream.js";

const META_SDK = "https://connect.facebook.net/en_US/sdk.js";

// `extras` of FB.login per Embedded Signup version
// (developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/versions):
// v4 is chosen by the login configuration itself; v3 by `version`; v2 needs
// `sessionInfoVersion` to post the session message at all.
const ES_EXTRAS = {
  v4: () => ({ setup: {} }),
  v3: () => ({ setup: {}, version: "v3" }),
  v2: () => ({ setup: {}, sessionInfoVersion: "3" }),
};

function signupExtras(ds) {
  const version = ds.esVersion || "v4";
  const make = ES_EXTRAS[version];
  if (!make) throw new Error(`waba-onboard: data-es-version must be one of ${Object.keys(ES_EXTRAS).join(", ")}`);
  const extras = make();
  if (ds.featureType) extras.featureType = ds.featureType;
  return extras;
}

function findScript() {
  const here = new URL(import.meta.url).href;
  for (const s of document.querySelectorAll("script[type=module][src]")) {
    if (new URL(s.src, document.baseURI).href === here) return s;
  }
  return document.querySelector("script[data-proxy-url][src*='waba-onboard-embed']");
}

function loadSdk(src, appId, version) {
  if (window.FB) return Promise.resolve(window.FB);
  return new Promise((resolve, reject) => {
    window.fbAsyncInit = () => {
      window.FB.init({ appId, autoLogAppEvents: true, xfbml: false, version });
      resolve(window.FB);
    };
    const tag = document.createElement("script");
    tag.src = src;
    tag.async = true;
    tag.crossOrigin = "anonymous";
    tag.onerror = () => reject(new Error("Meta's JavaScript SDK could not be loaded"));
    document.head.appendChild(tag);
  });
}

async function main() {
  const script = findScript();
  if (!script) throw new Error("waba-onboard: cannot find its <script> tag");
  const ds = script.dataset;
  for (const key of ["proxyUrl", "appId", "configId", "target"]) {
    if (!ds[key]) throw new Error(`waba-onboard: data-${key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} is required`);
  }
  const target = document.querySelector(ds.target);
  if (!target) throw new Error(`waba-onboard: no element matches ${ds.target}`);
  const responseType = ds.responseType || "code";
  if (responseType !== "code" && responseType !== "token") {
    throw new Error('waba-onboard: data-response-type must be "code" or "token"');
  }
  const extras = signupExtras(ds);
  await init();
  const button = document.createElement("button");
  button.type = "button";
  button.className = "waba-signup-button";
  button.textContent = ds.buttonText || "Connect WhatsApp Business";
  const panelBox = document.createElement("div");
  target.replaceChildren(button, panelBox);
  const panel = new StatusPanel(panelBox);
  const client = new WabaClient({ proxyUrl: ds.proxyUrl, timeoutMs: Number(ds.timeoutMs) || undefined });
  const version = ds.graphVersion || "v26.0";
  const sdk = loadSdk(ds.sdkUrl || META_SDK, ds.appId, version);
  sdk.catch((e) => panel.showError(e));

  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "waba-retry-button";
  retry.textContent = "Retry now";
  retry.hidden = true;
  panelBox.before(retry);

  // Meta's rate limits: show when the next try happens, and let the person retry sooner.
  function waitForRetry(seconds) {
    return new Promise((resolve) => {
      let left = Math.max(1, Math.min(seconds, 3600));
      const show = () =>
        panel.notice("Meta is limiting requests right now", `Retrying automatically in ${left} s.`);
      const timer = setInterval(() => {
        left -= 1;
        if (left <= 0) done();
        else show();
      }, 1000);
      function done() {
        clearInterval(timer);
        retry.hidden = true;
        retry.onclick = null;
        resolve();
      }
      retry.onclick = done;
      retry.hidden = false;
      show();
    });
  }

  // Live status: Meta's decisions arrive by webhook at the proxy, which streams them; review
  // decisions, bans, restrictions and removals update the panel in place.
  let following = null;
  function follow(credential, accounts, warnings) {
    if (following) following.stop();
    following = followStatus({
      proxyUrl: ds.proxyUrl,
      credential,
      onChange(change) {
        target.dispatchEvent(new CustomEvent("waba-onboard:status", { detail: change, bubbles: true }));
        if (applyChange(accounts, change)) panel.render(accounts, warnings);
      },
    });
  }

  // Shows every account's status; resolves with what the live stream needs, or null when
  // the panel shows an error instead.
  async function loadAccounts(result) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        panel.loading("Loading the shared accounts…");
        const loaded = await onboard(client, result);
        panel.render(loaded.accounts, loaded.warnings);
        if (result.outcome === "abandoned") panel.showSignup(result);
        return loaded;
      } catch (e) {
        if (e && e.code === "throttled") {
          await waitForRetry(e.retryAfter || 60);
          continue;
        }
        panel.showError(e);
        return null;
      }
    }
    panel.showError(new Error("Meta kept limiting requests; try again later."));
    return null;
  }

  // The proxy records every attempt (who finished, who left and where) from Meta's session
  // message, sent as it came. The code flow's exchange records itself; everything else is
  // reported here, after the panel is shown. Without a session message there is nothing to
  // record.
  function report(result) {
    if (!result.sessionMessage || (result.credential && result.credential.kind === "code")) return;
    const headers = { "Content-Type": "application/json" };
    if (result.credential) headers.Authorization = "Bearer " + result.credential.value;
    const body = { event: result.sessionMessage, flow: responseType };
    // keepalive: the report goes out even when the page moves on at once.
    const request = { method: "POST", headers, body: JSON.stringify(body), keepalive: true };
    fetch(ds.proxyUrl.replace(/\/$/, "") + "/signup/events", request).catch(() => {});
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    const listener = new SignupListener({
      extraOrigins: (ds.extraOrigins || "").split(",").map((s) => s.trim()).filter(Boolean),
    });
    try {
      const FB = await sdk;
      panel.loading("Waiting for Embedded Signup…");
      FB.login((response) => listener.login(response), {
        config_id: ds.configId,
        response_type: responseType,
        override_default_response_type: true,
        extras,
      });
      const result = await listener.result();
      target.dispatchEvent(new CustomEvent("waba-onboard:result", { detail: result, bubbles: true }));
      panel.showSignup(result);
      const loaded = result.credential ? await loadAccounts(result) : null;
      // Done as soon as the statuses are shown; the report and the live stream follow.
      target.dispatchEvent(new CustomEvent("waba-onboard:done", { detail: result, bubbles: true }));
      report(result);
      if (loaded && loaded.accounts.length && ds.live !== "off") {
        follow(loaded.session || result.credential.value, loaded.accounts, loaded.warnings);
      }
    } catch (e) {
      panel.showError(e);
    } finally {
      listener.dispose();
      button.disabled = false;
    }
  });
}

main().catch((e) => {
  console.error(e);
});
