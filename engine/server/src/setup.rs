//! Shared start-up steps: logging, loading definitions, opening the store.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tend_api::{Commands, Engine, LoadFailure};
use tend_scripting::RuleHost;
use tend_store::Store;
use tend_workflow::{DefinitionSet, LoadError};
use tracing_subscriber::EnvFilter;

use crate::cli::Command;

/// Sends log messages to standard error, with colours only when standard error is a
/// terminal (and `NO_COLOR` is unset), so that redirected logs carry no escape codes.
pub fn init_tracing(command: &Command, verbose: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(command, verbose)));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

/// Returns the log filter used when `RUST_LOG` is unset. The server logs its starts and
/// stops at info. The other commands print their result on standard output, so by default
/// they log only warnings and errors.
fn default_filter(command: &Command, verbose: u8) -> &'static str {
    match (verbose, command) {
        (0, Command::Serve(_)) => "info,sqlx=warn,sea_orm=warn",
        // The report lists every failed rule, so the host's warning would repeat it.
        (0, Command::TestRules(_) | Command::Simulate(_) | Command::Replay(_)) => {
            "warn,tend_scripting::host=error"
        }
        (0, _) => "warn",
        (1, _) => "debug,sqlx=warn,sea_orm=warn,hyper=info",
        _ => "trace",
    }
}

/// Loads and validates the definitions under `dir`, with the rule host that checks and
/// later runs their rules.
pub fn load_definitions(dir: &Path) -> anyhow::Result<(DefinitionSet, Arc<RuleHost>)> {
    let host = Arc::new(RuleHost::new(dir));
    let set = tend_workflow::load_dir(dir, host.as_ref()).map_err(|error| {
        anyhow::anyhow!(
            "{error}the definitions in {} were not loaded",
            dir.display()
        )
    })?;
    Ok((set, host))
}

pub async fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::connect(url)
        .await
        .with_context(|| format!("failed to open the store at {}", redact(url)))
}

/// Loads the definitions under `dir` into an engine over `store`, storing their files as a
/// definition version, so that records keep deciding against them after the files change.
pub async fn open_engine(store: Store, dir: &Path) -> anyhow::Result<Engine> {
    Engine::open(store, dir)
        .await
        .map_err(|failure| match failure {
            LoadFailure::Invalid(diagnostics) => anyhow::anyhow!(
                "{}the definitions in {} were not loaded",
                LoadError { diagnostics },
                dir.display()
            ),
            LoadFailure::Failed(message) => anyhow::anyhow!(
                "{message}; the definitions in {} were not loaded",
                dir.display()
            ),
        })
}

/// Wires definitions, rules and store into the command path every channel uses.
pub async fn commands(
    store: &crate::cli::StoreArgs,
    definitions: &crate::cli::DefinitionArgs,
) -> anyhow::Result<Commands> {
    let store = open_store(&store.url()).await?;
    let engine = open_engine(store.clone(), &definitions.definitions).await?;
    Ok(Commands::new(store, Arc::new(engine)))
}

/// Hides the password of a database URL in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
