//! `bench-hello`: the floor `cargo xtask bench` compares the proxy's cached reads with: a
//! hello-world axum server, built like the proxy (release, mimalloc, tokio's multi-threaded
//! runtime), answering every `GET` with one fixed JSON body of the size the proxy answers.
//! Prints `bench-hello listening on http://ADDR` once it listens.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The hello-world floor of the bench.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The body every answer carries.
    #[arg(long)]
    body: String,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let body: &'static str = Box::leak(args.body.into_boxed_str());
    let app = Router::new().fallback(get(move || async move {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            body,
        )
    }));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(args.listen).await?;
            println!("bench-hello listening on http://{}", listener.local_addr()?);
            axum::serve(listener, app).await
        })
}
