// waba-onboard for React (`waba-onboard/react`, React 18 or 19 as an optional peer):
//
//   <EmbeddedSignup proxyUrl="/waba" appId="APP_ID" configId="CONFIG_ID"
//     onDone={(result, loaded) => ...} />
//   const signup = useEmbeddedSignup({ proxyUrl, appId, configId }); // your own UI
//
// Safe to import and render on a server: nothing touches `window`, loads the wasm or Meta's SDK
// until the component is mounted (in an effect). The flow itself is `waba-onboard-signup.js`,
// the script embed's.
import { createElement, useCallback, useEffect, useRef, useState } from "react";

/** The settings that make a new signup controller when they change. */
const SETTINGS = [
  "proxyUrl",
  "appId",
  "configId",
  "responseType",
  "esVersion",
  "featureType",
  "sdkUrl",
  "graphVersion",
  "extraOrigins",
  "timeoutMs",
  "live",
  "login",
  "dialogUrl",
  "redirectUri",
  "locale",
];

/** The button's texts until the chosen catalog is loaded (on a server, and while loading). */
const BEFORE_LOADED = { button: "Connect WhatsApp Business", retryNow: "Retry now", lang: "en", dir: "ltr" };

/**
 * The whole Embedded Signup as React state: `status` ("loading", "ready", "signing_up",
 * "loading_accounts", "done", "error"), `result`, `accounts`, `warnings`, `error`, `retryIn`
 * (seconds until the next try while Meta limits requests), `texts` (the button's and the retry
 * button's texts in the chosen language), `start()`, `retryNow()`, and `panelRef`: put it on a
 * `<div>` and the status panel is drawn there.
 */
export function useEmbeddedSignup(options) {
  const [state, setState] = useState({
    status: "loading",
    result: null,
    accounts: [],
    warnings: [],
    error: null,
    retryIn: 0,
    texts: BEFORE_LOADED,
  });
  const panelRef = useRef(null);
  const signupRef = useRef(null);
  const latest = useRef(options);
  latest.current = options;
  const key = JSON.stringify(SETTINGS.map((k) => options[k]));

  useEffect(() => {
    let mounted = true;
    const set = (patch) => mounted && setState((s) => ({ ...s, ...patch }));
    const call = (name, ...args) => {
      const f = mounted && latest.current[name];
      if (f) f(...args);
    };
    const hooks = {
      panelBox: panelRef.current,
      onResult(result) {
        set({ status: result.credential ? "loading_accounts" : "done", result });
        call("onResult", result);
      },
      onDone(result, loaded) {
        // A failed load said so already (onError): the status stays "error".
        const patch = { accounts: loaded ? loaded.accounts : [], warnings: loaded ? loaded.warnings : [] };
        if (mounted) setState((s) => ({ ...s, ...patch, status: s.status === "error" ? "error" : "done" }));
        call("onDone", result, loaded);
      },
      onCancel: (result) => call("onCancel", result),
      onError(error) {
        set({ status: "error", error });
        call("onError", error);
      },
      onStatus(change, accounts) {
        set({ accounts: [...accounts] });
        call("onStatusChange", change, accounts);
      },
      onRetryWait: (seconds) => set({ retryIn: seconds }),
    };
    import("./waba-onboard-signup.js")
      .then(({ Signup, message }) => Signup.create(latest.current, { ...hooks, isLive: () => mounted }).then((signup) => [signup, message]))
      .then(
        ([signup, message]) => {
          if (!signup) return;
          if (!mounted) return signup.dispose();
          signupRef.current = signup;
          const texts = { button: message("page.button"), retryNow: message("page.retry_now"), ...signup.language };
          set({ status: "ready", texts });
          // Back from Meta's full-page dialog: the signup goes on here (the hooks say how).
          signup.resume();
        },
        (error) => hooks.onError(error),
      );
    return () => {
      mounted = false;
      if (signupRef.current) signupRef.current.dispose();
      signupRef.current = null;
    };
  }, [key]);

  const start = useCallback(async () => {
    const signup = signupRef.current;
    if (!signup) return;
    setState((s) => ({ ...s, status: "signing_up", result: null, error: null }));
    await signup.start();
  }, []);
  const retryNow = useCallback(() => {
    if (signupRef.current) signupRef.current.retryNow();
  }, []);
  return { ...state, start, retryNow, panelRef };
}

/**
 * The signup button, a "Retry now" button while Meta limits requests, and the status panel.
 * Props: the `useEmbeddedSignup` options and callbacks (`onResult`, `onDone`, `onCancel`,
 * `onError`, `onStatusChange`), `buttonText`, `className`.
 */
export function EmbeddedSignup(props) {
  const { buttonText, className, ...options } = props;
  const s = useEmbeddedSignup(options);
  const busy = s.status === "loading" || s.status === "signing_up" || s.status === "loading_accounts";
  return createElement(
    "div",
    {
      className: className ? `waba-embedded-signup ${className}` : "waba-embedded-signup",
      lang: s.texts.lang,
      dir: s.texts.dir,
    },
    createElement(
      "button",
      { type: "button", className: "waba-signup-button", disabled: busy, onClick: s.start },
      buttonText || s.texts.button,
    ),
    createElement(
      "button",
      { type: "button", className: "waba-retry-button", hidden: s.retryIn === 0, onClick: s.retryNow },
      s.texts.retryNow,
    ),
    createElement("div", { ref: s.panelRef }),
  );
}
