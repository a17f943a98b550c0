// waba-onboard/locales: the message catalogs of the status panel, the signup page and the
// accounts' guidance, each loaded only when chosen (a bundler splits each into its own chunk).
//
//   import { useMessages } from "waba-onboard";
//   import { loadLocale } from "waba-onboard/locales";
//   useMessages(await loadLocale(navigator.languages));
//
// English is built in; the others are ES modules of this folder (`locales/es.js`, ...),
// each `export default {locale, dir, sdk, messages}`.

/** Each catalog but English, by its language tag. */
const CATALOGS = {
  es: () => import("./locales/es.js"),
  "pt-BR": () => import("./locales/pt-BR.js"),
  id: () => import("./locales/id.js"),
  hi: () => import("./locales/hi.js"),
  ar: () => import("./locales/ar.js"),
};

/** English: the templates built into the module (`messages` holds none to override). */
export const ENGLISH = Object.freeze({ locale: "en", dir: "ltr", sdk: "en_US", messages: Object.freeze({}) });

/** The language tags there are catalogs for, English first. */
export const LOCALES = Object.freeze(["en", ...Object.keys(CATALOGS)]);

/**
 * The catalog's tag for the first of `preferred` (a tag or a list of tags, best first; the
 * browser's languages by default) that one serves: the same tag, or the same language
 * (`es-MX` is served by `es`, `pt-PT` by `pt-BR`, `ar-EG` by `ar`); English otherwise.
 */
export function chooseLocale(preferred) {
  const wanted = preferred == null ? (typeof navigator == "undefined" ? [] : navigator.languages || [navigator.language]) : preferred;
  for (const tag of typeof wanted == "string" ? [wanted] : Array.from(wanted)) {
    if (typeof tag != "string") continue;
    const lower = tag.trim().replace(/_/g, "-").toLowerCase();
    const exact = LOCALES.find((l) => l.toLowerCase() == lower);
    if (exact) return exact;
    const language = lower.split("-")[0];
    const same = LOCALES.find((l) => l.toLowerCase().split("-")[0] == language);
    if (same) return same;
  }
  return "en";
}

/** The catalog `chooseLocale(preferred)` names, loaded. */
export async function loadLocale(preferred) {
  const tag = chooseLocale(preferred);
  return tag == "en" ? ENGLISH : (await CATALOGS[tag]()).default;
}
