// waba-onboard for React: `<EmbeddedSignup>` and `useEmbeddedSignup()`.
import type { ReactElement, RefObject } from "react";
import type { AccountStatus, SignupResult, Warning, OnboardResult } from "./web/waba_onboard.js";
import type { StatusChange } from "./waba-onboard-stream.js";

export interface EmbeddedSignupOptions {
  /** Base URL of the waba-proxy, e.g. "https://signup.partner.example/waba". */
  proxyUrl: string;
  /** The Meta app's id. */
  appId: string;
  /** The Embedded Signup login configuration's id. */
  configId: string;
  /** "code" (the default, Meta's documented flow: the proxy exchanges the code) or "token". */
  responseType?: "code" | "token";
  /** "v4" (the default, chosen by the login configuration), "v3", or "v2" (deprecated). */
  esVersion?: "v4" | "v3" | "v2";
  /** e.g. "whatsapp_business_app_onboarding" for coexistence. */
  featureType?: string;
  /** Another location of Meta's SDK (tests and demos). */
  sdkUrl?: string;
  /** Graph version for `FB.init` (default "v26.0"). */
  graphVersion?: string;
  /** Message origins to trust besides https://*.facebook.com (tests and demos only). */
  extraOrigins?: string[];
  /** Per-request timeout of the proxy calls, in milliseconds. */
  timeoutMs?: number;
  /** false: no live status stream after the signup. */
  live?: boolean;
  /**
   * "auto" (the default): Meta's popup, and Meta's full-page dialog when the popup is blocked
   * (Meta's SDK answers within a second, with nothing; a person who closes it cancelled); "popup"; or "redirect" (the full-page dialog at once).
   * The full page needs the code flow; on the return the component goes on by itself.
   */
  login?: "auto" | "popup" | "redirect";
  /** Meta's full-page dialog (default https://www.facebook.com/{graphVersion}/dialog/oauth). */
  dialogUrl?: string;
  /** Where the full-page dialog returns (default: this page without its query). */
  redirectUri?: string;
  /**
   * The language of the panel, the notices and Meta's SDK: a tag or a list, best first
   * ("es", ["pt-BR", "en"]); the browser's languages by default. See `waba-onboard/locales`.
   */
  locale?: string | readonly string[];
  /** The signup result is complete. */
  onResult?: (result: SignupResult) => void;
  /** Every account's status is known (`loaded` is null when nothing was shared or loading failed). */
  onDone?: (result: SignupResult, loaded: OnboardResult | null) => void;
  /** The business closed the dialog or cancelled at a step. */
  onCancel?: (result: SignupResult) => void;
  /** Meta's SDK could not load, or the accounts could not be read. */
  onError?: (error: Error) => void;
  /** A live change Meta announced (review decision, ban, the partner's steps, ...). */
  onStatusChange?: (change: StatusChange, accounts: AccountStatus[]) => void;
}

export type EmbeddedSignupStatus =
  | "loading"
  | "ready"
  | "signing_up"
  | "loading_accounts"
  | "done"
  | "error";

export interface EmbeddedSignupState {
  status: EmbeddedSignupStatus;
  result: SignupResult | null;
  accounts: AccountStatus[];
  warnings: Warning[];
  error: Error | null;
  /** Seconds until the next try while Meta limits requests (0 otherwise). */
  retryIn: number;
  /**
   * The button's and the retry button's texts in the chosen language, with its tag and
   * direction (English until it is loaded).
   */
  texts: { button: string; retryNow: string; lang: string; dir: "ltr" | "rtl" };
  /** Opens Meta's dialog (from a click: browsers block popups opened otherwise). */
  start: () => Promise<void>;
  /** Tries again now instead of waiting `retryIn`. */
  retryNow: () => void;
  /** Put it on a `<div>`: the status panel is drawn there. */
  panelRef: RefObject<HTMLDivElement | null>;
}

export function useEmbeddedSignup(options: EmbeddedSignupOptions): EmbeddedSignupState;

export interface EmbeddedSignupProps extends EmbeddedSignupOptions {
  /** The button's text (default "Connect WhatsApp Business" in the chosen language). */
  buttonText?: string;
  /** Added to the wrapper's `waba-embedded-signup` class. */
  className?: string;
}

export function EmbeddedSignup(props: EmbeddedSignupProps): ReactElement;
