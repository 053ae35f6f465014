//! Reloading definitions without a restart: `tend reload`, which sends a request to a
//! running server's API, and the file watch of `tend serve`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use serde_json::Value;
use tend_api::Engine;

use crate::cli::ReloadArgs;

/// Quiet time after the last change before the watch reloads, so that an editor's save or
/// a checkout of many files leads to one reload.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Sends `POST /api/v1/definitions/reload` and prints the outcome. Exits with 1 when the
/// server rejected the set or could not reload.
pub async fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let url = format!(
        "{}/api/v1/definitions/reload",
        args.server.trim_end_matches('/')
    );
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.token)
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to reach the server at {}: check that `tend serve` runs there, or pass --server",
                args.server
            )
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).with_context(|| {
        format!("the server answered {status} with a body that is not JSON: {text}")
    })?;
    let message = body["message"].as_str().unwrap_or_default();
    match body["outcome"].as_str() {
        Some("loaded" | "unchanged") => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => {
            eprintln!("error: {message}");
            for diagnostic in body["diagnostics"].as_array().into_iter().flatten() {
                eprintln!(
                    "  {}:{}:{}: {}",
                    diagnostic["file"].as_str().unwrap_or_default(),
                    diagnostic["line"],
                    diagnostic["column"],
                    diagnostic["message"].as_str().unwrap_or_default()
                );
            }
            Ok(ExitCode::FAILURE)
        }
        None => {
            let error = body["error"]["message"].as_str().unwrap_or(&text);
            anyhow::bail!("the server rejected the reload request ({status}): {error}")
        }
    }
}

/// Watches `source/workflows` and `source/rules` and reloads the engine once the files
/// have been quiet for half a second. The watch lasts as long as the returned watcher.
///
/// NOTE: a watch follows the directories it started on. A `workflows/` or `rules/`
/// directory that is deleted and created again is no longer watched, but `tend reload`
/// still works then.
pub fn watch(engine: Arc<Engine>, source: &Path) -> anyhow::Result<RecommendedWatcher> {
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if is_edit(&event) => {
                // The receiver is gone only when the server stops.
                let _ = sender.send(());
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "watching the definitions failed"),
        }
    })
    .context("failed to start watching the definitions; pass --no-watch and use `tend reload`")?;
    for part in ["workflows", "rules"] {
        let dir = source.join(part);
        if !dir.is_dir() {
            continue;
        }
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .with_context(|| {
                format!(
                    "failed to watch {}; pass --no-watch and use `tend reload`",
                    dir.display()
                )
            })?;
        tracing::info!(path = %dir.display(), "watching the definitions for changes");
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            loop {
                match tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if let Err(error) = engine.reload("watch").await {
                tracing::error!(%error, "reloading the definitions after a change failed");
            }
        }
    });
    Ok(watcher)
}

/// Checks whether `event` changed a file's content or the set of files, leaving out reads
/// (a reload reads every file), metadata changes, and hidden or backup files of editors.
fn is_edit(event: &notify::Event) -> bool {
    let changes_content = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(kind) => !matches!(kind, ModifyKind::Metadata(_)),
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    };
    changes_content
        && event.paths.iter().any(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| !name.starts_with('.') && !name.ends_with('~'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(path.into())
    }

    #[test]
    fn edits_are_content_changes_of_visible_files() {
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(is_edit(&event(write, "/d/workflows/incident.yaml")));
        assert!(is_edit(&event(
            EventKind::Create(CreateKind::File),
            "/d/rules/x.rhai"
        )));
        assert!(!is_edit(&event(write, "/d/workflows/.incident.yaml.swp")));
        assert!(!is_edit(&event(write, "/d/workflows/incident.yaml~")));
        assert!(!is_edit(&event(
            EventKind::Access(AccessKind::Any),
            "/d/workflows/incident.yaml"
        )));
        assert!(!is_edit(&event(
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            "/d/workflows/incident.yaml"
        )));
    }
}
