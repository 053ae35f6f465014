//! Orders from the service catalog, and the fulfilment tasks of an order.

use serde::Serialize;
use serde_json::Value;
use tend_domain::{Actor, Command, Fields, JournalEvent, Record, Role};
use tend_workflow::catalog::{CatalogItem, TASK_LINK, TASK_PROCESS};
use tend_workflow::{Context, FieldType, Rejection};

use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;

/// Name of the system actor that opens fulfilment tasks.
pub const CATALOG_ACTOR: &str = "catalog";

/// A catalog item as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub name: String,
    pub title: String,
    pub description: String,
    pub category: Option<String>,
    pub process: String,
    pub needs_approval: bool,
    pub form: Vec<QuestionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionView {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub values: Vec<String>,
    pub required: bool,
    pub default: Option<Value>,
}

fn item_view(name: &str, item: &CatalogItem) -> ItemView {
    ItemView {
        name: name.to_owned(),
        title: item.title.clone(),
        description: item.description.clone(),
        category: item.category.clone(),
        process: item.process.clone(),
        needs_approval: !item.approvers.is_empty(),
        form: item
            .form
            .iter()
            .map(|(question, field)| QuestionView {
                name: question.clone(),
                label: field.label_or(question).to_owned(),
                kind: field.kind,
                values: field.values.clone(),
                required: field.required,
                default: field.default.clone(),
            })
            .collect(),
    }
}

impl Commands {
    /// Lists the catalog items `actor` may order, in file order.
    pub fn catalog(&self, actor: &Actor) -> Vec<ItemView> {
        let set = self.engine.definitions();
        set.catalog
            .iter()
            .filter(|(_, item)| item.orderable_by(actor, &set.groups))
            .filter(|(_, item)| {
                set.get(&item.process)
                    .is_some_and(|d| actor.may(&d.permissions.create))
            })
            .map(|(name, item)| item_view(name, item))
            .collect()
    }

    /// Orders catalog item `name` with the form's `answers`: checks who may order it, the
    /// answers and the item's entitlement rule, then opens a record of the item's process.
    pub async fn order(
        &self,
        actor: &Actor,
        name: &str,
        title: Option<&str>,
        answers: &Fields,
    ) -> Result<Record, ApiError> {
        let set = self.engine.definitions();
        let Some(item) = set.catalog.get(name) else {
            return Err(ApiError::NotFound {
                what: "catalog item",
                key: name.to_owned(),
            });
        };
        if !item.orderable_by(actor, &set.groups) {
            let mut who: Vec<String> = item.roles.iter().map(|r| r.to_string()).collect();
            who.extend(item.groups.iter().map(|g| format!("members of {g}")));
            return Err(ApiError::Rejected(Rejection::Forbidden {
                what: format!("ordering `{}` (open to {})", item.title, who.join(", ")),
                roles: item.roles.clone(),
            }));
        }
        let answers = item.answers(answers).map_err(|(question, message)| {
            ApiError::Rejected(Rejection::InvalidValue {
                field: format!("answers.{question}"),
                message,
            })
        })?;
        let definition = self.engine.definition(&item.process)?;
        // The item, the answers and the approvers come from the catalog, so they are
        // preset: a requester cannot set them through an order.
        let mut fields = Fields::new();
        fields.insert("catalog_item".into(), Value::String(name.to_owned()));
        fields.insert(
            "variables".into(),
            Value::String(item.answers_text(&answers)),
        );
        if !item.approvers.is_empty() {
            fields.insert("approvers".into(), Value::String(item.approvers.join(", ")));
        }
        let input = NewRecord {
            title: title
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .unwrap_or(&item.title)
                .to_owned(),
            description: item.description.clone(),
            fields: Fields::new(),
            idempotency_key: None,
            preset: fields,
        };
        if let Some(rule) = &item.entitlement {
            let rules = self.engine.rules();
            let command = Command::Create {
                title: input.title.clone(),
                description: input.description.clone(),
                fields: input.fields.clone(),
                preset: input.preset.clone(),
            };
            let context = Context {
                definition: &definition,
                version: &set.version,
                rules: rules.as_ref(),
                actor,
                now: chrono::Utc::now(),
                groups: &set.groups,
                links: &[],
                cmdb: None,
            };
            let mut candidate = tend_workflow::execute(&context, None, &command)?.record;
            // The rule reads the answers as fields too, without overriding real fields.
            for (question, value) in &answers {
                candidate
                    .fields
                    .entry(question.clone())
                    .or_insert_with(|| value.clone());
            }
            tend_workflow::check_entitlement(&context, rule, &candidate)?;
        }
        let (record, _) = self.create(actor, &item.process, input).await?;
        Ok(record)
    }

    /// Opens the fulfilment tasks of an order that entered its item's `fulfil_in` state,
    /// once: a request that already has tasks gets none again.
    pub(crate) async fn open_fulfilment_tasks(
        &self,
        record: &Record,
        events: &[JournalEvent],
    ) -> Result<(), ApiError> {
        let Some(item_name) = record.field_str("catalog_item") else {
            return Ok(());
        };
        let set = self.engine.definitions();
        let Some(item) = set.catalog.get(item_name) else {
            return Ok(());
        };
        let entered = events.iter().any(
            |event| matches!(event, JournalEvent::Transitioned { to, .. } if *to == item.fulfil_in),
        );
        if !entered || item.tasks.is_empty() {
            return Ok(());
        }
        let links = self.store.links_of(record.id).await?;
        if links
            .iter()
            .any(|link| link.link_type == TASK_LINK && link.process == TASK_PROCESS)
        {
            return Ok(());
        }
        let task_definition = self.engine.definition(TASK_PROCESS)?;
        let actor = Actor::new(CATALOG_ACTOR, vec![Role::Admin]);
        for template in &item.tasks {
            let mut fields = Fields::new();
            let mut set_if_declared = |field: &str, value: Option<&str>| {
                if let Some(value) = value
                    && task_definition.fields.contains_key(field)
                {
                    fields.insert(field.to_owned(), Value::String(value.to_owned()));
                }
            };
            set_if_declared("assignment_group", template.assignment_group.as_deref());
            set_if_declared("requester", record.field_str("requester"));
            let description = if template.description.is_empty() {
                format!("Fulfilment of {} ({}).", record.number, item.title)
            } else {
                template.description.clone()
            };
            let input = NewRecord {
                title: template.title.clone(),
                description,
                fields,
                idempotency_key: None,
                preset: Fields::new(),
            };
            let (task, _) = self.create(&actor, TASK_PROCESS, input).await?;
            self.link(&actor, &task.number, TASK_LINK, &record.number)
                .await?;
        }
        Ok(())
    }
}
