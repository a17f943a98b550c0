//! The proxy's integration tests, in one test binary (`cargo test -p waba-proxy --test it`):
//! most run a real `waba-proxy` process in front of a graph-sim in this process; `oneshot`
//! calls the router in-process. One module per subject.

mod common;

mod authorization;
mod bad_input;
mod call_economy;
mod code_flow;
mod connections;
mod contract;
mod funnel;
mod lifecycle;
mod oneshot;
mod outbound;
mod pipeline;
mod replicas;
mod routes;
mod scrubbing;
mod upstream_failures;
mod webhooks;
