//! Fault injection: scripted failures per route, set by the scenario or at run time.
//!
//! A fault matches calls to one route (or `any`), may let `skip` matching calls through
//! first, then applies to the next `times` calls (forever when `times` is absent).

use serde::{Deserialize, Serialize};

/// The Graph routes the simulator serves, as counted and as faults name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `GET /debug_token`.
    DebugToken,
    /// `GET /{waba_id}`.
    Waba,
    /// `GET /{waba_id}/phone_numbers`.
    PhoneNumbers,
    /// `GET /{business_id}/client_whatsapp_business_accounts`.
    ClientWabas,
    /// `GET /{business_id}/owned_whatsapp_business_accounts`.
    OwnedWabas,
    /// `GET /oauth/access_token`.
    OauthAccessToken,
    /// `GET`, `POST` and `DELETE /{waba_id}/subscribed_apps`.
    SubscribedApps,
    /// `GET` and `POST /{waba_id}/assigned_users`.
    AssignedUsers,
    /// `POST /{credit_line_id}/whatsapp_credit_sharing_and_attach`.
    CreditSharing,
    /// `GET /{allocation_config_id}` (a credit line shared at run time).
    CreditAllocation,
    /// `POST /{phone_number_id}/register`.
    Register,
    /// `POST /{phone_number_id}/deregister`.
    Deregister,
    /// `POST /{phone_number_id}/smb_app_data`.
    SmbAppData,
    /// `GET` and `POST /{phone_number_id}` (the phone number node; a POST sets its PIN).
    Phone,
    /// Any other path (answered with Graph's unknown-path error).
    Other,
    /// In a fault: every route.
    Any,
}

impl Route {
    /// The name used in call counts and faults.
    pub fn name(self) -> &'static str {
        match self {
            Route::DebugToken => "debug_token",
            Route::Waba => "waba",
            Route::PhoneNumbers => "phone_numbers",
            Route::ClientWabas => "client_wabas",
            Route::OwnedWabas => "owned_wabas",
            Route::OauthAccessToken => "oauth_access_token",
            Route::SubscribedApps => "subscribed_apps",
            Route::AssignedUsers => "assigned_users",
            Route::CreditSharing => "credit_sharing",
            Route::CreditAllocation => "credit_allocation",
            Route::Register => "register",
            Route::Deregister => "deregister",
            Route::SmbAppData => "smb_app_data",
            Route::Phone => "phone",
            Route::Other => "other",
            Route::Any => "any",
        }
    }
}

/// A scripted fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The route it applies to.
    pub route: Route,
    /// Matching calls to let through before the fault starts.
    #[serde(default)]
    pub skip: u32,
    /// How many calls it affects; absent means every call from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// What happens.
    pub action: FaultAction,
}

/// What a fault does to a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with a Graph error envelope.
    Error {
        /// HTTP status.
        status: u16,
        /// Graph error code.
        code: i64,
        /// Sub-code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subcode: Option<i64>,
        /// Message (a generic one when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// `is_transient`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_transient: Option<bool>,
    },
    /// Answer as Graph does when rate limiting: HTTP 400 (or `status`), a throttling code,
    /// and usage headers saying when access returns.
    Throttle {
        /// 4, 17, 32, 613 or 80008.
        #[serde(default = "default_throttle_code")]
        code: i64,
        /// HTTP status (Graph uses 400 or 403, not 429).
        #[serde(default = "default_throttle_status")]
        status: u16,
        /// `estimated_time_to_regain_access`, in minutes.
        #[serde(default)]
        minutes: u32,
        /// The app's usage in percent, sent as `X-App-Usage` when given (100 means the whole
        /// app is blocked, without an estimate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_usage: Option<u32>,
    },
    /// Wait, then answer normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// HTTP 200 whose body stops half-way (the connection closes early).
    Truncated,
    /// Close the connection without answering.
    Drop,
    /// HTTP 200 with a valid JSON body of about this many bytes.
    Huge {
        /// Body size in bytes.
        bytes: usize,
    },
    /// A list page holding at most `items` entries while `next` still points further, as
    /// Graph's pages sometimes are (short or even empty pages mid-list).
    ShortPage {
        /// Entries on the page (0 for an empty page).
        items: usize,
    },
    /// The usual answer with these top-level fields set: unusual or hostile values Graph
    /// might send (an absurd `expires_in`, a field of the wrong type).
    Fields {
        /// Field names and their values.
        set: serde_json::Map<String, serde_json::Value>,
    },
    /// HTTP 5xx with Graph's unknown-error envelope.
    ServerError {
        /// 500, 502, 503 or 504.
        #[serde(default = "default_server_status")]
        status: u16,
    },
}

fn default_throttle_code() -> i64 {
    80008
}
fn default_throttle_status() -> u16 {
    400
}
fn default_server_status() -> u16 {
    500
}

/// The active faults, consumed as calls arrive.
#[derive(Debug, Default, Clone)]
pub struct FaultQueue(Vec<Fault>);

impl FaultQueue {
    /// A queue holding `faults`.
    pub fn new(faults: Vec<Fault>) -> Self {
        Self(faults)
    }

    /// Adds faults after the existing ones.
    pub fn extend(&mut self, faults: Vec<Fault>) {
        self.0.extend(faults);
    }

    /// The faults still active.
    pub fn list(&self) -> &[Fault] {
        &self.0
    }

    /// The action for the next call to `route`, consuming `skip` and `times` as it goes.
    pub fn take(&mut self, route: Route) -> Option<FaultAction> {
        let mut chosen = None;
        for fault in self
            .0
            .iter_mut()
            .filter(|f| f.route == route || f.route == Route::Any)
        {
            if fault.skip > 0 {
                fault.skip -= 1;
                continue;
            }
            if let Some(t) = fault.times.as_mut() {
                *t -= 1;
            }
            chosen = Some(fault.action.clone());
            break;
        }
        self.0.retain(|f| f.times != Some(0));
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(route: Route, skip: u32, times: Option<u32>) -> Fault {
        Fault {
            route,
            skip,
            times,
            action: FaultAction::Malformed,
        }
    }

    #[test]
    fn skip_then_times_then_gone() {
        let mut q = FaultQueue::new(vec![fault(Route::Waba, 1, Some(2))]);
        assert_eq!(q.take(Route::DebugToken), None);
        assert_eq!(q.take(Route::Waba), None);
        assert_eq!(q.take(Route::Waba), Some(FaultAction::Malformed));
        assert_eq!(q.take(Route::Waba), Some(FaultAction::Malformed));
        assert_eq!(q.take(Route::Waba), None);
        assert!(q.list().is_empty());
    }

    #[test]
    fn forever_and_any() {
        let mut q = FaultQueue::new(vec![fault(Route::Any, 0, None)]);
        for r in [Route::Waba, Route::DebugToken, Route::OwnedWabas] {
            assert_eq!(q.take(r), Some(FaultAction::Malformed));
        }
        assert_eq!(q.list().len(), 1);
    }

    #[test]
    fn fault_json_shape() {
        let f: Fault = serde_json::from_str(
            r#"{"route":"debug_token","times":1,"action":{"kind":"throttle","code":4,"minutes":3}}"#,
        )
        .unwrap();
        assert_eq!(
            f.action,
            FaultAction::Throttle {
                code: 4,
                status: 400,
                minutes: 3,
                app_usage: None,
            }
        );
        assert!(
            serde_json::from_str::<Fault>(r#"{"route":"nowhere","action":{"kind":"drop"}}"#)
                .is_err()
        );
    }
}
