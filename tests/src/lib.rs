//! Test support for waba-onboard: the Graph simulator, the receiver of the proxy's outbound
//! webhooks, and the helpers the end-to-end tests and `cargo xtask` share.

pub mod browser;
pub mod funnel;
pub mod harness;
pub mod postgres;
pub mod receiver;
pub mod sim;
