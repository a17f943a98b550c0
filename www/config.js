// Configuration of the signup page. Replace the values with the partner's own; nothing else
// in signup.html needs to change.
window.WABA_SIGNUP = {
  // Where waba-proxy answers (same origin when it serves these pages with --www).
  proxyUrl: location.origin,
  // The partner's Meta app id and its Embedded Signup configuration id.
  appId: "YOUR_APP_ID",
  configId: "YOUR_CONFIG_ID",
  // The partner's business id (the console lists its client and owned WABAs).
  businessId: "YOUR_BUSINESS_ID",
  // "code" (Meta's current flow: the proxy exchanges the code and keeps the business token;
  // needs the proxy's --app-id, --app-secret and --token-key) or "token".
  responseType: "code",
  // The signup panel's language ("es", "pt-BR", "id", "hi", "ar" or "en"); the browser's
  // languages when left out.
  // locale: "es",
  // Leave these out in production: Meta's SDK is the default, and only https://*.facebook.com
  // may post signup messages. The demo and tests point them at the simulator.
  // sdkUrl: "https://connect.facebook.net/{locale}/sdk.js",
  // extraOrigins: [],
};
