//! The pure model of the parts of Meta's Graph API that waba-onboard uses.
//!
//! Shared by the browser module (`wasm/`) and the proxy (`proxy/`): no I/O, builds for native
//! and `wasm32-unknown-unknown`. It is the only place that knows Graph's JSON shapes.
//!
//! - [`id`]: object ids as exact strings (numbers accepted, never rounded).
//! - [`token`]: the `debug_token` answer and the WABAs a token was granted.
//! - [`waba`]: WhatsApp Business Account and phone number nodes.
//! - [`page`]: list pages with cursor paging.
//! - [`error`]: Graph's error envelope and its classification.
//! - [`input`]: validated request inputs (fields, filtering, sort, limit, cursors).
//! - [`timezone`]: the names of Graph's time zone ids.
//! - [`signup`]: Embedded Signup session events and `FB.login` responses.
//! - [`pipeline`]: the partner's post-signup steps, their tokens and Meta's errors.

pub mod error;
pub mod id;
pub mod input;
pub mod page;
pub mod pipeline;
pub mod secret;
pub mod signup;
pub mod status;
pub mod time;
pub mod timezone;
pub mod token;
pub mod waba;

pub use error::{ErrorClass, ErrorEnvelope, GraphError};
pub use id::{IdError, ObjectId};
pub use page::{Cursors, Page, Paging};
pub use secret::Secret;
pub use token::{DebugToken, GranularScope, TokenInfo, WabaScope};
pub use waba::{HealthStatus, PhoneNumber, ReviewStatus, Waba};
