//! JSON shapes of records as the API returns them.

use serde_json::{Value, json};
use tend_domain::{Actor, JournalEntry, Record};
use tend_store::LinkView;
use tend_workflow::{Definition, DefinitionSet, available_transitions};

/// Lists the transitions `actor` may take now, as `{name, label, to}` objects.
pub fn transitions_json(definition: &Definition, record: &Record, actor: &Actor) -> Value {
    available_transitions(definition, record, actor)
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "label": t.label.as_deref().unwrap_or(&t.name),
                "to": t.to,
                "requires": t.requires,
                "comment_required": t.comment_required,
            })
        })
        .collect()
}

/// Builds a record with the parts every caller may see, plus `journal` for single reads.
pub fn record_json(
    definition: &Definition,
    record: &Record,
    actor: &Actor,
    journal: Option<&[JournalEntry]>,
) -> Value {
    let mut body = json!({
        "number": record.number,
        "process": record.process,
        "state": record.state,
        "state_label": definition.state_label(&record.state),
        "open": record.open,
        "title": record.title,
        "description": record.description,
        "fields": record.fields,
        "transitions": transitions_json(definition, record, actor),
        "recommendations": record.recommendations,
        "definition_version": record.definition_version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "revision": record.revision,
    });
    if let Some(journal) = journal {
        body["journal"] = serde_json::to_value(journal).unwrap_or(Value::Null);
    }
    body
}

/// Builds the short form of a record used in lists.
pub fn record_summary_json(definition: Option<&Definition>, record: &Record) -> Value {
    json!({
        "number": record.number,
        "process": record.process,
        "state": record.state,
        "state_label": definition.map(|d| d.state_label(&record.state).to_owned()).unwrap_or_else(|| record.state.clone()),
        "title": record.title,
        "priority": record.fields.get("priority"),
        "assignment_group": record.fields.get("assignment_group"),
        "assignee": record.fields.get("assignee"),
        "requester": record.fields.get("requester"),
        "category": record.fields.get("category"),
        "updated_at": record.updated_at,
    })
}

/// Builds the links of one record as `{type, label, direction, number, process, title,
/// state, state_label, actor, created_at}` objects. `label` is the link type's `label` on
/// the source and its `inverse_label` on the target. A type no longer defined shows its name.
pub fn links_json(definitions: &DefinitionSet, links: &[LinkView]) -> Value {
    links
        .iter()
        .map(|link| {
            let label = definitions
                .link_type(&link.link_type)
                .map_or(link.link_type.as_str(), |declared| {
                    declared.label_for(link.direction.is_outgoing())
                });
            let state_label = definitions
                .get(&link.process)
                .map_or(link.state.as_str(), |definition| {
                    definition.state_label(&link.state)
                });
            json!({
                "type": link.link_type,
                "label": label,
                "direction": link.direction.as_str(),
                "number": link.number,
                "process": link.process,
                "title": link.title,
                "state": link.state,
                "state_label": state_label,
                "actor": link.actor,
                "created_at": link.created_at,
            })
        })
        .collect()
}
