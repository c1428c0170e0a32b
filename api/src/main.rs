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
    if let Some(command) = &config.command {
        return run_command(&config, command);
    }
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

/// Runs a command instead of serving; what it prints goes to stdout, problems to stderr.
fn run_command(config: &Config, command: &api::config::Command) -> std::process::ExitCode {
    match command {
        api::config::Command::DevToken {
            scope,
            patient,
            tenant,
            minutes,
            force,
        } => {
            let request = api::auth::tokens::DevToken {
                scope: scope.clone(),
                patient: patient.clone(),
                tenant: tenant.clone(),
                minutes: *minutes,
                force: *force,
            };
            let now = jiff::Timestamp::now().as_second();
            match api::auth::tokens::dev_token(&config.database_url, &request, now) {
                Ok(token) => {
                    println!("{token}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hep-server dev-token: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        api::config::Command::Backup { to } => {
            let started = std::time::Instant::now();
            match api::db::backup(&config.database_url, to) {
                Ok(copy) => {
                    println!(
                        "backed up to {} ({} bytes) in {:.1} s",
                        to.display(),
                        copy.bytes,
                        started.elapsed().as_secs_f64()
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hep-server backup: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        api::config::Command::Client {
            command:
                api::config::ClientCommand::Add {
                    tenant,
                    name,
                    scope,
                    jwks_file,
                    jwks_url,
                    public,
                    confidential,
                    redirect_uri,
                },
        } => {
            let jwks = match jwks_file.as_ref().map(std::fs::read_to_string).transpose() {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("hep-server client add: cannot read the JWKS file: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let registration = api::auth::clients::Registration {
                tenant: tenant.clone(),
                name: name.clone(),
                scope: scope.clone(),
                jwks,
                jwks_url: jwks_url.clone(),
                kind: match (public, confidential) {
                    (true, _) => "public",
                    (_, true) => "confidential",
                    _ => "backend",
                }
                .into(),
                redirect_uris: redirect_uri.clone(),
            };
            match api::auth::clients::register_in(&config.database_url, &registration) {
                Ok((client, secret)) => {
                    if let Some(s) = secret {
                        println!("client secret (shown once, keep it safe): {s}");
                    }
                    println!("{}", client.client_id);
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hep-server client add: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        api::config::Command::Client {
            command: api::config::ClientCommand::List { tenant },
        } => match api::auth::clients::list_in(&config.database_url, tenant) {
            Ok(list) => {
                for c in &list {
                    println!("{}", api::auth::clients::describe(c));
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hep-server client list: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        api::config::Command::Client {
            command:
                api::config::ClientCommand::Keys {
                    tenant,
                    client_id,
                    jwks_file,
                    jwks_url,
                },
        } => {
            let jwks = match jwks_file.as_ref().map(std::fs::read_to_string).transpose() {
                Ok(j) => j,
                Err(e) => {
                    eprintln!("hep-server client keys: cannot read the JWKS file: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let done = api::auth::clients::rotate_in(
                &config.database_url,
                tenant,
                client_id,
                jwks,
                jwks_url.clone(),
            );
            finish_command("client keys", done)
        }
        api::config::Command::Client {
            command: api::config::ClientCommand::Remove { tenant, client_id },
        } => finish_command(
            "client remove",
            api::auth::clients::remove_in(&config.database_url, tenant, client_id),
        ),
        api::config::Command::User {
            command:
                api::config::UserCommand::Add {
                    tenant,
                    practitioner,
                    username,
                    role,
                },
        } => {
            let Some(role) = api::auth::accounts::Role::parse(role) else {
                eprintln!("hep-server user add: the role is therapist or admin");
                return std::process::ExitCode::FAILURE;
            };
            match api::auth::accounts::add_staff_in(
                &config.database_url,
                tenant,
                practitioner,
                username,
                role,
            ) {
                Ok(setup) => {
                    println!("{}", api::auth::accounts::setup_message(username, &setup));
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hep-server user add: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        api::config::Command::User {
            command: api::config::UserCommand::List { tenant },
        } => match api::auth::accounts::list_in(&config.database_url, tenant) {
            Ok(list) => {
                for u in &list {
                    println!("{}", api::auth::accounts::describe(u));
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hep-server user list: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// The exit of a command that prints nothing when it succeeds.
fn finish_command(name: &str, done: Result<(), api::error::ApiError>) -> std::process::ExitCode {
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hep-server {name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
