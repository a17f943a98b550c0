//! waba-onboard in the browser: a thin wasm binding over the `waba-graph` model.
//!
//! - [`signup`]: the `FB.login` response and `WA_EMBEDDED_SIGNUP` messages, and
//!   `SignupListener`, which waits for both.
//! - [`client`]: `WabaClient`, typed calls to the waba-proxy with a timeout.
//! - [`onboard`](mod@onboard): from a signup result to every granted account's status.
//! - [`render`]: `StatusPanel` / `renderAccounts`, the status panel in the page.
//! - [`i18n`]: `useMessages` / `message`, the language of every text.
//! - [`console`] (feature `console`, the console's entry point): the console's Graph reads and
//!   the parsers on their own; the signup page's module leaves them out.
//!
//! Values cross the JS boundary as plain objects read and written by [`js`] and [`read`]
//! (no JSON text in Rust, no serde code in the wasm), so ids stay strings and never pass
//! through a JS number. Errors reject as JS `Error` objects with a stable `code`.

/// The signup page's module allocates little and briefly: a small free-list allocator serves
/// it in a fraction of the bytes of the standard one (dlmalloc), which the console keeps for
/// its 10,000 accounts.
#[cfg(all(target_arch = "wasm32", not(feature = "console")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// Whether this is the console's module. The signup page's reads only what it shows and
/// decides with (`is_valid` and the scopes of a `debug_token` answer, a WABA's status fields
/// but not its creation time); the console's reads every field.
pub(crate) const CONSOLE: bool = cfg!(feature = "console");

mod browser;
pub mod client;
#[cfg(feature = "console")]
pub mod console;
pub mod error;
pub mod i18n;
pub mod js;
pub mod onboard;
pub mod read;
pub mod render;
pub mod signup;
pub mod typescript;
