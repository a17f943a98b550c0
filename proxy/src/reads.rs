//! The allowlisted Graph reads the proxy forwards: what a read names ([`Read`], validated
//! before anything else happens), who may make it, and its answer: asked of Graph with the
//! System User token and the proxy's own canonical parameters, re-serialised from the typed
//! model (only known fields pass), paging links pointing at the proxy, scrubbed of secrets.

use crate::auth::Principal;
use crate::auth::signup_token::{Asker, TokenInspector};
use crate::error::AppError;
use crate::upstream::directory::Directory;
use crate::upstream::scrub::Scrubber;
use crate::upstream::{GraphRoute, Upstream, paging};
use futures_util::StreamExt as _;
use serde_json::value::RawValue;
use std::net::IpAddr;
use std::sync::Arc;
use waba_graph::input::{AccessToken, Fields, InputError, ListEdge, ListQuery, PhoneQuery};
use waba_graph::status::STATUS_FIELDS;
use waba_graph::{ObjectId, Page, PhoneNumber, Waba};

/// WABAs read from Graph at once for one caller (its granted accounts, an onboarding's
/// follow-ups).
pub const PARALLEL_READS: usize = 4;

/// What a signup credential was granted, with each granted WABA as its read answers it.
#[derive(Debug)]
pub struct GrantedAccounts {
    /// The granted WABAs, newest first.
    pub wabas: Vec<String>,
    /// The granted WABAs in the order of `wabas`, each exactly what `GET /graph/{id}` with
    /// [`STATUS_FIELDS`] answers; one whose read failed is left out (the page reads it
    /// itself and shows that read's error), except when Meta limited requests: then that
    /// refusal is the whole answer.
    pub accounts: Vec<Box<RawValue>>,
}

/// What a `/graph/...` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `debug_token`.
    DebugToken,
    /// A WABA node.
    Waba(ObjectId),
    /// A WABA's phone numbers.
    PhoneNumbers(ObjectId),
    /// A business's WABA list.
    List(ObjectId, ListEdge),
}

impl Target {
    /// The kind of Graph call.
    pub fn route(&self) -> GraphRoute {
        match self {
            Target::DebugToken => GraphRoute::DebugToken,
            Target::Waba(_) => GraphRoute::Waba,
            Target::PhoneNumbers(_) => GraphRoute::PhoneNumbers,
            Target::List(_, ListEdge::Client) => GraphRoute::ClientWabas,
            Target::List(_, ListEdge::Owned) => GraphRoute::OwnedWabas,
        }
    }

    /// The path under `/graph/` (and under Graph's version).
    pub fn path(&self) -> String {
        match self {
            Target::DebugToken => "debug_token".into(),
            Target::Waba(id) => id.to_string(),
            Target::PhoneNumbers(id) => format!("{id}/phone_numbers"),
            Target::List(id, edge) => format!("{id}/{}", edge.as_str()),
        }
    }
}

/// A validated read: its target and its canonical query.
#[derive(Debug)]
pub enum Read {
    /// `debug_token?input_token=`: public, limited per client address.
    DebugToken(AccessToken),
    /// A WABA node, or its phone numbers, with `(name, value)` pairs in canonical form.
    Account(Target, ObjectId, Vec<(&'static str, String)>),
    /// A WABA list of a business: the admin only.
    List(Target, ObjectId, Vec<(&'static str, String)>),
}

impl Read {
    /// Validates the query of `target`; unknown or repeated parameters are refused.
    pub fn new(target: Target, pairs: &[(&str, &str)]) -> Result<Self, AppError> {
        Ok(match &target {
            Target::DebugToken => {
                let input = single_param(pairs, &["input_token"])?
                    .ok_or(AppError::BadRequest("input_token is required"))?;
                Read::DebugToken(
                    AccessToken::parse(input)
                        .map_err(|_| AppError::BadRequest("input_token is not an access token"))?,
                )
            }
            Target::Waba(id) => {
                let fields = single_param(pairs, &["fields"])?
                    .map(Fields::parse_waba)
                    .transpose()?;
                let query = fields.iter().map(|f| ("fields", f.to_string())).collect();
                Read::Account(target.clone(), id.clone(), query)
            }
            Target::PhoneNumbers(id) => {
                let query = PhoneQuery::from_pairs(pairs.iter().copied())?.to_pairs();
                Read::Account(target.clone(), id.clone(), query)
            }
            Target::List(business, _) => {
                let query = ListQuery::from_pairs(pairs.iter().copied())?.to_pairs();
                Read::List(target.clone(), business.clone(), query)
            }
        })
    }

    /// Whether the answer is a page whose links point at the proxy.
    pub fn is_page(&self) -> bool {
        matches!(
            self,
            Read::List(..) | Read::Account(Target::PhoneNumbers(_), ..)
        )
    }
}

/// The value of the only parameter a route takes; unknown or repeated parameters are errors.
fn single_param<'a>(
    pairs: &[(&str, &'a str)],
    allowed: &[&str],
) -> Result<Option<&'a str>, AppError> {
    let mut found = None;
    for (k, v) in pairs {
        if !allowed.contains(k) {
            return Err(InputError::unknown_parameter(k).into());
        }
        if found.replace(*v).is_some() {
            return Err(InputError::DuplicateParameter((*k).to_owned()).into());
        }
    }
    Ok(found)
}

/// Answers reads.
pub struct Reads {
    /// Graph.
    pub upstream: Upstream,
    /// The partner's WABAs (what the admin may read).
    pub directory: Arc<Directory>,
    /// `debug_token` with its cache.
    pub tokens: Arc<TokenInspector>,
    /// Secret scrubbing of answers.
    pub scrubber: Arc<Scrubber>,
    /// The only business the list reads serve.
    pub business: ObjectId,
}

impl Reads {
    /// `debug_token` for `client`: cached by token hash, a miss charged to its allowance.
    pub async fn debug_token(
        &self,
        client: IpAddr,
        input: &AccessToken,
    ) -> Result<String, AppError> {
        let inspection = self
            .tokens
            .inspect(input.expose(), Asker::Client(client))
            .await?;
        let text = serde_json::to_string(&inspection.debug).map_err(|_| AppError::Internal)?;
        Ok(self.scrubber.scrub_owned(text, &[input.expose()]))
    }

    /// A WABA or list read by `principal`, whose `credential` is scrubbed from the answer;
    /// `base` is the proxy's public URL, for the links of a page.
    pub async fn answer(
        &self,
        read: &Read,
        principal: &Principal,
        credential: &str,
        base: Option<&str>,
    ) -> Result<String, AppError> {
        let (target, query) = match read {
            Read::DebugToken(_) => return Err(AppError::Internal),
            Read::Account(target, waba, query) => {
                self.may_read_account(principal, waba).await?;
                (target, query)
            }
            Read::List(target, business, query) => {
                self.may_list(principal, business)?;
                (target, query)
            }
        };
        let path = target.path();
        let body = self
            .upstream
            .get_shared(target.route(), &path, query, &[credential])
            .await?;
        let text = match target {
            Target::Waba(_) => to_json(&parse::<Waba>(&body)?)?,
            Target::PhoneNumbers(_) => page_text::<PhoneNumber>(&body, base, &path, query)?,
            _ => page_text::<Waba>(&body, base, &path, query)?,
        };
        Ok(self.scrubber.scrub_owned(text, &[credential]))
    }

    /// Every WABA a signup credential was granted, read with the status fields in one
    /// answer (at most [`PARALLEL_READS`] Graph reads at once, each shared with the same
    /// read by anyone else): the signup page's statuses in one round trip. The admin has no
    /// grant (403): it reads each WABA at `/graph/{id}`.
    pub async fn granted(
        &self,
        principal: &Principal,
        credential: &str,
    ) -> Result<GrantedAccounts, AppError> {
        let Principal::Signup(grant) = principal else {
            return Err(AppError::Forbidden(
                "the admin token has no grant: read each WABA at /graph/{id}",
            ));
        };
        let fields = Fields::parse_waba(STATUS_FIELDS)?.to_string();
        let accounts = futures_util::stream::iter(grant.wabas.clone())
            .map(|id: ObjectId| {
                let read = Read::Account(
                    Target::Waba(id.clone()),
                    id.clone(),
                    vec![("fields", fields.clone())],
                );
                async move {
                    let answer = self.answer(&read, principal, credential, None).await;
                    if let Err(e) = &answer {
                        tracing::info!(error = %e, waba = %id, "a granted WABA's read failed");
                    }
                    answer
                }
            })
            .buffered(PARALLEL_READS)
            .collect::<Vec<_>>()
            .await;
        // Meta limiting requests is the whole answer: the page waits and asks again, rather
        // than reading each account itself while Meta is refusing.
        if let Some(Err(e)) = accounts
            .iter()
            .find(|a| matches!(a, Err(e) if e.is_throttling()))
        {
            return Err(e.clone());
        }
        let accounts = accounts
            .into_iter()
            .filter_map(|a| a.ok().and_then(|text| RawValue::from_string(text).ok()))
            .collect();
        Ok(GrantedAccounts {
            wabas: grant.wabas.iter().map(ToString::to_string).collect(),
            accounts,
        })
    }

    /// A signup credential granted `waba`, or the admin and `waba` is the partner's.
    async fn may_read_account(
        &self,
        principal: &Principal,
        waba: &ObjectId,
    ) -> Result<(), AppError> {
        match principal {
            Principal::Admin if self.directory.contains(waba).await? => Ok(()),
            Principal::Admin => Err(AppError::Forbidden(
                "this WABA is neither owned by nor shared with the partner's business",
            )),
            p if p.signup_may_read(waba) => Ok(()),
            _ => Err(AppError::Forbidden(
                "this credential was not granted that WABA",
            )),
        }
    }

    /// The admin, about the configured business. No Graph call decides it.
    fn may_list(&self, principal: &Principal, business: &ObjectId) -> Result<(), AppError> {
        match principal {
            Principal::Admin if *business == self.business => Ok(()),
            Principal::Admin => Err(AppError::Forbidden(
                "the proxy serves only the partner's own business",
            )),
            Principal::Signup(_) => Err(AppError::Forbidden("list routes need the admin token")),
        }
    }
}

/// A page re-serialised from the typed model, its links rewritten to point at the proxy.
fn page_text<T: serde::Serialize + serde::de::DeserializeOwned>(
    body: &[u8],
    base: Option<&str>,
    path: &str,
    query: &[(&str, String)],
) -> Result<String, AppError> {
    let base = base.ok_or(AppError::Internal)?;
    let mut page: Page<T> = parse(body)?;
    page.paging = paging::rewrite(&page, base, path, query);
    to_json(&page)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|_| AppError::Internal)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|_| AppError::UpstreamGarbage("not the JSON Graph sends"))
}
