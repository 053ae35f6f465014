//! Inventory import: reads an agent's document (`tend-inventory`), matches each item to a
//! CI by its class's identification keys, and writes what the class's ownership and
//! source precedence allow, with the software installed and the connections seen.
//!
//! Each item is planned and applied in one write job, so a document imported twice
//! changes nothing the second time, and a dry run shows the same plan without writing.
//! Every item lands in the import log (`inventory_imports`). For a conflict or a document
//! that cannot be read, the log also keeps the document, so nothing an agent sent is lost.

mod apply;
mod matching;
mod plan;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tend_domain::Actor;
use tend_inventory::{Document, Format, Message, ReadError};
use tend_store::inventory::{self as log, NewImport};
use tend_workflow::cmdb::CmdbSchema;

pub use plan::{ItemPlan, Kept, NAME, class_for};

use crate::error::ApiError;

/// Result of importing (or dry-running) one document.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub format: Format,
    pub source: &'static str,
    pub device_id: Option<String>,
    pub partial: bool,
    pub dry_run: bool,
    pub items: Vec<ItemReport>,
}

impl ImportReport {
    /// Counts the items whose action is `action`.
    pub fn count(&self, action: &str) -> usize {
        self.items
            .iter()
            .filter(|item| item.plan.action == action)
            .count()
    }
}

/// One item of a report: the plan and, once applied, the CI and log entry.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    #[serde(flatten)]
    pub plan: ItemPlan,
    /// Id of the log entry; none in a dry run.
    pub import_id: Option<i64>,
    /// Outcome of the class's CI rules after the import, with the effects they could not
    /// apply. `None` when no rule did anything.
    pub rules: Option<crate::ci_rules::RuleReport>,
}

/// A document that could not be read, with the id of the log entry that keeps it.
#[derive(Debug)]
pub struct Unreadable {
    pub error: ReadError,
    pub import_id: Option<i64>,
}

/// Failure of an import as a whole.
#[derive(Debug)]
pub enum ImportError {
    /// The document is not an inventory that can be read.
    Unreadable(Unreadable),
    /// The agent sent its first contact (`PROLOG`), which carries no inventory.
    Prolog {
        device_id: Option<String>,
    },
    Api(ApiError),
}

impl From<ApiError> for ImportError {
    fn from(error: ApiError) -> Self {
        ImportError::Api(error)
    }
}

impl From<tend_store::Error> for ImportError {
    fn from(error: tend_store::Error) -> Self {
        ImportError::Api(crate::cmdb::store_error(error))
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Api(error) => error,
            ImportError::Prolog { .. } => ApiError::bad_request(
                "no_inventory",
                "the document is an agent's first contact (PROLOG) and carries no inventory: send the inventory itself",
                None,
            ),
            ImportError::Unreadable(unreadable) => {
                let kept = unreadable
                    .import_id
                    .map(|id| format!(" (kept as import {id})"))
                    .unwrap_or_default();
                ApiError::bad_request(
                    "invalid_inventory",
                    format!("{}{kept}", unreadable.error),
                    None,
                )
            }
        }
    }
}

/// Imports `bytes` as `actor`, or with `dry_run` only plans it, then runs the CI rules of
/// every CI it created or changed. `max_bytes` bounds the document once decompressed.
pub async fn import(
    commands: &crate::Commands,
    actor: &Actor,
    bytes: &[u8],
    max_bytes: usize,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    let store = &commands.store;
    let schema = commands.engine.definitions().cmdb.clone();
    let loaded = commands.engine.current();
    let rules = loaded.rules.as_ref();
    let sha256 = hex::encode(Sha256::digest(bytes));
    let document = match tend_inventory::read(bytes, max_bytes) {
        Ok(Message::Inventory(document)) => document,
        Ok(Message::Prolog { device_id }) => return Err(ImportError::Prolog { device_id }),
        Err(error) => {
            let import_id = if dry_run {
                None
            } else {
                Some(keep_unreadable(store, actor, &error, &sha256, bytes).await?)
            };
            return Err(ImportError::Unreadable(Unreadable { error, import_id }));
        }
    };
    let mut report = import_document(
        store,
        schema.clone(),
        actor,
        &document,
        bytes,
        &sha256,
        dry_run,
    )
    .await?;
    // The class's CI rules run after each CI the import created or changed, and the open
    // records that named a renamed CI follow its new name.
    if !dry_run {
        for item in &mut report.items {
            if let (Some(Value::String(before)), Some(Value::String(after))) = (
                item.plan
                    .changes
                    .get(plan::NAME)
                    .and_then(|change| change.get("before")),
                item.plan
                    .changes
                    .get(plan::NAME)
                    .and_then(|change| change.get("after")),
            ) {
                crate::record_cmdb::follow_rename(commands, before, after).await;
            }
            if let ("create" | "update", Some(id)) = (item.plan.action, item.plan.ci_id) {
                let ran = crate::ci_rules::run(store, schema.clone(), rules, id).await?;
                let did_anything =
                    !(ran.set.is_empty() && ran.related.is_empty() && ran.skipped.is_empty());
                item.rules = did_anything.then_some(ran);
            }
        }
    }
    Ok(report)
}

/// Imports again the document that import log entry `id` kept (a conflict or a rejected
/// document), as `actor`, once the CMDB or the definitions are corrected. The new import
/// adds its own log entries; entry `id` stays as it is.
pub async fn import_again(
    commands: &crate::Commands,
    actor: &Actor,
    id: i64,
) -> Result<ImportReport, ApiError> {
    let store = &commands.store;
    let (_, document) =
        log::import_document(store.db(), id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "inventory import",
                key: id.to_string(),
            })?;
    let Some(document) = document else {
        return Err(ApiError::bad_request(
            "nothing_kept",
            format!(
                "import {id} kept no document, since only conflicts and rejected documents are kept: send the document again"
            ),
            None,
        ));
    };
    let report = import(
        commands,
        actor,
        &document,
        tend_inventory::DEFAULT_MAX_BYTES,
        false,
    )
    .await?;
    // A document whose items all imported is no longer a conflict in the log.
    let applied = report
        .items
        .iter()
        .all(|item| !matches!(item.plan.action, "conflict" | "rejected"));
    if let (true, Some(by)) = (
        applied,
        report.items.first().and_then(|item| item.import_id),
    ) {
        store
            .write(move |tx| Box::pin(async move { log::mark_resolved(tx, id, by).await }))
            .await?;
    }
    Ok(report)
}

/// Logs a document that could not be read, keeping it.
async fn keep_unreadable(
    store: &tend_store::Store,
    actor: &Actor,
    error: &ReadError,
    sha256: &str,
    bytes: &[u8],
) -> Result<i64, tend_store::Error> {
    let entry = NewImport {
        source: "unknown".to_owned(),
        device_id: None,
        actor: actor.name.clone(),
        outcome: "rejected".to_owned(),
        ci_id: None,
        item_name: None,
        summary: serde_json::Value::Null,
        message: Some(error.to_string()),
        sha256: sha256.to_owned(),
        document: Some(bytes.to_vec()),
    };
    store
        .write(move |tx| {
            Box::pin(async move { log::insert_import(tx, entry, tend_store::now()).await })
        })
        .await
}

async fn import_document(
    store: &tend_store::Store,
    schema: Arc<CmdbSchema>,
    actor: &Actor,
    document: &Document,
    bytes: &[u8],
    sha256: &str,
    dry_run: bool,
) -> Result<ImportReport, ImportError> {
    let source = document.format.source();
    let mut items = Vec::with_capacity(document.items.len());
    for item in &document.items {
        let context = apply::ItemContext {
            schema: schema.clone(),
            source,
            device_id: document.device_id.clone(),
            partial: document.partial,
            actor: actor.name.clone(),
            sha256: sha256.to_owned(),
            document: bytes.to_vec(),
        };
        let report = if dry_run {
            let plan = plan::plan_item(store.db(), context.plan_input(item)).await?;
            ItemReport {
                plan,
                import_id: None,
                rules: None,
            }
        } else {
            apply::import_item(store, context, item.clone()).await?
        };
        items.push(report);
    }
    Ok(ImportReport {
        format: document.format,
        source,
        device_id: document.device_id.clone(),
        partial: document.partial,
        dry_run,
        items,
    })
}
