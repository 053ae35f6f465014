//! Shared start-up steps: logging, loading definitions, opening the store.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tend_api::{Commands, Engine};
use tend_scripting::RuleHost;
use tend_store::Store;
use tend_workflow::DefinitionSet;
use tracing_subscriber::EnvFilter;

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info,sqlx=warn,sea_orm=warn",
        1 => "debug,sqlx=warn,sea_orm=warn,hyper=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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

/// Wires definitions, rules and store into the command path every channel uses.
pub async fn commands(
    store: &crate::cli::StoreArgs,
    definitions: &crate::cli::DefinitionArgs,
) -> anyhow::Result<Commands> {
    let (set, host) = load_definitions(&definitions.definitions)?;
    let store = open_store(&store.url()).await?;
    Ok(Commands::new(store, Arc::new(Engine::new(set, host))))
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
