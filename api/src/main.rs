use std::sync::Arc;

use api::clock::SystemClock;
use api::config::Config;
use clap::Parser;

/// mimalloc: the server's many threads (HTTP workers, readers, the writer) allocate
/// concurrently; glibc's allocator spent a tenth of the CPU in its locks under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    api::telemetry::init(config.log_format);
    match api::server::build(&config, Arc::new(SystemClock)) {
        Ok((server, addr)) => {
            tracing::info!(%addr, backend = ?api::db::Backend::of_url(&config.database_url), "hep-server listening");
            // actix-web stops gracefully on SIGTERM and SIGINT: it stops accepting,
            // finishes in-flight requests (up to the shutdown timeout), then returns.
            match server.await {
                Ok(()) => {
                    tracing::info!("hep-server stopped");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "server error");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "hep-server could not start");
            std::process::ExitCode::FAILURE
        }
    }
}
