import type { Catalog } from "./web/waba_onboard.js";

/** English: the templates built into the module. */
export declare const ENGLISH: Catalog;
/** The language tags there are catalogs for, English first: "en", "es", "pt-BR", "id", "hi", "ar". */
export declare const LOCALES: readonly string[];
/**
 * The catalog's tag for the first of `preferred` (best first; the browser's languages by
 * default) that one serves, by tag or by language ("es-MX" → "es", "pt-PT" → "pt-BR"); "en"
 * otherwise.
 */
export declare function chooseLocale(preferred?: string | readonly string[] | null): string;
/** The catalog `chooseLocale(preferred)` names, loaded (each in its own chunk). */
export declare function loadLocale(preferred?: string | readonly string[] | null): Promise<Catalog>;
