//! Applying an item's plan: the CI, its software and connections, what the source
//! reported, the sighting and the log entry, in one write job.

use std::sync::Arc;

use serde_json::{Map, Value};
use tend_inventory::{Item, Software};
use tend_store::cmdb::{self as store, ChangeSource, CiChange, NewCi};
use tend_store::inventory::{self as log, NewImport};
use tend_workflow::cmdb::CmdbSchema;

use super::ItemReport;
use super::plan::{self, ItemPlan, PackageRef, PlanInput};

/// Context shared by every item of a document.
#[derive(Clone)]
pub struct ItemContext {
    pub schema: Arc<CmdbSchema>,
    pub source: &'static str,
    pub device_id: Option<String>,
    pub partial: bool,
    pub actor: String,
    pub sha256: String,
    pub document: Vec<u8>,
}

impl ItemContext {
    pub fn plan_input<'a>(&'a self, item: &'a Item) -> PlanInput<'a> {
        PlanInput {
            schema: &self.schema,
            source: self.source,
            device_id: self.device_id.as_deref(),
            partial: self.partial,
            item,
        }
    }

    fn log_entry(&self, plan: &ItemPlan, ci_id: Option<i64>) -> NewImport {
        let outcome = match plan.action {
            "create" => "created",
            "update" => "updated",
            other => other,
        };
        let refused = matches!(plan.action, "conflict" | "rejected");
        NewImport {
            source: self.source.to_owned(),
            device_id: self.device_id.clone(),
            actor: self.actor.clone(),
            outcome: outcome.to_owned(),
            ci_id,
            item_name: Some(plan.name.clone()),
            summary: serde_json::to_value(plan).unwrap_or(Value::Null),
            message: plan.message.clone(),
            sha256: self.sha256.clone(),
            document: refused.then(|| self.document.clone()),
        }
    }
}

/// Plans and applies one item in a write job; returns the plan with the log entry's id.
/// A write the store rejects (a unique value another CI took meanwhile) is logged as a
/// conflict with the document.
pub async fn import_item(
    store_handle: &tend_store::Store,
    context: ItemContext,
    item: Item,
) -> Result<ItemReport, tend_store::Error> {
    let job_context = context.clone();
    let job_item = item.clone();
    let result = store_handle
        .write(move |tx| {
            Box::pin(async move {
                let mut plan = plan::plan_item(tx, job_context.plan_input(&job_item)).await?;
                let ci_id = apply_plan(tx, &job_context, &mut plan).await?;
                let at = tend_store::now();
                if let Some(ci_id) = ci_id {
                    log::save_discovered(
                        tx,
                        ci_id,
                        job_context.source,
                        &plan.reported,
                        !job_context.partial,
                        at,
                    )
                    .await?;
                    log::record_sighting(
                        tx,
                        ci_id,
                        job_context.source,
                        job_context.device_id.as_deref(),
                        at,
                    )
                    .await?;
                }
                let id = log::insert_import(tx, job_context.log_entry(&plan, ci_id), at).await?;
                Ok(ItemReport {
                    plan,
                    import_id: Some(id),
                    rules: None,
                })
            })
        })
        .await;
    match result {
        Ok(report) => Ok(report),
        Err(
            error @ (tend_store::Error::AttributeTaken { .. }
            | tend_store::Error::Invalid(_)
            | tend_store::Error::Duplicate { .. }),
        ) => {
            let mut plan = plan::plan_item(store_handle.db(), context.plan_input(&item)).await?;
            plan.action = "conflict";
            plan.message = Some(format!(
                "{error}: the import was not applied; correct the CMDB and import the document again"
            ));
            let entry = context.log_entry(&plan, plan.ci_id);
            let id = store_handle
                .write(move |tx| {
                    Box::pin(async move { log::insert_import(tx, entry, tend_store::now()).await })
                })
                .await?;
            Ok(ItemReport {
                plan,
                import_id: Some(id),
                rules: None,
            })
        }
        Err(error) => Err(error),
    }
}

/// Writes a plan; returns the id of the CI it created or updated, none for a conflict
/// or a rejected item.
async fn apply_plan(
    tx: &tend_store::Transaction,
    context: &ItemContext,
    plan: &mut ItemPlan,
) -> Result<Option<i64>, tend_store::Error> {
    let schema = &context.schema;
    let actor = context.actor.as_str();
    let Some(class) = schema.class(&plan.class) else {
        return Ok(None);
    };
    let ci_id = match plan.action {
        "conflict" | "rejected" => return Ok(None),
        "create" => {
            let new = NewCi {
                class: class.name.clone(),
                name: plan.name.clone(),
                status: "active".to_owned(),
                keys: crate::cmdb::keys_of(class, &plan.attributes),
                attributes: plan.attributes.clone(),
            };
            let ci = store::insert_ci(tx, new, actor, ChangeSource::Import).await?;
            plan.ci_id = Some(ci.id);
            ci.id
        }
        _ => {
            let Some(id) = plan.ci_id else {
                return Ok(None);
            };
            if !plan.changes.is_empty() {
                apply_changes(tx, context, plan, id).await?;
            }
            id
        }
    };

    let installed_on = schema.relationship_type(plan::INSTALLED_ON);
    for package in &plan.software.link {
        let package_id = match package {
            PackageRef::Existing(id) => *id,
            PackageRef::New(software) => create_package(tx, context, software).await?,
        };
        store::insert_relationship(
            tx,
            plan::INSTALLED_ON,
            package_id,
            ci_id,
            installed_on.is_some_and(|kind| kind.containment),
            actor,
            ChangeSource::Import,
        )
        .await?;
    }
    for relationship in &plan.software.unlink {
        store::retire_relationship(tx, *relationship, actor).await?;
    }
    let connected_to = schema.relationship_type(plan::CONNECTED_TO);
    for other in &plan.connections.link {
        store::insert_relationship(
            tx,
            plan::CONNECTED_TO,
            *other,
            ci_id,
            connected_to.is_some_and(|kind| kind.containment),
            actor,
            ChangeSource::Import,
        )
        .await?;
    }
    for relationship in &plan.connections.unlink {
        store::retire_relationship(tx, *relationship, actor).await?;
    }
    Ok(Some(ci_id))
}

/// Writes the attribute and name changes of a plan as one new version of CI `id`.
async fn apply_changes(
    tx: &tend_store::Transaction,
    context: &ItemContext,
    plan: &ItemPlan,
    id: i64,
) -> Result<(), tend_store::Error> {
    let Some(class) = context.schema.class(&plan.class) else {
        return Ok(());
    };
    let stored = store::load_ci(tx, id)
        .await?
        .ok_or(tend_store::Error::NotFound {
            what: "CI",
            key: id.to_string(),
        })?;
    let mut attributes = Map::new();
    let mut name = None;
    for (attribute, change) in &plan.changes {
        let after = change.get("after").cloned().unwrap_or(Value::Null);
        if attribute == plan::NAME {
            name = after.as_str().map(str::to_owned);
        } else {
            attributes.insert(attribute.clone(), after);
        }
    }
    let mut after = stored.attributes.clone();
    for (attribute, value) in &attributes {
        after.insert(attribute.clone(), value.clone());
    }
    let change = CiChange {
        name,
        status: None,
        keys: crate::cmdb::keys_of(class, &after),
        attributes,
    };
    store::update_ci(tx, id, change, None, &context.actor, ChangeSource::Import).await?;
    Ok(())
}

/// Creates the software package CI of `software`; returns its id.
async fn create_package(
    tx: &tend_store::Transaction,
    context: &ItemContext,
    software: &Software,
) -> Result<i64, tend_store::Error> {
    let Some(class) = context.schema.class(plan::SOFTWARE_CLASS) else {
        return Err(tend_store::Error::Invalid(format!(
            "there is no CI class `{}` to record software in",
            plan::SOFTWARE_CLASS
        )));
    };
    let mut attributes = Map::new();
    attributes.insert(
        "package_name".to_owned(),
        Value::String(software.name.clone()),
    );
    if let Some(version) = &software.version {
        attributes.insert("version".to_owned(), Value::String(version.clone()));
    }
    if let Some(publisher) = &software.publisher {
        attributes.insert("publisher".to_owned(), Value::String(publisher.clone()));
    }
    attributes.retain(|attribute, _| class.attributes.contains_key(attribute));
    let name = match &software.version {
        Some(version) => format!("{} {version}", software.name),
        None => software.name.clone(),
    };
    let new = NewCi {
        class: class.name.clone(),
        name,
        status: "active".to_owned(),
        keys: crate::cmdb::keys_of(class, &attributes),
        attributes,
    };
    Ok(
        store::insert_ci(tx, new, &context.actor, ChangeSource::Import)
            .await?
            .id,
    )
}
