//! `warrenmq-server`: starts one node from flags, environment and config file.

use clap::Parser;
use warrenmq::config::{Args, Config};
use warrenmq::node::Node;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARRENMQ_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warrenmq-server: {e}");
            std::process::exit(2);
        }
    };
    let node = match Node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warrenmq-server: {e}");
            std::process::exit(1);
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    node.shutdown().await;
}
