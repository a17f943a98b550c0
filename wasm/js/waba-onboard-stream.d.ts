/** One change Meta announced by webhook, as the proxy's status stream sends it. */
export interface StatusChange {
  /** Increasing: the stream's event id. */
  seq: number;
  kind:
    | "review" | "partner_added" | "partner_removed" | "partner_app_installed" | "partner_app_uninstalled"
    | "account_violation" | "disabled_update" | "account_restriction" | "account_deleted"
    | "account_offboarded" | "account_reconnected" | "certification" | "account_update"
    | "phone_quality" | "phone_name" | "unknown" | (string & {});
  /** The webhook field, e.g. "account_review_update". */
  field: string;
  /** The WABA concerned, when the change names one. */
  waba_id?: string;
  /** The short detail: a review decision, a ban state (`DISABLE`, `SCHEDULE_FOR_DISABLE`, `REINSTATE`), restriction types (comma-separated), a violation type, a certification status, or the event's name. */
  value?: string;
  /** Unix seconds: when the proxy received it. */
  received_at: number;
  /** The change as Meta sent it (`{field, value}`), for every `account_update` and for fields the proxy does not interpret. */
  raw?: unknown;
}

export interface FollowStatusOptions {
  /** Base URL of the waba-proxy. */
  proxyUrl: string;
  /** The admin token, a signup token or a code-flow session credential (`wos_…`). */
  credential: string;
  /** Called once per change, in order, never twice for one change. */
  onChange: (change: StatusChange) => void;
  /** Start after this event id (default 0: every stored change, then new ones). */
  after?: number;
  /** Called once when the following ends by itself: the proxy refused the credential. */
  onEnd?: (end: { reason: "refused"; status: number }) => void;
}

export interface StatusFollow {
  /** Closes the stream and stops reconnecting. */
  stop(): void;
}

/**
 * Follows the proxy's live status stream: a ticket per connection, reconnects with backoff
 * after drops and resumes after the last event id. A refused credential ends it.
 */
export function followStatus(options: FollowStatusOptions): StatusFollow;
