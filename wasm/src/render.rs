//! The status panel: every account's review status, facts, phones and guidance, built with
//! DOM calls only (text through `textContent`, never HTML), updated in place, with an ARIA
//! live region announcing changes. Classes start with `waba-`; `waba-onboard.css` is the
//! default style and partners restyle through its custom properties.

use crate::error::{WabaError, code};
use crate::js::Obj;
use crate::read;
use crate::signup::SignupInput;
use waba_graph::signup::{Abandoned, SessionEvent};
use waba_graph::status::{AccountStatus, Actor, PhoneStatus, step_guidance};
use waba_graph::timezone::timezone_name;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element};

type Res<T> = Result<T, JsValue>;

fn doc() -> Res<Document> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| WabaError::new(code::INVALID_ARGUMENT, "no document").into())
}

fn el(d: &Document, tag: &str, class: &str) -> Res<Element> {
    let e = d.create_element(tag)?;
    if !class.is_empty() {
        e.set_class_name(class);
    }
    Ok(e)
}

fn text(d: &Document, parent: &Element, tag: &str, class: &str, content: &str) -> Res<Element> {
    let e = el(d, tag, class)?;
    e.set_text_content(Some(content));
    parent.append_child(&e)?;
    Ok(e)
}

/// The class suffix of a status value: lower case letters, digits and dashes only.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect()
}

/// The status panel.
#[wasm_bindgen]
pub struct StatusPanel {
    doc: Document,
    root: Element,
    live: Element,
    state: Element,
    list: Element,
    /// Review status last shown, by WABA id, to announce changes.
    shown: Vec<(String, String)>,
}

#[wasm_bindgen]
impl StatusPanel {
    /// Builds an empty panel inside `container` (its content is replaced).
    #[wasm_bindgen(constructor)]
    pub fn new(container: Element) -> Res<StatusPanel> {
        let d = doc()?;
        container.set_text_content(None);
        let root = el(&d, "section", "waba-panel")?;
        root.set_attribute("aria-label", "WhatsApp Business accounts")?;
        let live = el(&d, "div", "waba-live")?;
        live.set_attribute("role", "status")?;
        live.set_attribute("aria-live", "polite")?;
        let state = el(&d, "div", "waba-state")?;
        let list = el(&d, "ul", "waba-accounts")?;
        root.append_child(&live)?;
        root.append_child(&state)?;
        root.append_child(&list)?;
        container.append_child(&root)?;
        Ok(StatusPanel {
            doc: d,
            root,
            live,
            state,
            list,
            shown: Vec::new(),
        })
    }

    fn set_state(&self, kind: &str, title: &str, detail: Option<&str>) -> Res<()> {
        self.state.set_text_content(None);
        self.state
            .set_class_name(&format!("waba-state waba-state--{kind}"));
        if kind == "idle" {
            return Ok(());
        }
        text(&self.doc, &self.state, "strong", "waba-state__title", title)?;
        if let Some(d) = detail {
            text(&self.doc, &self.state, "p", "waba-state__detail", d)?;
        }
        Ok(())
    }

    fn announce(&self, message: &str) {
        self.live.set_text_content(Some(message));
    }

    /// Shows a loading state (`message` defaults to "Loading accounts…").
    pub fn loading(&self, message: Option<String>) -> Res<()> {
        let m = message.unwrap_or_else(|| "Loading accounts…".into());
        self.root.set_attribute("aria-busy", "true")?;
        self.set_state("loading", &m, None)?;
        self.announce(&m);
        Ok(())
    }

    /// Shows a waiting notice that is not an error (for example "Meta is rate limiting:
    /// retrying in 30 s").
    pub fn notice(&self, title: &str, detail: Option<String>) -> Res<()> {
        self.set_state("notice", title, detail.as_deref())?;
        self.announce(title);
        Ok(())
    }

    /// Shows an error: a `WabaOnboardError` (its `message`, plus `retryAfter` when
    /// throttled) or any value.
    #[wasm_bindgen(js_name = showError)]
    pub fn show_error(&self, error: JsValue) -> Res<()> {
        self.root.set_attribute("aria-busy", "false")?;
        let get = |k: &str| js_sys::Reflect::get(&error, &JsValue::from_str(k)).ok();
        let code = get("code").and_then(|v| v.as_string());
        let message = get("message")
            .and_then(|v| v.as_string())
            .or_else(|| error.as_string())
            .unwrap_or_else(|| "Something went wrong.".into());
        let title = match code.as_deref() {
            Some("throttled") => "Meta is limiting requests right now",
            Some("timeout" | "upstream_timeout") => "The accounts did not load in time",
            Some("network") => "The signup service cannot be reached",
            Some("unauthorized") => "The signup session is no longer valid",
            Some("forbidden") => "This account is not available to you",
            _ => "The accounts could not be loaded",
        };
        self.state.set_attribute("role", "alert")?;
        self.set_state("error", title, Some(&message))?;
        if let Some(code) = code {
            self.state.set_attribute("data-error-code", &code)?;
        }
        Ok(())
    }

    /// Shows what a signup result means when there is nothing to list: the business
    /// cancelled, left at a step, or reported an error.
    #[wasm_bindgen(js_name = showSignup)]
    pub fn show_signup(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SignupResult")] result: JsValue,
    ) -> Res<()> {
        let r = SignupInput::from_js(result)?;
        self.root.set_attribute("aria-busy", "false")?;
        let (title, detail) = match (r.event().and_then(SessionEvent::abandoned), r.outcome.as_str()) {
            (Some(Abandoned::AtStep { current_step }), _) => {
                ("Signup not finished".to_owned(), step_guidance(current_step))
            }
            (
                Some(Abandoned::Reported {
                    error_message: Some(msg),
                    error_code,
                    ..
                }),
                _,
            ) => (
                "The business reported an error".to_owned(),
                format!(
                    "“{msg}”{}. Reach out to help it finish Embedded Signup.",
                    error_code.as_deref().map(|i| format!(" (error {i})")).unwrap_or_default()
                ),
            ),
            (_, "cancelled") => (
                "Signup cancelled".to_owned(),
                "The window was closed before the business shared an account. Start again when ready.".to_owned(),
            ),
            _ => ("Signup finished".to_owned(), "Loading the shared accounts…".to_owned()),
        };
        self.state.set_attribute("data-outcome", &r.outcome)?;
        self.set_state("signup", &title, Some(&detail))?;
        self.announce(&title);
        Ok(())
    }

    /// Renders `accounts` (from `onboard`, or any `AccountStatus[]`), updating rows in place
    /// by WABA id and announcing review status changes. `warnings` are shown above.
    pub fn render(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "AccountStatus[]")] accounts: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Warning[] | undefined")] warnings: JsValue,
    ) -> Res<()> {
        let accounts: Vec<AccountStatus> = read::array(accounts, "accounts")?
            .into_iter()
            .map(read::account_status)
            .collect::<Result<_, _>>()?;
        let warnings: Vec<(String, String)> = crate::js::list(&warnings)
            .into_iter()
            .filter_map(Obj::new)
            .map(|w| {
                (
                    w.str("code").unwrap_or_default(),
                    w.str("message").unwrap_or_default(),
                )
            })
            .collect();
        self.root.set_attribute("aria-busy", "false")?;
        self.state.remove_attribute("role")?;
        if accounts.is_empty() {
            self.set_state("empty", "No WhatsApp Business account was shared.", None)?;
        } else {
            self.set_state("idle", "", None)?;
        }
        for (code, message) in &warnings {
            let p = text(&self.doc, &self.state, "p", "waba-warning", message)?;
            p.set_attribute("data-warning", code)?;
            self.state.set_class_name("waba-state waba-state--warning");
        }
        let mut changes = Vec::new();
        let mut existing: Vec<(String, Element)> = Vec::new();
        let children = self.list.children();
        for i in 0..children.length() {
            if let Some(item) = children.item(i)
                && let Some(id) = item.get_attribute("data-account-id")
            {
                existing.push((id, item));
            }
        }
        for account in &accounts {
            let id = account.waba.id.to_string();
            let found = existing.iter().position(|(known, _)| *known == id);
            let item = match found.map(|i| existing.swap_remove(i).1) {
                Some(item) => {
                    item.set_text_content(None);
                    item
                }
                None => {
                    let item = el(&self.doc, "li", "")?;
                    item.set_attribute("data-account-id", &id)?;
                    item
                }
            };
            self.fill(&item, account)?;
            // Appending moves existing rows into the new order.
            self.list.append_child(&item)?;
            let name = account.waba.name.clone().unwrap_or_else(|| id.clone());
            match self.shown.iter_mut().find(|(known, _)| *known == id) {
                Some((_, before)) if *before != account.review => {
                    changes.push(format!(
                        "{name}: review status changed from {before} to {}",
                        account.review
                    ));
                    *before = account.review.clone();
                }
                Some(_) => {}
                None => self.shown.push((id, account.review.clone())),
            }
        }
        for (id, stale) in existing {
            self.list.remove_child(&stale)?;
            self.shown.retain(|(known, _)| *known != id);
        }
        let summary = if changes.is_empty() {
            format!(
                "{} account{} shown.",
                accounts.len(),
                if accounts.len() == 1 { "" } else { "s" }
            )
        } else {
            changes.join(". ")
        };
        self.announce(&summary);
        Ok(())
    }

    fn fill(&self, item: &Element, a: &AccountStatus) -> Res<()> {
        let d = &self.doc;
        let mut class = String::from("waba-account");
        if a.newest {
            class.push_str(" waba-account--newest");
        }
        if a.incomplete.is_some() {
            class.push_str(" waba-account--incomplete");
        }
        if !a.alerts.is_empty() {
            class.push_str(" waba-account--alert");
        }
        item.set_class_name(&class);
        let header = el(d, "header", "waba-account__header")?;
        let name = a.waba.name.as_deref().unwrap_or("Unnamed account");
        text(d, &header, "h3", "waba-account__name", name)?;
        let badge_class = if a.review_known {
            format!("waba-badge waba-badge--{}", slug(&a.review))
        } else {
            "waba-badge waba-badge--unknown".to_owned()
        };
        let badge = text(d, &header, "span", &badge_class, &a.review)?;
        badge.set_attribute("data-status", &a.review)?;
        badge.set_attribute("title", "Account review status")?;
        if a.newest {
            text(d, &header, "span", "waba-newest", "Newest")?;
        }
        item.append_child(&header)?;

        let facts = el(d, "dl", "waba-account__facts")?;
        let health = a
            .waba
            .health_status
            .as_ref()
            .and_then(|h| h.can_send_message.clone());
        for (label, value) in [
            ("WABA ID", Some(a.waba.id.to_string())),
            ("Currency", a.waba.currency.clone()),
            (
                "Time zone",
                a.waba
                    .timezone_id
                    .as_deref()
                    .map(|id| match timezone_name(id) {
                        Some(name) => format!("{name} ({id})"),
                        None => id.to_owned(),
                    }),
            ),
            (
                "Template namespace",
                a.waba.message_template_namespace.clone(),
            ),
            ("Health", health),
            (
                "Business verification",
                a.waba.business_verification_status.clone(),
            ),
        ] {
            if let Some(v) = value {
                text(d, &facts, "dt", "", label)?;
                text(d, &facts, "dd", "", &v)?;
            }
        }
        item.append_child(&facts)?;

        if let Some(v) = &a.verification {
            let note = el(d, "p", "waba-verification")?;
            note.set_attribute("data-status", &v.kind)?;
            note.set_attribute("data-actor", v.actor.as_str())?;
            note.set_text_content(Some(&v.message));
            item.append_child(&note)?;
        }
        for alert in &a.alerts {
            let notice = el(
                d,
                "div",
                &format!("waba-notice waba-alert waba-alert--{}", slug(&alert.kind)),
            )?;
            notice.set_attribute("role", "alert")?;
            notice.set_attribute("data-kind", &alert.kind)?;
            notice.set_attribute("data-actor", alert.actor.as_str())?;
            text(d, &notice, "p", "", &alert.message)?;
            item.append_child(&notice)?;
        }
        if let Some(inc) = &a.incomplete {
            let notice = el(d, "div", "waba-notice waba-notice--incomplete")?;
            notice.set_attribute("role", "note")?;
            notice.set_attribute("data-reason", &inc.reason)?;
            text(d, &notice, "strong", "", "Incomplete signup")?;
            text(d, &notice, "p", "", &inc.message)?;
            item.append_child(&notice)?;
        }
        if !a.health_problems.is_empty() {
            let ul = el(d, "ul", "waba-health-problems")?;
            for p in &a.health_problems {
                text(d, &ul, "li", "", p)?;
            }
            item.append_child(&ul)?;
        }
        if !a.progress.is_empty() {
            let steps = el(d, "ol", "waba-steps")?;
            steps.set_attribute("aria-label", "The partner's setup")?;
            // Steps that were not needed say nothing to the business.
            for p in a.progress.iter().filter(|p| p.state != "skipped") {
                let li = text(
                    d,
                    &steps,
                    "li",
                    &format!("waba-step waba-step--{}", p.state),
                    &p.text,
                )?;
                li.set_attribute("data-step", &p.step)?;
                li.set_attribute("data-state", &p.state)?;
                li.set_attribute("data-actor", p.actor.as_str())?;
                if let Some(id) = &p.phone_id {
                    li.set_attribute("data-phone-id", id)?;
                }
                if let (Some(m), "failed") = (&p.message, p.state.as_str()) {
                    text(d, &li, "p", "waba-step__message", m)?;
                }
            }
            item.append_child(&steps)?;
        }
        let phones = el(d, "ul", "waba-phones")?;
        phones.set_attribute("aria-label", "Phone numbers")?;
        if a.phones.is_empty() {
            text(
                d,
                &phones,
                "li",
                "waba-phone waba-phone--none",
                "No phone number yet",
            )?;
        }
        for p in &a.phones {
            let li = self.phone(p)?;
            phones.append_child(&li)?;
        }
        item.append_child(&phones)?;
        Ok(())
    }

    fn phone(&self, p: &PhoneStatus) -> Res<Element> {
        let d = &self.doc;
        let li = el(
            d,
            "li",
            if p.ready {
                "waba-phone waba-phone--ready"
            } else {
                "waba-phone waba-phone--not-ready"
            },
        )?;
        li.set_attribute("data-phone-id", p.phone.id.as_str())?;
        let number = p
            .phone
            .display_phone_number
            .as_deref()
            .unwrap_or(p.phone.id.as_str());
        text(d, &li, "span", "waba-phone__number", number)?;
        if let Some(n) = &p.phone.verified_name {
            text(d, &li, "span", "waba-phone__name", n)?;
        }
        if let Some(s) = &p.phone.status {
            text(
                d,
                &li,
                "span",
                &format!("waba-chip waba-chip--{}", slug(s)),
                s,
            )?;
        }
        if let Some(q) = &p.phone.quality_rating {
            let chip = text(
                d,
                &li,
                "span",
                &format!("waba-quality waba-quality--{}", slug(q)),
                q,
            )?;
            chip.set_attribute("title", "Quality rating")?;
        }
        li.set_attribute("data-actor", p.actor.as_str())?;
        li.set_attribute("data-action", &p.action)?;
        let readiness = match (p.ready, p.actor) {
            (true, _) => "Ready",
            (false, Actor::Business) => "Not ready: the business acts",
            (false, Actor::Partner) => "Not ready: the partner acts",
            (false, Actor::Meta) => "Not ready: Meta acts",
            (false, _) => "Not ready",
        };
        text(d, &li, "span", "waba-phone__ready", readiness)?;
        if let Some(problem) = &p.problem {
            text(d, &li, "p", "waba-phone__problem", problem)?;
        }
        Ok(li)
    }
}

/// `renderAccounts(container, accounts, warnings?)`: a new panel in `container` showing
/// `accounts`; keep the returned panel to update it in place.
#[wasm_bindgen(js_name = renderAccounts)]
pub fn render_accounts(
    container: Element,
    #[wasm_bindgen(unchecked_param_type = "AccountStatus[]")] accounts: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Warning[] | undefined")] warnings: JsValue,
) -> Res<StatusPanel> {
    let mut panel = StatusPanel::new(container)?;
    panel.render(accounts, warnings)?;
    Ok(panel)
}
