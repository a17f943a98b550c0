//! What the partner should see about each shared account: review status, phone readiness,
//! and, when the business left early or a phone is not ready, what must happen next.

use crate::signup::Abandoned;
use crate::waba::{PhoneNumber, ReviewStatus, Waba};
use serde::{Deserialize, Serialize};

/// The fields the status panel reads, with phones by field expansion (one call per WABA).
pub const STATUS_FIELDS: &str = "id,name,currency,timezone_id,message_template_namespace,\
account_review_status,business_verification_status,ownership_type,health_status,creation_time,\
phone_numbers{id,display_phone_number,verified_name,status,quality_rating,code_verification_status,name_status,platform_type}";

/// One account as the panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    /// The WABA as Graph returned it.
    pub waba: Waba,
    /// `account_review_status` as text (`PENDING`, `APPROVED`, `REJECTED`, `DEFERRED`, or
    /// any other value exactly as Graph sent it); `UNKNOWN` when absent.
    pub review: String,
    /// Whether `review` is one of the values this version knows.
    pub review_known: bool,
    /// Whether this is the most recently shared WABA of the signup.
    pub newest: bool,
    /// Each phone number and whether it can message.
    pub phones: Vec<PhoneStatus>,
    /// Why the onboarding is not complete, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub incomplete: Option<Incomplete>,
    /// Health problems Meta reports, with its suggested fixes.
    pub health_problems: Vec<String>,
}

/// One phone number's readiness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneStatus {
    /// The number as Graph returned it.
    pub phone: PhoneNumber,
    /// Connected and verified: it can send messages.
    pub ready: bool,
    /// Why it is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Why an onboarding is not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incomplete {
    /// Stable code: `left_at_step`, `reported_error`, `certificate_not_ready`, `no_phone_number`.
    pub reason: String,
    /// The step the business left at, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened and what the business must do, in plain words.
    pub message: String,
}

impl Incomplete {
    /// What a flow left early says is incomplete: the step and its guidance, or the reported
    /// error; `None` when the session message gave no detail.
    pub fn from_abandoned(abandoned: &Abandoned) -> Option<Self> {
        match abandoned {
            Abandoned::AtStep { current_step } => Some(Incomplete {
                reason: "left_at_step".into(),
                step: Some(current_step.clone()),
                message: step_guidance(current_step),
            }),
            Abandoned::Reported {
                error_message,
                error_id,
                ..
            } => Some(Incomplete {
                reason: "reported_error".into(),
                step: None,
                message: format!(
                    "The business reported an error in Embedded Signup{}{}. Reach out to help it \
                     finish.",
                    error_message
                        .as_deref()
                        .map(|m| format!(": “{m}”"))
                        .unwrap_or_default(),
                    error_id
                        .as_deref()
                        .map(|i| format!(" (error {i})"))
                        .unwrap_or_default(),
                ),
            }),
            Abandoned::Unspecified => None,
        }
    }
}

/// Plain-words guidance for the step a business left Embedded Signup at.
pub fn step_guidance(step: &str) -> String {
    let what = match step {
        "PHONE_NUMBER_VERIFICATION" => {
            "it did not verify its phone number, so the number's certificate is not ready. \
             Ask the business to finish Embedded Signup and enter the verification code"
        }
        "PHONE_NUMBER_SETUP" => {
            "it did not add a phone number. Ask the business to finish Embedded Signup and add \
             the number it wants to use"
        }
        "WABA_CREATION" | "WHATSAPP_BUSINESS_PROFILE_SETUP" => {
            "its WhatsApp Business account or profile was not finished. Ask the business to \
             restart Embedded Signup"
        }
        "BUSINESS_ACCOUNT_SELECTION" | "BUSINESS_ACCOUNT_CREATION" | "LOGIN" => {
            "it had not chosen a business portfolio yet, so nothing was shared. Invite it to \
             start Embedded Signup again"
        }
        _ => "Ask the business to finish Embedded Signup",
    };
    format!("The business left Embedded Signup at {step}: {what}.")
}

/// The number was never verified (or its verification is still pending): its certificate
/// is not ready, which is what a business that left Embedded Signup early leaves behind.
fn certificate_pending(p: &PhoneNumber) -> bool {
    p.code_verification_status.as_deref() == Some("NOT_VERIFIED")
        || p.status.as_deref() == Some("PENDING")
}

fn phone_problem(p: &PhoneNumber) -> Option<String> {
    let number = p
        .display_phone_number
        .as_deref()
        .unwrap_or("the phone number");
    if certificate_pending(p) {
        return Some(format!(
            "{number} is not verified: its certificate is not ready until the business \
             completes verification in Embedded Signup"
        ));
    }
    match (p.code_verification_status.as_deref(), p.status.as_deref()) {
        (Some("EXPIRED"), _) => Some(format!(
            "{number}'s verification expired: the business must verify it again"
        )),
        (_, Some("CONNECTED")) => None,
        (_, Some(other)) => Some(format!("{number} is {other}")),
        (_, None) => None,
    }
}

impl AccountStatus {
    /// The status of `waba`. `newest` marks the signup's most recent grant; `abandoned` says
    /// why the flow ended early (applied to the newest account); `expect_phone` is false for
    /// `FINISH_ONLY_WABA` signups.
    pub fn new(
        waba: Waba,
        newest: bool,
        abandoned: Option<&Abandoned>,
        expect_phone: bool,
    ) -> Self {
        let (review, review_known) = match &waba.account_review_status {
            Some(ReviewStatus::Unknown(raw)) => (raw.clone(), false),
            Some(s) => (s.as_str().to_owned(), true),
            None => ("UNKNOWN".to_owned(), false),
        };
        let phones: Vec<PhoneStatus> = waba
            .phone_numbers
            .as_ref()
            .map(|p| p.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|phone| {
                let problem = phone_problem(&phone);
                PhoneStatus {
                    ready: problem.is_none() && phone.status.as_deref() == Some("CONNECTED"),
                    problem,
                    phone,
                }
            })
            .collect();
        let incomplete = abandoned
            .filter(|_| newest)
            .and_then(Incomplete::from_abandoned)
            .or_else(|| {
                phones
                    .iter()
                    .filter(|p| certificate_pending(&p.phone))
                    .find_map(|p| p.problem.as_ref())
                    .map(|problem| Incomplete {
                        reason: "certificate_not_ready".into(),
                        step: None,
                        message: format!(
                            "{problem}. Reach out to the business to complete Embedded Signup."
                        ),
                    })
            })
            .or_else(|| {
                (expect_phone && phones.is_empty() && waba.phone_numbers.is_some()).then(|| {
                    Incomplete {
                        reason: "no_phone_number".into(),
                        step: None,
                        message:
                            "No phone number is registered on this account yet: the business must \
                          add one to send messages."
                                .to_owned(),
                    }
                })
            });
        let health_problems = waba
            .health_status
            .iter()
            .flat_map(|h| h.entities.iter())
            .flat_map(|e| e.errors.iter())
            .filter_map(|e| {
                let what = e.error_description.as_deref()?;
                Some(match &e.possible_solution {
                    Some(fix) => format!("{what} {fix}"),
                    None => what.to_owned(),
                })
            })
            .collect();
        AccountStatus {
            waba,
            review,
            review_known,
            newest,
            phones,
            incomplete,
            health_problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waba(json: &str) -> Waba {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ready_account() {
        let w = waba(
            r#"{"id":"1","account_review_status":"APPROVED","phone_numbers":{"data":[{"id":"2","status":"CONNECTED","code_verification_status":"VERIFIED"}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        assert_eq!((s.review.as_str(), s.review_known), ("APPROVED", true));
        assert!(s.phones[0].ready && s.incomplete.is_none());
    }

    #[test]
    fn a_flagged_phone_is_a_problem_but_not_an_incomplete_signup() {
        let w = waba(
            r#"{"id":"1","account_review_status":"APPROVED","phone_numbers":{"data":[{"id":"2","display_phone_number":"+1 555","status":"FLAGGED","code_verification_status":"VERIFIED"}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        assert!(s.incomplete.is_none());
        assert_eq!(s.phones[0].problem.as_deref(), Some("+1 555 is FLAGGED"));
        assert!(!s.phones[0].ready);
    }

    #[test]
    fn phone_not_verified_means_certificate_not_ready() {
        let w = waba(
            r#"{"id":"1","account_review_status":"PENDING","phone_numbers":{"data":[{"id":"2","display_phone_number":"+55 11 5555-0104","status":"PENDING","code_verification_status":"NOT_VERIFIED"}]},
            "health_status":{"can_send_message":"LIMITED","entities":[{"errors":[{"error_description":"Not verified.","possible_solution":"Verify it."}]}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        let inc = s.incomplete.unwrap();
        assert_eq!(inc.reason, "certificate_not_ready");
        assert!(inc.message.contains("+55 11 5555-0104") && inc.message.contains("certificate"));
        assert!(!s.phones[0].ready);
        assert_eq!(s.health_problems, ["Not verified. Verify it."]);
    }

    #[test]
    fn abandoned_step_and_unknown_status() {
        let w = waba(
            r#"{"id":"1","account_review_status":"UNDER_APPEAL","phone_numbers":{"data":[]}}"#,
        );
        let step = Abandoned::AtStep {
            current_step: "PHONE_NUMBER_VERIFICATION".into(),
        };
        let s = AccountStatus::new(w.clone(), true, Some(&step), true);
        assert_eq!((s.review.as_str(), s.review_known), ("UNDER_APPEAL", false));
        let inc = s.incomplete.unwrap();
        assert_eq!(
            (inc.reason.as_str(), inc.step.as_deref()),
            ("left_at_step", Some("PHONE_NUMBER_VERIFICATION"))
        );
        assert!(inc.message.contains("verification code"));
        // Only the newest account carries the signup's abandonment; an empty phone list
        // then says a number is missing.
        let s = AccountStatus::new(w.clone(), false, Some(&step), true);
        assert_eq!(s.incomplete.unwrap().reason, "no_phone_number");
        assert!(
            AccountStatus::new(w, false, None, false)
                .incomplete
                .is_none()
        );
        let reported = Abandoned::Reported {
            error_message: Some("Code incorrect".into()),
            error_id: Some("524126".into()),
            session_id: None,
        };
        let w = waba(r#"{"id":"1"}"#);
        let s = AccountStatus::new(w, true, Some(&reported), true);
        assert_eq!(s.review, "UNKNOWN");
        assert!(s.incomplete.unwrap().message.contains("524126"));
    }
}
