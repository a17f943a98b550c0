//! waba-proxy: the sidecar that alone holds the partner's System User token.
//!
//! It forwards an allowlist of Graph reads and decides per caller what it may see
//! (see `DESIGN.md`, "Proxy contract"). The routes are built on the `waba-graph` model.

pub use waba_graph as graph;
