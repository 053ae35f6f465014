//! The CI page `/cmdb/cis/{id}`: the CI with its attributes, relationships both ways, the
//! open records that name it, what discovery reported, its history and what a failure of
//! it affects. With `?at=`, the CI and its relationships as they were at that time.
//!
//! Each section reads with one query. The CIs that relationships and attribute references
//! point to load together, and so do the CIs an impact analysis reaches.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_store::cmdb::{self as store, Ci, CiVersion, Relationship};
use tend_store::impact;
use tend_store::inventory::{Discovered, Sighting};
use tend_workflow::cmdb::{AttributeOwner, AttributeType, CmdbSchema, ResolvedClass};

use super::cmdb::{
    CiLink, attribute_label, ci_href, ci_link, class_label, require_staff, schema, type_text,
    value_text,
};
use super::display::{humanise, lowercase_first};
use super::forms::SelectOption;
use super::{Viewer, format_time};
use crate::AppState;
use crate::error::ApiError;

/// How many relationships away the impact section looks.
const IMPACT_DEPTH: u32 = crate::record_cmdb::RECORD_IMPACT_DEPTH;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CiQuery {
    /// The time to show the CI at: RFC 3339, `YYYY-MM-DDTHH:MM` (UTC) or a date, which
    /// means the end of that day in UTC.
    at: String,
}

/// A rejected relationship form (adding or removing one), shown again on the CI page with
/// what was entered.
pub(super) struct RelateProblem {
    pub error: ApiError,
    /// The chosen type as the form sends it, such as `out:runs_on`.
    pub kind: String,
    pub other: String,
}

#[derive(Debug, Serialize)]
struct ValuePart {
    text: String,
    href: Option<String>,
}

#[derive(Debug, Serialize)]
struct AttributeRow {
    label: String,
    name: String,
    type_text: String,
    /// "discovery" or "people"; empty for a value the class no longer declares.
    owner: String,
    parts: Vec<ValuePart>,
}

#[derive(Debug, Serialize)]
struct RelationshipRow {
    label: String,
    other: Option<CiLink>,
    other_id: i64,
    created: String,
    created_by: String,
    created_via: String,
    remove_action: Option<String>,
}

#[derive(Debug, Serialize)]
struct RelateForm {
    action: String,
    types: Vec<SelectOption>,
    other: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecordRow {
    number: String,
    href: String,
    title: String,
    process: String,
    state: String,
}

#[derive(Debug, Serialize)]
struct SightingRow {
    source: String,
    device_id: String,
    first_seen: String,
    last_seen: String,
    last_seen_iso: String,
}

#[derive(Debug, Serialize)]
struct ReportedRow {
    source: String,
    attribute: String,
    value: String,
    ci_value: String,
    placeholder: bool,
    differs: bool,
    reported: String,
}

#[derive(Debug, Serialize)]
struct Discovery {
    sightings: Vec<SightingRow>,
    reported: Vec<ReportedRow>,
}

#[derive(Debug, Serialize)]
struct ChangeRow {
    label: String,
    before: String,
    after: String,
}

#[derive(Debug, Serialize)]
struct VersionRow {
    version: i64,
    at: String,
    at_iso: String,
    actor: String,
    source: String,
    changes: Vec<ChangeRow>,
    as_of_href: String,
}

#[derive(Debug, Serialize)]
struct ImpactRow {
    link: CiLink,
    depth: u32,
    /// The relationships that reach the CI, as a sentence per step.
    path: String,
}

#[derive(Debug, Serialize)]
struct Impact {
    depth: u32,
    services: Vec<ImpactRow>,
    affected: Vec<ImpactRow>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AtView {
    shown: String,
    current_href: String,
}

#[derive(Debug, Serialize)]
struct CiPage {
    id: i64,
    href: String,
    name: String,
    class_label: String,
    status: String,
    version: i64,
    created: String,
    updated: String,
    retired: Option<String>,
    at: Option<AtView>,
    at_value: String,
    edit_href: Option<String>,
    retire_href: Option<String>,
    attributes: Vec<AttributeRow>,
    relationships: Vec<RelationshipRow>,
    relate: Option<RelateForm>,
    records: Vec<RecordRow>,
    discovery: Option<Discovery>,
    history: Vec<VersionRow>,
    impact: Option<Impact>,
    error: Option<String>,
}

/// `GET /cmdb/cis/{id}`: the CI page; with `?at=`, the CI as it was then.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    query: Result<Query<CiQuery>, QueryRejection>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text(), None);
            return state.web.error(Some(&viewer), &error);
        }
    };
    let at = match query.at.trim() {
        "" => None,
        text => match parse_at(text) {
            Ok(at) => Some(at),
            Err(error) => return state.web.error(Some(&viewer), &error),
        },
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    render_ci(&state, &viewer, id, at, None).await
}

/// Reads a CI id from a path, as "not found" when it is no number.
pub(super) fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| ApiError::NotFound {
        what: "CI",
        key: text.to_owned(),
    })
}

/// Reads the time of `?at=`: RFC 3339 as the API takes it, the `YYYY-MM-DDTHH:MM` of a
/// browser's date-time input as UTC, or a date as the end of that day in UTC.
fn parse_at(text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
        return Ok(date.and_time(end).and_utc());
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M") {
        return Ok(local.and_utc());
    }
    crate::rest_cmdb::parse_time(text)
}

/// Builds the link that shows CI `id` as it was at `at`.
fn as_of_href(id: i64, at: DateTime<Utc>) -> String {
    let at = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let query = serde_urlencoded::to_string([("at", at.as_str())]).unwrap_or_default();
    format!("{}?{query}", ci_href(id))
}

/// Loads CI `id`, or a "not found" error that names it.
pub(super) async fn load(state: &AppState, id: i64) -> Result<Ci, ApiError> {
    store::load_ci(state.commands.store.db(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "CI",
            key: id.to_string(),
        })
}

/// Loads the CI that a path names by id, or a "not found" error that names it.
pub(super) async fn load_from_path(state: &AppState, id: &str) -> Result<Ci, ApiError> {
    load(state, parse_id(id)?).await
}

/// Renders the CI page, with a rejected relationship form when there is one.
pub(super) async fn render_ci(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    at: Option<DateTime<Utc>>,
    problem: Option<RelateProblem>,
) -> Response {
    if let Err(error) = require_staff(viewer) {
        return state.web.error(Some(viewer), &error);
    }
    match build_page(state, id, at, problem.as_ref()).await {
        Ok(page) => {
            let status = problem
                .as_ref()
                .map_or(StatusCode::OK, |problem| problem.error.status());
            let title = format!("CI {}", page.name);
            state
                .web
                .page(status, "cmdb_ci", Some(viewer), &title, &page)
        }
        Err(error) => state.web.error(Some(viewer), &error),
    }
}

async fn build_page(
    state: &AppState,
    id: i64,
    at: Option<DateTime<Utc>>,
    problem: Option<&RelateProblem>,
) -> Result<CiPage, ApiError> {
    let schema = schema(state);
    let db = state.commands.store.db();
    let current = load(state, id).await?;
    let history = store::ci_versions(db, id).await?;
    let (ci, relationships) = match at {
        Some(at) => {
            let past =
                store::ci_as_of(&current, &history, at).ok_or_else(|| ApiError::NotFound {
                    what: "CI",
                    key: format!("{id} at {}", format_time(at)),
                })?;
            (past, store::relationships_at(db, id, at).await?)
        }
        None => (current.clone(), store::relationships_of(db, id).await?),
    };
    let class = schema.class(&ci.class);

    // The CIs at the other end of the relationships and those the attributes name.
    let mut others: BTreeSet<i64> = relationships
        .iter()
        .map(|relationship| other_end(relationship, id))
        .collect();
    others.extend(referenced_ids(class, &ci));
    let others: Vec<i64> = others.into_iter().collect();
    let related: BTreeMap<i64, Ci> = store::load_cis(db, &others)
        .await?
        .into_iter()
        .map(|ci| (ci.id, ci))
        .collect();

    // Editing, relating and what is true now only make sense for the current CI.
    let live = at.is_none() && current.retired_at.is_none();
    let records = if at.is_none() {
        let names = vec![id.to_string(), current.name.clone()];
        store::open_records_naming(db, &names, crate::rest_cmdb::RECORDS_PER_CI).await?
    } else {
        Vec::new()
    };
    let discovery = if at.is_none() {
        let sightings = tend_store::inventory::sightings_of(db, id).await?;
        let reported = tend_store::inventory::discovered_of(db, id).await?;
        Some(discovery_view(class, &ci, &sightings, &reported))
    } else {
        None
    };
    let impact = if at.is_none() {
        Some(impact_view(state, &schema, &ci).await?)
    } else {
        None
    };
    let definitions = state.commands.engine.definitions();
    Ok(CiPage {
        id,
        href: ci_href(id),
        name: ci.name.clone(),
        class_label: class_label(&schema, &ci.class),
        status: humanise(&ci.status),
        version: ci.version,
        created: format_time(ci.created_at),
        updated: format_time(ci.updated_at),
        retired: ci.retired_at.map(format_time),
        at: at.map(|at| AtView {
            shown: format_time(at),
            current_href: ci_href(id),
        }),
        at_value: at
            .map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        edit_href: live.then(|| format!("{}/edit", ci_href(id))),
        retire_href: live.then(|| format!("{}/retire", ci_href(id))),
        attributes: attribute_rows(class, &ci, &schema, &related),
        relationships: relationships
            .iter()
            .map(|relationship| relationship_row(&schema, id, relationship, &related, live))
            .collect(),
        relate: live.then(|| relate_form(&schema, &ci, problem)),
        records: records
            .into_iter()
            .map(|record| {
                let definition = definitions.get(&record.process);
                RecordRow {
                    href: format!("/records/{}", record.number),
                    process: definition
                        .map_or_else(|| humanise(&record.process), |d| d.title.clone()),
                    state: definition
                        .map_or(record.state.as_str(), |d| d.state_label(&record.state))
                        .to_owned(),
                    number: record.number,
                    title: record.title,
                }
            })
            .collect(),
        discovery,
        history: history
            .iter()
            .rev()
            .map(|version| version_row(class, id, version))
            .collect(),
        impact,
        error: problem
            .filter(|_| !live)
            .map(|problem| problem.error.public_message()),
    })
}

fn other_end(relationship: &Relationship, id: i64) -> i64 {
    if relationship.source == id {
        relationship.target
    } else {
        relationship.source
    }
}

/// Lists the ids that the CI's reference attributes (type `ci`, alone or in a list) hold.
fn referenced_ids(class: Option<&ResolvedClass>, ci: &Ci) -> Vec<i64> {
    let Some(class) = class else {
        return Vec::new();
    };
    class
        .attributes
        .iter()
        .filter(|(_, attribute)| attribute.def.value_type() == AttributeType::Ci)
        .filter_map(|(name, _)| ci.attributes.get(name))
        .flat_map(|value| match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        })
        .filter_map(|value| value.as_i64())
        .collect()
}

/// Lists the class's attributes in class order with the CI's values, then any value the
/// class no longer declares. A CI reference becomes a link to that CI.
fn attribute_rows(
    class: Option<&ResolvedClass>,
    ci: &Ci,
    schema: &CmdbSchema,
    related: &BTreeMap<i64, Ci>,
) -> Vec<AttributeRow> {
    let mut rows = Vec::new();
    if let Some(class) = class {
        for (name, attribute) in &class.attributes {
            let def = &attribute.def;
            let value = ci.attributes.get(name).unwrap_or(&Value::Null);
            let parts = if def.value_type() == AttributeType::Ci {
                reference_parts(value, schema, related)
            } else {
                vec![ValuePart {
                    text: value_text(Some(def), value),
                    href: None,
                }]
            };
            rows.push(AttributeRow {
                label: attribute_label(name, Some(def)),
                name: name.clone(),
                type_text: type_text(def),
                owner: match def.owner {
                    AttributeOwner::Discovery => "discovery".to_owned(),
                    AttributeOwner::People => "people".to_owned(),
                },
                parts,
            });
        }
    }
    for (name, value) in &ci.attributes {
        if class.is_some_and(|class| class.attributes.contains_key(name)) {
            continue;
        }
        rows.push(AttributeRow {
            label: humanise(name),
            name: name.clone(),
            type_text: "not declared by the class".to_owned(),
            owner: String::new(),
            parts: vec![ValuePart {
                text: value_text(None, value),
                href: None,
            }],
        });
    }
    rows
}

fn reference_parts(
    value: &Value,
    schema: &CmdbSchema,
    related: &BTreeMap<i64, Ci>,
) -> Vec<ValuePart> {
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    if items.is_empty() {
        return vec![ValuePart {
            text: "(empty)".to_owned(),
            href: None,
        }];
    }
    items
        .iter()
        .map(|item| match item.as_i64().and_then(|id| related.get(&id)) {
            Some(ci) => ValuePart {
                text: format!("{} ({})", ci.name, class_label(schema, &ci.class)),
                href: Some(ci_href(ci.id)),
            },
            None => ValuePart {
                text: format!("{} (not found)", value_text(None, item)),
                href: None,
            },
        })
        .collect()
}

fn relationship_row(
    schema: &CmdbSchema,
    id: i64,
    relationship: &Relationship,
    related: &BTreeMap<i64, Ci>,
    live: bool,
) -> RelationshipRow {
    let outgoing = relationship.source == id;
    let other = other_end(relationship, id);
    let label = match schema.relationship_type(&relationship.kind) {
        Some(kind) if outgoing => kind.label.clone(),
        Some(kind) => kind.inverse_label.clone(),
        None => humanise(&relationship.kind),
    };
    RelationshipRow {
        label,
        other: related.get(&other).map(|ci| ci_link(schema, ci)),
        other_id: other,
        created: format_time(relationship.created_at),
        created_by: relationship.created_by.clone(),
        created_via: relationship.created_via.clone(),
        remove_action: live
            .then(|| format!("{}/relationships/{}/remove", ci_href(id), relationship.id)),
    }
}

/// Builds the form that relates the CI to another: one choice per relationship type and
/// end that the CI's class allows, read from this CI. `out:TYPE` makes the CI the source
/// and `in:TYPE` the target.
fn relate_form(schema: &CmdbSchema, ci: &Ci, problem: Option<&RelateProblem>) -> RelateForm {
    let chosen = problem.map_or("", |problem| problem.kind.as_str());
    let mut types = vec![SelectOption {
        value: String::new(),
        label: "Choose a relationship".to_owned(),
        selected: chosen.is_empty(),
    }];
    for (name, kind) in &schema.relationship_types {
        // A type with the same label at both ends names the end this CI takes.
        let same = kind.label == kind.inverse_label;
        let ends = [
            (
                schema.allows_source(kind, &ci.class),
                format!("out:{name}"),
                &kind.label,
                " (this CI as source)",
            ),
            (
                schema.allows_target(kind, &ci.class),
                format!("in:{name}"),
                &kind.inverse_label,
                " (this CI as target)",
            ),
        ];
        for (allowed, value, label, end) in ends {
            if !allowed {
                continue;
            }
            types.push(SelectOption {
                selected: value == chosen,
                label: if same {
                    format!("{label}{end}")
                } else {
                    label.clone()
                },
                value,
            });
        }
    }
    RelateForm {
        action: format!("{}/relationships", ci_href(ci.id)),
        types,
        other: problem.map_or_else(String::new, |problem| problem.other.clone()),
        error: problem.map(|problem| problem.error.public_message()),
    }
}

fn discovery_view(
    class: Option<&ResolvedClass>,
    ci: &Ci,
    sightings: &[Sighting],
    reported: &[Discovered],
) -> Discovery {
    let def = |attribute: &str| {
        class
            .and_then(|class| class.attributes.get(attribute))
            .map(|resolved| &resolved.def)
    };
    Discovery {
        sightings: sightings
            .iter()
            .map(|sighting| SightingRow {
                source: sighting.source.clone(),
                device_id: sighting.device_id.clone().unwrap_or_default(),
                first_seen: format_time(sighting.first_seen_at),
                last_seen: format_time(sighting.last_seen_at),
                last_seen_iso: sighting.last_seen_at.to_rfc3339(),
            })
            .collect(),
        reported: reported
            .iter()
            .map(|entry| {
                let current = if entry.attribute == crate::inventory::NAME {
                    Value::String(ci.name.clone())
                } else {
                    ci.attributes
                        .get(&entry.attribute)
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                let differs =
                    !entry.placeholder && !crate::cmdb_audit::same_value(&current, &entry.value);
                ReportedRow {
                    source: entry.source.clone(),
                    attribute: attribute_label(&entry.attribute, def(&entry.attribute)),
                    value: value_text(def(&entry.attribute), &entry.value),
                    ci_value: value_text(def(&entry.attribute), &current),
                    placeholder: entry.placeholder,
                    differs,
                    reported: format_time(entry.reported_at),
                }
            })
            .collect(),
    }
}

fn version_row(class: Option<&ResolvedClass>, id: i64, version: &CiVersion) -> VersionRow {
    let changes = version
        .changes
        .iter()
        .map(|(attribute, change)| {
            let def = class
                .and_then(|class| class.attributes.get(attribute))
                .map(|resolved| &resolved.def);
            let side = |key: &str| {
                let value = change.get(key).unwrap_or(&Value::Null);
                value_text(def, value)
            };
            ChangeRow {
                label: attribute_label(attribute, def),
                before: side("before"),
                after: side("after"),
            }
        })
        .collect();
    VersionRow {
        version: version.version,
        at: format_time(version.at),
        at_iso: version.at.to_rfc3339(),
        actor: version.actor.clone(),
        source: version.source.clone(),
        changes,
        as_of_href: as_of_href(id, version.at),
    }
}

/// Walks down from the CI to [`IMPACT_DEPTH`] as `GET /api/v1/cis/{id}/impact` does, and
/// lists the business services it reaches apart.
async fn impact_view(state: &AppState, schema: &CmdbSchema, ci: &Ci) -> Result<Impact, ApiError> {
    let db = state.commands.store.db();
    let walk = crate::record_cmdb::impact_walk(schema, true);
    let result = impact::walk(db, &[ci.id], &walk, IMPACT_DEPTH).await?;
    let reached: Vec<i64> = result.reached.iter().map(|hit| hit.ci).collect();
    let mut names: BTreeMap<i64, Ci> = store::load_cis(db, &reached)
        .await?
        .into_iter()
        .map(|found| (found.id, found))
        .collect();
    names.insert(ci.id, ci.clone());
    let name_of = |id: i64| {
        names
            .get(&id)
            .map_or_else(|| format!("CI {id}"), |found| found.name.clone())
    };

    let mut services = Vec::new();
    let mut affected = Vec::new();
    for hit in &result.reached {
        let Some(found) = names.get(&hit.ci) else {
            continue;
        };
        let steps: Vec<String> = hit
            .path
            .iter()
            .map(|step| {
                // A step reads from the CI it leaves: the type's label when that CI is
                // the relationship's source.
                let walks_to_target = walk.source_to_target.contains(&step.kind);
                let label = match schema.relationship_type(&step.kind) {
                    Some(kind) if walks_to_target => kind.label.clone(),
                    Some(kind) => kind.inverse_label.clone(),
                    None => humanise(&step.kind),
                };
                format!(
                    "{} {} {}",
                    name_of(step.from),
                    lowercase_first(&label),
                    name_of(step.to)
                )
            })
            .collect();
        let row = ImpactRow {
            link: ci_link(schema, found),
            depth: hit.depth,
            path: steps.join(" · "),
        };
        let service = schema
            .class(&found.class)
            .is_some_and(|class| class.is_a("business_service"));
        if service {
            services.push(row);
        } else {
            affected.push(row);
        }
    }
    let warnings = result
        .cycles
        .iter()
        .map(|cycle| {
            let chain: Vec<String> = cycle.iter().map(|id| name_of(*id)).collect();
            format!(
                "The impact-carrying relationships form a cycle ({}). Each CI is listed once, but a cycle is usually a modelling error.",
                chain.join(" → ")
            )
        })
        .collect();
    Ok(Impact {
        depth: IMPACT_DEPTH,
        services,
        affected,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_dates_and_times() {
        assert_eq!(
            parse_at("2026-03-01").unwrap().to_rfc3339(),
            "2026-03-01T23:59:59+00:00"
        );
        assert_eq!(
            parse_at("2026-03-01T08:30").unwrap().to_rfc3339(),
            "2026-03-01T08:30:00+00:00"
        );
        assert_eq!(
            parse_at("2026-03-01T08:30:00+02:00").unwrap().to_rfc3339(),
            "2026-03-01T06:30:00+00:00"
        );
        assert!(parse_at("yesterday").is_err());
    }

    #[test]
    fn as_of_link_encodes_the_time() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T08:30:00.25Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            as_of_href(7, at),
            "/cmdb/cis/7?at=2026-03-01T08%3A30%3A00.250Z"
        );
    }
}
