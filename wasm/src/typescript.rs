//! TypeScript definitions of every value that crosses the boundary as a plain object. The
//! model lives in the pure `waba-graph` crate (shared with the native proxy), so its types
//! are described here rather than derived there.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** Graph ids are decimal strings; they can exceed 2^53 and are never numbers. */
export type GraphId = string;

export interface ClientOptions {
  /** Base URL of the waba-proxy, e.g. "https://signup.partner.example/waba". */
  proxyUrl: string;
  /** Per-request timeout in milliseconds (default 15000). */
  timeoutMs?: number;
  /** Bearer credential: a signup token or the console's admin token. */
  credential?: string;
}

export interface Cursors { before?: string; after?: string }
export interface Paging { cursors?: Cursors; next?: string; previous?: string }
export interface Page<T> { data: T[]; paging?: Paging }

export interface GranularScope { scope: string; target_ids: GraphId[] }
export interface TokenInfo {
  is_valid: boolean;
  app_id?: GraphId;
  application?: string;
  type?: string;
  /** Unix seconds; 0 = never. */
  expires_at: number;
  data_access_expires_at: number;
  issued_at?: number;
  scopes: string[];
  granular_scopes: GranularScope[];
  user_id?: GraphId;
  error?: { code: number; message: string; subcode?: number };
}
export interface DebugToken { data: TokenInfo }

export type ReviewStatus = "PENDING" | "APPROVED" | "REJECTED" | "DEFERRED" | (string & {});

export interface HealthError { error_code?: number; error_description?: string; possible_solution?: string }
export interface HealthEntity { entity_type?: string; id?: GraphId; can_send_message?: string; errors: HealthError[] }
export interface HealthStatus { can_send_message?: string; entities: HealthEntity[] }

export interface PhoneNumber {
  id: GraphId;
  display_phone_number?: string;
  verified_name?: string;
  status?: string;
  quality_rating?: string;
  code_verification_status?: string;
  name_status?: string;
  platform_type?: string;
}

export interface Waba {
  id: GraphId;
  name?: string;
  currency?: string;
  timezone_id?: string;
  message_template_namespace?: string;
  account_review_status?: ReviewStatus;
  business_verification_status?: string;
  ownership_type?: string;
  health_status?: HealthStatus;
  /** Unix seconds. */
  creation_time?: number;
  phone_numbers?: Page<PhoneNumber>;
}

export interface ListQuery {
  /** The partner's business id. */
  businessId: GraphId;
  fields?: string;
  /** Unix seconds: created after (GREATER_THAN). */
  createdAfter?: number;
  /** Unix seconds: created before (LESS_THAN). Both together: a range (two conditions). */
  createdBefore?: number;
  sort?: "asc" | "desc" | "creation_time_ascending" | "creation_time_descending";
  /** 1..=100 */
  limit?: number;
  after?: string;
  before?: string;
}

export interface PhoneQuery { fields?: string; limit?: number; after?: string; before?: string }

export interface SignupListenerOptions {
  /** Origins to trust besides https://*.facebook.com (tests, demos). */
  extraOrigins?: string[];
  /** Milliseconds to wait for the session message after the login callback (default 1500). */
  graceMs?: number;
}

export interface Credential { kind: "token" | "code"; value: string }

/**
 * A `WA_EMBEDDED_SIGNUP` message exactly as Meta's popup posted it (parsed when it came as
 * JSON text): what `onboard` sends to `POST /signup/exchange` and the embed to
 * `POST /signup/events`. Meta may add fields; ids may be numbers.
 */
export interface SessionMessage {
  type: "WA_EMBEDDED_SIGNUP";
  event: string;
  data?: {
    waba_id?: GraphId | number;
    /** Multi-WABA flows: every shared WABA. */
    waba_ids?: (GraphId | number)[];
    phone_number_id?: GraphId | number;
    business_id?: GraphId | number;
    current_step?: string;
    error_message?: string;
    error_code?: string | number;
    /** The older name of `error_code`. */
    error_id?: string | number;
    session_id?: string | number;
    [key: string]: unknown;
  };
  version?: string | number;
  [key: string]: unknown;
}

export interface SignupResult {
  /** finished: logged in; abandoned: CANCEL or ERROR; cancelled: no login. */
  outcome: "finished" | "abandoned" | "cancelled";
  credential?: Credential;
  /**
   * The session message as received, when one arrived: `onboard` and `showSignup` read the
   * event from it. The fields below are derived from it for convenience.
   */
  sessionMessage?: SessionMessage;
  event?: string;
  /** The first shared WABA. */
  wabaId?: GraphId;
  /** Every shared WABA (`waba_id` and a multi-WABA flow's `waba_ids`), `wabaId` first. */
  wabaIds?: GraphId[];
  phoneNumberId?: GraphId;
  businessId?: GraphId;
  currentStep?: string;
  errorMessage?: string;
  /** Meta's `error_code` (or `error_id` in older messages). */
  errorCode?: string;
  sessionId?: string;
  loginStatus?: string;
  unknownEvents: string[];
  /**
   * The page Meta's full-page login dialog returned to with the code (no popup): `onboard`'s
   * exchange names it, as Meta requires of that flow.
   */
  redirectUri?: string;
}

export type LoginResult = SignupResult;

export interface SessionEvent extends Omit<SignupResult, "outcome"> {
  sessionMessage: SessionMessage;
  event: string;
  version?: string;
}

/** Who has to act next: the business, the partner, Meta, nobody (ready), or a state this version does not know. */
export type Actor = "business" | "partner" | "meta" | "nobody" | "unknown";

export interface PhoneStatus {
  phone: PhoneNumber;
  /** Connected: it can send messages. */
  ready: boolean;
  actor: Actor;
  action: "none" | "verify_number" | "register" | "fix_display_name" | "name_review" | "improve_quality" | "appeal" | "wait" | "unknown" | (string & {});
  /** What is in the way and who does what, in plain words. */
  problem?: string;
}

export interface Incomplete {
  reason: "left_at_step" | "reported_error" | "certificate_not_ready" | "register_phone" | "no_phone_number" | (string & {});
  actor: Actor;
  step?: string;
  message: string;
}

/** Something Meta announced about an account by webhook (a ban, a restriction, a removal...), and who acts. */
export interface Alert {
  kind: "disabled_update" | "account_restriction" | "account_violation" | "account_deleted" | "account_offboarded" | "partner_removed" | "partner_app_uninstalled" | (string & {});
  actor: Actor;
  message: string;
}

export interface AccountStatus {
  waba: Waba;
  review: ReviewStatus;
  reviewKnown: boolean;
  newest: boolean;
  phones: PhoneStatus[];
  incomplete?: Incomplete;
  healthProblems: string[];
  /** Announced by webhook since the account was read; `applyChange` adds and clears them. */
  alerts: Alert[];
  /** The owning business's verification when it is not `verified` (kind: the status as Graph sent it), and who acts. */
  verification?: Alert;
  /** The partner's post-signup steps as the proxy's stream reports them; `applyChange` updates them. */
  progress: Progress[];
}

export type StepKind = "subscribe" | "assign_system_user" | "share_credit_line" | "find_phones" | "register" | "sync_contacts" | "sync_history" | "unsubscribe" | "deregister" | (string & {});
export type StepState = "pending" | "running" | "done" | "skipped" | "failed" | (string & {});

/** One line of the partner's progress on an account. */
export interface Progress {
  step: StepKind;
  phoneId?: string;
  state: StepState;
  actor: Actor;
  /** "Connecting webhooks", "Registering +1 631-555-0101", "+1 631-555-0101: ready to message", ... */
  text: string;
  /** Why it failed or was skipped. */
  message?: string;
}

/** A `pipeline_step` change's `step`, as the proxy's stream sends it. */
export interface PipelineStep {
  id: number;
  onboarding_id: number;
  waba_id: string;
  phone_id?: string | null;
  phone?: string | null;
  kind: StepKind;
  state: StepState;
  token: "business" | "system_user";
  actor: Actor;
  text: string;
  message?: string | null;
  error_code?: number | null;
  error?: string | null;
  attempts: number;
  next_attempt_at?: number | null;
  updated_at: number;
}

export interface Warning { code: "waba_mismatch" | "no_wabas" | (string & {}); message: string }

export interface OnboardResult {
  accounts: AccountStatus[];
  warnings: Warning[];
  /** Code flow: the session credential for exactly the granted WABAs (the business token stays in the proxy). */
  session?: string;
}

export type WabaErrorCode =
  | "network" | "timeout" | "unauthorized" | "forbidden" | "not_found" | "throttled"
  | "graph" | "bad_request" | "upstream" | "upstream_timeout" | "bad_response"
  | "invalid_signup_result" | "signup_cancelled" | "invalid_argument";

/** Every rejection of this package is an Error with these fields. */
export interface WabaOnboardError extends Error {
  name: "WabaOnboardError";
  code: WabaErrorCode;
  status?: number;
  /** Seconds, when code is "throttled". */
  retryAfter?: number;
  /** Graph's error code, when code is "graph". */
  graphCode?: number;
}

/**
 * A message catalog, as `waba-onboard/locales` loads it: every text of the panel, the
 * signup page and the accounts' guidance by message id, in one language.
 */
export interface Catalog {
  /** BCP 47 tag: "es", "pt-BR", "ar", ... */
  locale: string;
  /** "rtl" for right-to-left languages. */
  dir?: "ltr" | "rtl";
  /** Meta's locale for its JavaScript SDK and dialog ("es_LA", "pt_BR", ...). */
  sdk?: string;
  /** Templates by message id; `{name}` is a value. */
  messages: Record<string, string>;
}

/** Values of a message: numbers are written with `Intl.NumberFormat`; `count` picks the plural form. */
export type MessageValues = Record<string, string | number>;
"#;

#[wasm_bindgen]
extern "C" {
    /// A `SignupListenerOptions` object, for an optional parameter typed as one.
    #[wasm_bindgen(typescript_type = "SignupListenerOptions")]
    pub type ListenerOptionsArg;
    /// A `Warning[]`, for an optional parameter typed as one.
    #[wasm_bindgen(typescript_type = "Warning[]")]
    pub type WarningsArg;
    /// A `PhoneQuery` object, for an optional parameter typed as one.
    #[wasm_bindgen(typescript_type = "PhoneQuery")]
    pub type PhoneQueryArg;
    /// A `MessageValues` object, for an optional parameter typed as one.
    #[wasm_bindgen(typescript_type = "MessageValues")]
    pub type MessageValuesArg;
}
