//! waba-onboard in the browser: a thin wasm binding over the `waba-graph` model.
//!
//! - [`signup`]: the `FB.login` response and `WA_EMBEDDED_SIGNUP` messages, and
//!   `SignupListener`, which waits for both.
//! - [`client`]: `WabaClient`, typed calls to the waba-proxy with a timeout.
//! - [`onboard`](mod@onboard): from a signup result to every granted account's status.
//! - [`render`]: `StatusPanel` / `renderAccounts`, the status panel in the page.
//! - [`console`] (feature `console`, the console's entry point): the console's Graph reads and
//!   the parsers on their own; the signup page's module leaves them out.
//!
//! Values cross the JS boundary as plain objects read and written by [`js`] and [`read`]
//! (no JSON text in Rust, no serde code in the wasm), so ids stay strings and never pass
//! through a JS number. Errors reject as JS `Error` objects with a stable `code`.

pub mod client;
#[cfg(feature = "console")]
pub mod console;
pub mod error;
pub mod js;
pub mod onboard;
pub mod read;
pub mod render;
pub mod signup;
mod typescript;
