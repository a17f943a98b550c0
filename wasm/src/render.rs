//! The status panel: every account's review status, facts, phones and guidance, built with
//! DOM calls only (text through `textContent`, never HTML), updated in place, with an ARIA
//! live region announcing changes. Classes start with `waba-`; `waba-onboard.css` is the
//! default style and partners restyle through its custom properties. The model decides what
//! is shown (the checked accounts, the signup's guidance); `js/browser.js` builds the DOM.

use crate::browser::Panel;
use crate::read;
use crate::signup::SignupInput;
use crate::typescript::WarningsArg;
use js_sys::Array;
use waba_graph::messages::text;
use waba_graph::signup::{Abandoned, SessionEvent};
use waba_graph::status::{AccountStatus, step_guidance};
use waba_graph::timezone::timezone_name;
use wasm_bindgen::prelude::*;
use web_sys::Element;

type Res<T> = Result<T, JsValue>;

/// What the panel shows of an account that the model decides: `[id, review, whether the
/// review is a status Meta documents, the time zone as shown]`.
fn view(a: &AccountStatus) -> JsValue {
    let timezone = a
        .waba
        .timezone_id
        .as_deref()
        .map(|id| match timezone_name(id) {
            Some(name) => [name, " (", id, ")"].concat(),
            None => id.to_owned(),
        });
    let v = Array::new();
    v.push(&a.waba.id.as_str().into());
    v.push(&a.review.as_str().into());
    v.push(&a.review_known.into());
    v.push(&timezone.into());
    v.into()
}

/// The status panel.
#[wasm_bindgen]
pub struct StatusPanel {
    panel: Panel,
}

#[wasm_bindgen]
impl StatusPanel {
    /// Builds an empty panel inside `container` (its content is replaced), writing its texts
    /// in the language chosen by `useMessages`.
    #[wasm_bindgen(constructor)]
    pub fn new(container: Element) -> Res<StatusPanel> {
        Ok(StatusPanel {
            panel: Panel::new(&container)?,
        })
    }

    /// Shows a loading state (`message` defaults to "Loading accounts…" in the panel's
    /// language).
    pub fn loading(&self, message: Option<String>) -> Res<()> {
        self.panel.loading(message)
    }

    /// Shows a waiting notice that is not an error (for example "Meta is rate limiting:
    /// retrying in 30 s").
    pub fn notice(&self, title: &str, detail: Option<String>) -> Res<()> {
        self.panel.notice(title, detail)
    }

    /// Shows an error: a `WabaOnboardError` (its `message`, plus `retryAfter` when
    /// throttled) or any value.
    #[wasm_bindgen(js_name = showError)]
    pub fn show_error(&self, error: JsValue) -> Res<()> {
        self.panel.error(&error)
    }

    /// Shows what a signup result means when there is nothing to list: the business
    /// cancelled, left at a step, or reported an error.
    #[wasm_bindgen(js_name = showSignup)]
    pub fn show_signup(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SignupResult")] result: JsValue,
    ) -> Res<()> {
        crate::i18n::install();
        let r = SignupInput::from_js(result)?;
        let (title, detail) = match (
            r.event().and_then(SessionEvent::abandoned),
            r.outcome.as_str(),
        ) {
            (Some(Abandoned::AtStep { current_step }), _) => {
                ("signup.not_finished", step_guidance(current_step))
            }
            (
                Some(Abandoned::Reported {
                    error_message: Some(msg),
                    error_code,
                    ..
                }),
                _,
            ) => (
                "signup.reported_title",
                match error_code {
                    Some(code) => text("signup.reported_code", &[("message", msg), ("code", code)]),
                    None => text("signup.reported", &[("message", msg)]),
                },
            ),
            (_, "cancelled") => ("signup.cancelled_title", text("signup.cancelled", &[])),
            _ => (
                "signup.finished_title",
                text("signup.loading_accounts", &[]),
            ),
        };
        self.panel.signup(&r.outcome, &text(title, &[]), &detail)
    }

    /// Renders `accounts` (from `onboard`, or any `AccountStatus[]`), updating rows in place
    /// by WABA id and announcing review status changes. `warnings` are shown above.
    pub fn render(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "AccountStatus[]")] accounts: JsValue,
        warnings: Option<WarningsArg>,
    ) -> Res<()> {
        let warnings = warnings.map_or(JsValue::UNDEFINED, JsValue::from);
        let items = Array::new();
        let views = Array::new();
        for account in read::array(accounts, "accounts")? {
            views.push(&view(&read::account_status(account.clone())?));
            items.push(&account);
        }
        self.panel.render(&items, &views, &warnings)
    }
}

/// `renderAccounts(container, accounts, warnings?)`: a new panel in `container` showing
/// `accounts`; keep the returned panel to update it in place.
#[wasm_bindgen(js_name = renderAccounts)]
pub fn render_accounts(
    container: Element,
    #[wasm_bindgen(unchecked_param_type = "AccountStatus[]")] accounts: JsValue,
    warnings: Option<WarningsArg>,
) -> Res<StatusPanel> {
    let mut panel = StatusPanel::new(container)?;
    panel.render(accounts, warnings)?;
    Ok(panel)
}
