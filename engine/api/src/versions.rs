//! Definition versions on a running server.
//!
//! A definition set is identified by its content hash. [`Engine::open`] reads the files of
//! the definitions directory, writes them to a directory of its own (a temporary directory
//! per process), loads the set from there and stores the files in the `definition_versions`
//! table. Rules therefore run from an unchanging copy: an edit on disk takes effect only
//! when a reload accepts it. A record keeps the version it was created under. When a
//! command reaches a record of an older version, that version is read from the table,
//! written to its own directory, loaded and cached ([`Engine::version`]).
//!
//! [`Engine::reload`] loads the directory again. A set with errors is rejected and the
//! current one keeps serving; [`Engine::status`] returns the outcome of the last attempt
//! with its diagnostics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tend_scripting::RuleHost;
use tend_store::Store;
use tend_workflow::{
    Definition, DefinitionFiles, DefinitionSet, Diagnostic, Rejection, RuleRunner,
};

use crate::commands::Engine;
use crate::error::ApiError;

/// A loaded definition set with the rules that run under it.
#[derive(Clone)]
pub struct Loaded {
    pub set: Arc<DefinitionSet>,
    pub rules: Arc<dyn RuleRunner>,
}

impl Loaded {
    /// Returns the definition of `process` in this set.
    pub fn definition(&self, process: &str) -> Result<Arc<Definition>, ApiError> {
        self.set.get(process).cloned().ok_or_else(|| {
            ApiError::Rejected(Rejection::UnknownProcess {
                process: process.to_owned(),
                known: self
                    .set
                    .definitions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
    }
}

/// Result of a load or reload of the definitions directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// A new version is serving.
    Loaded,
    /// The files are those of the version already serving.
    Unchanged,
    /// The set has errors; the previous version keeps serving.
    Rejected,
    /// The set could not be read or stored; the previous version keeps serving.
    Failed,
}

/// The last load or reload, as `GET /api/v1/definitions` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub at: DateTime<Utc>,
    /// Cause of the attempt: `start`, `api` or `watch`.
    pub trigger: String,
    pub outcome: ReloadOutcome,
    /// Version serving after the attempt.
    pub version: String,
    /// Version that served before the attempt; `None` at start.
    pub previous_version: Option<String>,
    pub message: String,
    /// Every error of a rejected set, with file, line and column.
    pub diagnostics: Vec<DiagnosticView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticView {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl From<&Diagnostic> for DiagnosticView {
    fn from(diagnostic: &Diagnostic) -> DiagnosticView {
        DiagnosticView {
            file: diagnostic.file.display().to_string(),
            line: diagnostic.line,
            column: diagnostic.column,
            message: diagnostic.message.clone(),
        }
    }
}

/// Reason the definitions directory was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    #[error("{} error(s) in the definitions", .0.len())]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    Failed(String),
}

/// The definitions directory a server loads from, and the older versions it has loaded.
pub(crate) struct Versions {
    store: Store,
    source: PathBuf,
    /// Parent of one directory per materialised set; removed when the engine is dropped.
    workspace: tempfile::TempDir,
    next_dir: AtomicU64,
    /// Loaded older versions, and `None` for versions that the table does not contain.
    cache: tokio::sync::Mutex<HashMap<String, Option<Loaded>>>,
    status: RwLock<Option<ReloadStatus>>,
    /// Held during a reload, so that reloads from the API and the file watch do not overlap.
    reloading: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Loads the definitions under `source`, stores their files as a definition version
    /// unless `store` has that version already, and returns an engine that can reload
    /// `source` and decide records of older versions against their own definitions.
    pub async fn open(store: Store, source: &Path) -> Result<Engine, LoadFailure> {
        let workspace = tempfile::Builder::new()
            .prefix("tend-definitions-")
            .tempdir()
            .map_err(|error| {
                LoadFailure::Failed(format!(
                    "failed to create a temporary directory for definition versions: {error}; set TMPDIR to a writable directory"
                ))
            })?;
        let versions = Versions {
            store,
            source: source.to_path_buf(),
            workspace,
            next_dir: AtomicU64::new(0),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            status: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
        };
        let loaded = versions.load_source().await?;
        versions.set_status(ReloadStatus {
            at: Utc::now(),
            trigger: "start".to_owned(),
            outcome: ReloadOutcome::Loaded,
            version: loaded.set.version.clone(),
            previous_version: None,
            message: format!(
                "loaded version {} from {}",
                loaded.set.version,
                source.display()
            ),
            diagnostics: Vec::new(),
        });
        Ok(Engine {
            definitions: RwLock::new(loaded),
            versions: Some(versions),
        })
    }

    /// Returns the definition set of `version` with its rules: the current one, or an
    /// older one from the `definition_versions` table. When the table does not contain
    /// `version`, returns the current one. That happens for records written before versions
    /// were stored, and always for an engine made with [`Engine::new`].
    pub async fn version(&self, version: &str) -> Result<Loaded, ApiError> {
        let current = self.current();
        if current.set.version == version {
            return Ok(current);
        }
        let Some(versions) = &self.versions else {
            return Ok(current);
        };
        match versions.older(version).await? {
            Some(loaded) => Ok(loaded),
            None => Ok(current),
        }
    }

    /// Loads the definitions directory again and serves the new version when it is valid.
    /// A set with errors is rejected and the current one keeps serving. `trigger` names
    /// what asked for the reload (`api`, `watch`). Returns the outcome, which
    /// [`Engine::status`] returns from then on.
    pub async fn reload(&self, trigger: &str) -> Result<ReloadStatus, ApiError> {
        let Some(versions) = &self.versions else {
            return Err(ApiError::bad_request(
                "reload_unavailable",
                "this server has no definitions directory to reload from",
                None,
            ));
        };
        let _reloading = versions.reloading.lock().await;
        let previous = self.current();
        let previous_version = previous.set.version.clone();
        let result = versions.load_source().await;
        let mut status = ReloadStatus {
            at: Utc::now(),
            trigger: trigger.to_owned(),
            outcome: ReloadOutcome::Unchanged,
            version: previous_version.clone(),
            previous_version: Some(previous_version.clone()),
            message: String::new(),
            diagnostics: Vec::new(),
        };
        match result {
            Ok(loaded) if loaded.set.version == previous_version => {
                remove_directory(&loaded.set.root);
                status.message = format!(
                    "the definitions in {} are those of version {previous_version}, which is serving",
                    versions.source.display()
                );
                tracing::info!(definitions.version = %previous_version, trigger, "definitions unchanged");
            }
            Ok(loaded) => {
                let version = loaded.set.version.clone();
                versions
                    .cache
                    .lock()
                    .await
                    .insert(previous_version.clone(), Some(previous));
                *self
                    .definitions
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = loaded;
                status.outcome = ReloadOutcome::Loaded;
                status.version = version.clone();
                status.message = format!(
                    "loaded version {version} from {}; new records get it, and existing records keep their own version until `tend migrate-records` moves them",
                    versions.source.display()
                );
                tracing::info!(definitions.version = %version, definitions.previous = %previous_version, trigger, "definitions reloaded");
            }
            Err(LoadFailure::Invalid(diagnostics)) => {
                status.outcome = ReloadOutcome::Rejected;
                status.message = format!(
                    "rejected the definitions in {}: {} error(s); version {previous_version} keeps serving until they are fixed",
                    versions.source.display(),
                    diagnostics.len()
                );
                for diagnostic in &diagnostics {
                    tracing::error!(trigger, "definition error: {diagnostic}");
                }
                tracing::error!(definitions.version = %previous_version, trigger, "{}", status.message);
                status.diagnostics = diagnostics.iter().map(DiagnosticView::from).collect();
            }
            Err(LoadFailure::Failed(message)) => {
                status.outcome = ReloadOutcome::Failed;
                status.message = format!("{message}; version {previous_version} keeps serving");
                tracing::error!(definitions.version = %previous_version, trigger, "{}", status.message);
            }
        }
        versions.set_status(status.clone());
        Ok(status)
    }

    /// Returns the outcome of the last load or reload, or `None` for an engine made with
    /// [`Engine::new`].
    pub fn status(&self) -> Option<ReloadStatus> {
        let versions = self.versions.as_ref()?;
        versions
            .status
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Returns the definitions directory that reloads read, or `None` for an engine made
    /// with [`Engine::new`].
    pub fn source(&self) -> Option<&Path> {
        self.versions
            .as_ref()
            .map(|versions| versions.source.as_path())
    }
}

impl Versions {
    fn set_status(&self, status: ReloadStatus) {
        *self
            .status
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(status);
    }

    /// Reads the files of the definitions directory, loads them from a copy and stores
    /// them as a version. On errors, loads the directory itself again so that the
    /// diagnostics name the files there rather than the copy.
    async fn load_source(&self) -> Result<Loaded, LoadFailure> {
        let source = self.source.clone();
        let files = tokio::task::spawn_blocking(move || DefinitionFiles::read(&source))
            .await
            .map_err(|error| {
                LoadFailure::Failed(format!("reading the definitions failed: {error}"))
            })?
            .map_err(LoadFailure::Invalid)?;
        let dir = self.next_directory();
        let loaded = match self.materialise(files.clone(), dir.clone()).await? {
            Ok(loaded) => loaded,
            Err(_) => {
                remove_directory(&dir);
                let source = self.source.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let host = RuleHost::new(&source);
                    tend_workflow::load_dir(&source, &host).map(|_| ())
                })
                .await
                .map_err(|error| {
                    LoadFailure::Failed(format!("loading the definitions failed: {error}"))
                })?;
                return Err(match checked {
                    Err(error) => LoadFailure::Invalid(error.diagnostics),
                    Ok(()) => LoadFailure::Failed(format!(
                        "the files in {} changed while they were being loaded; reload again",
                        self.source.display()
                    )),
                });
            }
        };
        let version = loaded.set.version.clone();
        let inserted = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tend_store::save_definition_version(tx, &version, &files.files).await
                })
            })
            .await
            .map_err(|error| {
                LoadFailure::Failed(format!(
                    "failed to store definition version {}: {error}",
                    loaded.set.version
                ))
            })?;
        if inserted {
            tracing::info!(definitions.version = %loaded.set.version, "definition version stored");
        }
        Ok(loaded)
    }

    /// Returns an older version, loading it from the table on first use. `None` means that
    /// the table does not contain it.
    async fn older(&self, version: &str) -> Result<Option<Loaded>, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(version) {
            return Ok(cached.clone());
        }
        let Some(stored) = self.store.definition_version(version).await? else {
            tracing::warn!(
                definitions.version = version,
                "records of definition version {version} are decided against the current version, because no definition_versions row holds it; move them with `tend migrate-records`"
            );
            cache.insert(version.to_owned(), None);
            return Ok(None);
        };
        let files = DefinitionFiles {
            files: stored.files,
        };
        let loaded = self
            .materialise(files, self.next_directory())
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?
            .map_err(|error| {
                ApiError::Internal(format!(
                    "stored definition version {version} no longer loads: {error}"
                ))
            })?;
        if loaded.set.version != version {
            // NOTE: a change to how versions are hashed would land here. The set is still
            // made of the stored files, so it is used as they describe it.
            tracing::warn!(
                definitions.version = version,
                definitions.loaded = %loaded.set.version,
                "stored definition version loads with another content hash"
            );
        }
        tracing::info!(
            definitions.version = version,
            "older definition version loaded for its records"
        );
        cache.insert(version.to_owned(), Some(loaded.clone()));
        Ok(Some(loaded))
    }

    fn next_directory(&self) -> PathBuf {
        let number = self.next_dir.fetch_add(1, Ordering::Relaxed);
        self.workspace.path().join(format!("set-{number}"))
    }

    /// Writes `files` to `dir` and loads the set from there with a rule host rooted there.
    /// The outer error is an IO failure, the inner one the set's own errors.
    async fn materialise(
        &self,
        files: DefinitionFiles,
        dir: PathBuf,
    ) -> Result<Result<Loaded, tend_workflow::LoadError>, LoadFailure> {
        tokio::task::spawn_blocking(move || {
            files.write_to(&dir).map_err(|error| {
                LoadFailure::Failed(format!(
                    "failed to write the definitions to {}: {error}",
                    dir.display()
                ))
            })?;
            let host = Arc::new(RuleHost::new(&dir));
            Ok(
                tend_workflow::load_dir(&dir, host.as_ref()).map(|set| Loaded {
                    set: Arc::new(set),
                    rules: host,
                }),
            )
        })
        .await
        .map_err(|error| LoadFailure::Failed(format!("loading the definitions failed: {error}")))?
    }
}

fn remove_directory(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir) {
        tracing::debug!(%error, path = %dir.display(), "failed to remove a rejected definitions copy");
    }
}
