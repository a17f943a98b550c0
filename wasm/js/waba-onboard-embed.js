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
// data-live="off" (no live status stream), data-locale (the language: a tag, or several
// separated by commas, best first; the browser's languages by default), data-login ("auto" by default: Meta's popup, and
// Meta's full-page dialog when the popup is blocked (Meta's SDK answers within a
// second, with nothing; a person who closes it cancelled);
// "popup"; "redirect"), data-dialog-url, data-redirect-uri (where the full-page dialog returns:
// this page by default; on that return the embed goes on with the signup by itself).
// Events on the target (they bubble): "waba-onboard:result" when the signup result is
// complete (detail: the result), "waba-onboard:done" once every account's status is shown,
// "waba-onboard:status" for each live change Meta announced (detail: the change).
import { Signup, message } from "./waba-onboard-signup.js";

function findScript() {
  const here = new URL(import.meta.url).href;
  for (const s of document.querySelectorAll("script[type=module][src]")) {
    if (new URL(s.src, document.baseURI).href === here) return s;
  }
  return document.querySelector("script[data-proxy-url][src*='waba-onboard-embed']");
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
  const options = {
    proxyUrl: ds.proxyUrl,
    appId: ds.appId,
    configId: ds.configId,
    responseType: ds.responseType,
    esVersion: ds.esVersion,
    featureType: ds.featureType,
    sdkUrl: ds.sdkUrl,
    graphVersion: ds.graphVersion,
    extraOrigins: (ds.extraOrigins || "").split(",").map((s) => s.trim()).filter(Boolean),
    timeoutMs: ds.timeoutMs,
    live: ds.live !== "off",
    login: ds.login,
    dialogUrl: ds.dialogUrl,
    redirectUri: ds.redirectUri,
    locale: ds.locale ? ds.locale.split(",").map((s) => s.trim()) : undefined,
  };
  const emit = (name, detail) => target.dispatchEvent(new CustomEvent(name, { detail, bubbles: true }));
  const button = document.createElement("button");
  button.type = "button";
  button.className = "waba-signup-button";
  const panelBox = document.createElement("div");
  const retry = document.createElement("button");
  retry.type = "button";
  retry.className = "waba-retry-button";
  retry.hidden = true;

  const hooks = {
    panelBox,
    onResult: (result) => emit("waba-onboard:result", result),
    onDone: (result) => emit("waba-onboard:done", result),
    onStatus: (change) => emit("waba-onboard:status", change),
    // Meta's rate limits: the panel counts down; the person may retry sooner.
    onRetryWait: (seconds) => {
      retry.hidden = seconds === 0;
    },
  };
  const signup = await Signup.create(options, hooks);
  button.textContent = ds.buttonText || message("page.button");
  retry.textContent = message("page.retry_now");
  for (const b of [button, retry]) Object.assign(b, signup.language);
  retry.addEventListener("click", () => signup.retryNow());
  target.replaceChildren(button, retry, panelBox);
  async function run(signupStep) {
    button.disabled = true;
    try {
      await signupStep();
    } finally {
      button.disabled = false;
    }
  }
  button.addEventListener("click", () => run(() => signup.start()));
  // Back from Meta's full-page dialog: the signup goes on here.
  const back = signup.resume();
  if (back) await run(() => back);
}

main().catch((e) => {
  console.error(e);
});
