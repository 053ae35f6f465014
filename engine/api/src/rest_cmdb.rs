//! The CMDB part of the REST API: CIs, relationships, impact analysis and the schema.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tend_store::cmdb::{self as store, Ci, CiFilter, Relationship};
use tend_store::impact;
use tend_workflow::cmdb::CmdbSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::cmdb::{self, CiUpdate, require_staff};
use crate::error::ApiError;
use crate::rest::ApiJson;

/// Deepest impact analysis the API runs.
pub const MAX_IMPACT_DEPTH: u32 = 10;
/// Depth of an impact analysis that names none.
pub const DEFAULT_IMPACT_DEPTH: u32 = 5;
/// Most start CIs of one impact analysis.
pub const MAX_IMPACT_STARTS: usize = 100;
/// Open records listed on a CI.
pub(crate) const RECORDS_PER_CI: u64 = 50;

fn schema(state: &AppState) -> std::sync::Arc<CmdbSchema> {
    state.commands.engine.definitions().cmdb.clone()
}

fn query_error(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", rejection.body_text(), None)
}

/// `GET /ci-classes`: the classes with their inherited attributes and keys, the
/// relationship types, and the classes no impact-carrying relationship reaches.
pub async fn classes(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    Ok(Json(json!({
        "classes": schema.classes.values().collect::<Vec<_>>(),
        "relationship_types": schema.relationship_types,
        "classes_without_impact": schema.classes_without_impact(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCiBody {
    class: String,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// `POST /cis`: creates a CI; returns it with 201.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCiBody>,
) -> Result<Response, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    let ci = cmdb::create_ci(
        &state.commands.store,
        schema.clone(),
        &caller.actor,
        &body.class,
        &body.name,
        body.status.as_deref(),
        &body.attributes,
    )
    .await?;
    tracing::info!(ci.id = ci.id, ci.class = %ci.class, actor = %caller.actor.name, "CI created");
    let ci = after_rules(&state, &schema, ci).await?;
    let view = ci_view(&state, &schema, &ci, None).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Runs the class's CI rules on `ci` and returns it as they left it, with what they did
/// under `rules` when they did anything.
async fn after_rules(
    state: &AppState,
    schema: &std::sync::Arc<CmdbSchema>,
    ci: Ci,
) -> Result<Ci, ApiError> {
    let rules = state.commands.engine.current().rules.clone();
    let report =
        crate::ci_rules::run(&state.commands.store, schema.clone(), rules.as_ref(), ci.id).await?;
    if report.set.is_empty() && report.related.is_empty() {
        return Ok(ci);
    }
    load(state, ci.id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCiBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    attributes: Map<String, Value>,
    /// The version the client read; the update is rejected when the CI moved on.
    #[serde(default)]
    version: Option<i64>,
}

/// `PATCH /cis/{id}`: changes a CI as one new version.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UpdateCiBody>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    let update = CiUpdate {
        name: body.name,
        status: body.status,
        attributes: body.attributes,
        version: body.version,
    };
    let before = load(&state, id).await?.name;
    let ci = cmdb::update_ci(
        &state.commands.store,
        schema.clone(),
        &caller.actor,
        id,
        update,
    )
    .await?;
    crate::record_cmdb::follow_rename(&state.commands, &before, &ci.name).await;
    let ci = after_rules(&state, &schema, ci).await?;
    Ok(Json(ci_view(&state, &schema, &ci, None).await?))
}

/// `POST /cis/{id}/retire`: retires a CI and its relationships.
pub async fn retire(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    let (ci, relationships) = cmdb::retire_ci(&state.commands.store, &caller.actor, id).await?;
    tracing::info!(ci.id = id, relationships = relationships.len(), actor = %caller.actor.name, "CI retired");
    let mut view = ci_view(&state, &schema, &ci, None).await?;
    view["retired_relationships"] = json!(relationships.iter().map(|r| r.id).collect::<Vec<_>>());
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// RFC 3339 time: shows the CI as it was then.
    at: Option<String>,
}

/// `GET /cis/{id}`: a CI with its relationships both ways, its history and its open
/// records; with `?at=`, as it was at that time.
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let at = query.at.as_deref().map(parse_time).transpose()?;
    let schema = schema(&state);
    let ci = load(&state, id).await?;
    Ok(Json(ci_view(&state, &schema, &ci, at).await?))
}

/// Returns the CI that a record's `ci` field names, by id or by name, as a summary, or
/// `null` when the field is empty or names no single CI that is not retired.
pub async fn record_ci(state: &AppState, record: &tend_domain::Record) -> Result<Value, ApiError> {
    Ok(match configuration_item(state, record).await? {
        Some(ci) => ci_summary(&schema(state), &ci),
        None => Value::Null,
    })
}

/// Finds the CI that a record's `ci` field names, by id or by name. Returns `None` when
/// the field is empty or names no single CI that is not retired.
pub async fn configuration_item(
    state: &AppState,
    record: &tend_domain::Record,
) -> Result<Option<Ci>, ApiError> {
    let Some(given) = record
        .fields
        .get("ci")
        .and_then(Value::as_str)
        .map(str::trim)
    else {
        return Ok(None);
    };
    if given.is_empty() {
        return Ok(None);
    }
    let db = state.commands.store.db();
    let mut found: Vec<Ci> = match given.parse::<i64>() {
        Ok(id) => store::load_ci(db, id).await?.into_iter().collect(),
        Err(_) => store::find_cis_by_name(db, given).await?,
    };
    found.retain(|ci| ci.retired_at.is_none());
    Ok(match found.len() {
        1 => found.pop(),
        _ => None,
    })
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            ApiError::bad_request(
                "invalid_query",
                format!("`at` is `{text}`, which is not an RFC 3339 time ({error}): write it as 2026-12-05T09:30:00Z"),
                Some("at"),
            )
        })
}

async fn load(state: &AppState, id: i64) -> Result<Ci, ApiError> {
    store::load_ci(state.commands.store.db(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "CI",
            key: id.to_string(),
        })
}

/// Returns the short form of a CI used in lists, relationships and impact results.
pub fn ci_summary(schema: &CmdbSchema, ci: &Ci) -> Value {
    let class = schema.class(&ci.class);
    json!({
        "id": ci.id,
        "class": ci.class,
        "class_label": class.map(|c| c.label.as_str()),
        "name": ci.name,
        "status": ci.status,
        "criticality": ci.attributes.get("criticality"),
    })
}

async fn ci_view(
    state: &AppState,
    schema: &CmdbSchema,
    ci: &Ci,
    at: Option<DateTime<Utc>>,
) -> Result<Value, ApiError> {
    let db = state.commands.store.db();
    let history = store::ci_versions(db, ci.id).await?;
    let (shown, relationships) = match at {
        Some(at) => {
            let past = store::ci_as_of(ci, &history, at).ok_or_else(|| ApiError::NotFound {
                what: "CI",
                key: format!("{} at {}", ci.id, at.to_rfc3339()),
            })?;
            (past, store::relationships_at(db, ci.id, at).await?)
        }
        None => (ci.clone(), store::relationships_of(db, ci.id).await?),
    };
    let mut view = serde_json::to_value(&shown).unwrap_or(Value::Null);
    view["class_label"] = json!(schema.class(&ci.class).map(|c| c.label.as_str()));
    if let Some(at) = at {
        view["at"] = json!(at);
    }
    view["relationships"] = relationships_json(state, schema, ci.id, &relationships).await?;
    view["history"] = serde_json::to_value(&history).unwrap_or(Value::Null);
    let names = vec![ci.id.to_string(), ci.name.clone()];
    let records = store::open_records_naming(db, &names, RECORDS_PER_CI).await?;
    view["records"] = serde_json::to_value(&records).unwrap_or(Value::Null);
    view["discovery"] = json!({
        "sightings": tend_store::inventory::sightings_of(db, ci.id).await?,
        "reported": tend_store::inventory::discovered_of(db, ci.id).await?,
    });
    Ok(view)
}

/// Returns `relationships` as `ci_id` reads them: each with its label for that end and
/// the CI at the other end.
async fn relationships_json(
    state: &AppState,
    schema: &CmdbSchema,
    ci_id: i64,
    relationships: &[Relationship],
) -> Result<Value, ApiError> {
    let others: Vec<i64> = relationships
        .iter()
        .map(|r| {
            if r.source == ci_id {
                r.target
            } else {
                r.source
            }
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let cis = store::load_cis(state.commands.store.db(), &others).await?;
    let items: Vec<Value> = relationships
        .iter()
        .map(|relationship| {
            let outgoing = relationship.source == ci_id;
            let other = if outgoing {
                relationship.target
            } else {
                relationship.source
            };
            let kind = schema.relationship_type(&relationship.kind);
            let label = kind.map(|k| if outgoing { &k.label } else { &k.inverse_label });
            json!({
                "id": relationship.id,
                "type": relationship.kind,
                "label": label,
                "direction": if outgoing { "outgoing" } else { "incoming" },
                "ci": cis.iter().find(|ci| ci.id == other).map(|ci| ci_summary(schema, ci)),
                "created_by": relationship.created_by,
                "created_via": relationship.created_via,
                "created_at": relationship.created_at,
                "retired_at": relationship.retired_at,
            })
        })
        .collect();
    Ok(Value::Array(items))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    class: Option<String>,
    q: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
    after: Option<i64>,
}

/// `GET /cis?class=&q=&status=&limit=&after=`: CIs in id order; `class` includes its
/// subclasses, and `next_after` continues the list.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let schema = schema(&state);

    let limit = query.limit.unwrap_or(50);
    if !(1..=store::MAX_CI_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "limit is {limit}: use a value from 1 to {}",
                store::MAX_CI_LIMIT
            ),
            Some("limit"),
        ));
    }
    let classes = match &query.class {
        Some(class) if schema.class(class).is_none() => {
            let known: Vec<&str> = schema.classes.keys().map(String::as_str).collect();
            return Err(ApiError::bad_request(
                "unknown_class",
                format!(
                    "unknown CI class `{class}`: use one of {}",
                    known.join(", ")
                ),
                Some("class"),
            ));
        }
        Some(class) => Some(schema.subclasses_of(class)),
        None => None,
    };

    if let Some(status) = &query.status
        && status != store::RETIRED
    {
        cmdb::check_status(status)?;
    }
    let filter = CiFilter {
        classes,
        q: query.q,
        status: query.status,
        limit,
        after: query.after,
    };

    let (cis, more) = store::list_cis(state.commands.store.db(), &filter).await?;
    let next_after = if more {
        cis.last().map(|ci| ci.id)
    } else {
        None
    };
    Ok(Json(json!({
        "cis": cis.iter().map(|ci| ci_summary(&schema, ci)).collect::<Vec<_>>(),
        "next_after": next_after,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelateBody {
    #[serde(rename = "type")]
    kind: String,
    source: Value,
    target: Value,
}

/// `POST /relationships`: relates two CIs, given by id or name.
pub async fn relate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RelateBody>,
) -> Result<Response, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    let relationship = cmdb::relate(
        &state.commands.store,
        schema,
        &caller.actor,
        &body.kind,
        body.source,
        body.target,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(relationship))).into_response())
}

/// `DELETE /relationships/{id}`: retires a relationship; its row stays for the history.
pub async fn unrelate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let relationship = cmdb::unrelate(&state.commands.store, &caller.actor, id).await?;
    Ok(Json(json!(relationship)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactQuery {
    direction: Option<String>,
    depth: Option<u32>,
    /// Comma-separated ids of further start CIs (`GET /impact` takes its starts here).
    ids: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactBody {
    ids: Vec<i64>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    depth: Option<u32>,
}

/// `GET /cis/{id}/impact?direction=down|up&depth=N`: what a failure of the CI impacts
/// (`down`), or what the CI depends on (`up`, the root-cause direction).
pub async fn impact_of(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    query: Result<Query<ImpactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let mut ids = vec![id];
    ids.extend(parse_ids(query.ids.as_deref())?);
    run_impact(&state, ids, query.direction.as_deref(), query.depth).await
}

/// `GET /impact?ids=1,2,3&direction=&depth=`: impact from several CIs at once, as a
/// change that touches them needs.
pub async fn impact_many(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ImpactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let ids = parse_ids(query.ids.as_deref())?;
    run_impact(&state, ids, query.direction.as_deref(), query.depth).await
}

/// `POST /impact` with `{"ids": [...], "direction": ..., "depth": ...}`: the same as
/// `GET /impact`, for start lists too long for a URL.
pub async fn impact_post(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ImpactBody>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    run_impact(&state, body.ids, body.direction.as_deref(), body.depth).await
}

fn parse_ids(text: Option<&str>) -> Result<Vec<i64>, ApiError> {
    let Some(text) = text.filter(|text| !text.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|part| {
            part.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("`ids` holds `{}`, which is not a CI id: list ids separated by commas, such as ids=4,8,15", part.trim()),
                    Some("ids"),
                )
            })
        })
        .collect()
}

async fn run_impact(
    state: &AppState,
    mut ids: Vec<i64>,
    direction: Option<&str>,
    depth: Option<u32>,
) -> Result<Json<Value>, ApiError> {
    let direction = direction.unwrap_or("down");
    let down = match direction {
        "down" => true,
        "up" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "direction is `{other}`: use `down` (what a failure impacts) or `up` (what the CI depends on)"
                ),
                Some("direction"),
            ));
        }
    };
    let depth = depth.unwrap_or(DEFAULT_IMPACT_DEPTH);
    if !(1..=MAX_IMPACT_DEPTH).contains(&depth) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("depth is {depth}: use a value from 1 to {MAX_IMPACT_DEPTH}"),
            Some("depth"),
        ));
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > MAX_IMPACT_STARTS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "an impact analysis starts from 1 to {MAX_IMPACT_STARTS} CIs, not {}: name the CIs in `ids`",
                ids.len()
            ),
            Some("ids"),
        ));
    }
    let schema = schema(state);
    let db = state.commands.store.db();
    let starts = store::load_cis(db, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| !starts.iter().any(|ci| ci.id == **id)) {
        return Err(ApiError::NotFound {
            what: "CI",
            key: missing.to_string(),
        });
    }

    let walk = crate::record_cmdb::impact_walk(&schema, down);
    let started = std::time::Instant::now();
    let result = impact::walk(db, &ids, &walk, depth).await?;
    let reached_ids: Vec<i64> = result.reached.iter().map(|hit| hit.ci).collect();
    let cis = store::load_cis(db, &reached_ids).await?;
    let elapsed = started.elapsed();
    tracing::debug!(
        starts = ids.len(),
        reached = reached_ids.len(),
        queries = result.queries,
        elapsed_ms = elapsed.as_millis() as u64,
        "impact analysis"
    );

    let label_of = |kind: &str, walks_to_target: bool| -> Value {
        let Some(definition) = schema.relationship_type(kind) else {
            return Value::Null;
        };
        // A step read from its `from` CI: the type's label when `from` is the source.
        json!(if walks_to_target {
            &definition.label
        } else {
            &definition.inverse_label
        })
    };
    let mut affected = Vec::with_capacity(result.reached.len());
    let mut services = Vec::new();
    for hit in &result.reached {
        let Some(ci) = cis
            .binary_search_by_key(&hit.ci, |ci| ci.id)
            .ok()
            .map(|i| &cis[i])
        else {
            continue;
        };
        let mut item = ci_summary(&schema, ci);
        item["depth"] = json!(hit.depth);
        item["path"] = Value::Array(
            hit.path
                .iter()
                .map(|step| {
                    let walks_to_target = walk.source_to_target.contains(&step.kind);
                    json!({
                        "relationship": step.relationship,
                        "type": step.kind,
                        "label": label_of(&step.kind, walks_to_target),
                        "from": step.from,
                        "to": step.to,
                    })
                })
                .collect(),
        );
        if schema
            .class(&ci.class)
            .is_some_and(|class| class.is_a("business_service"))
        {
            services.push(item.clone());
        }
        affected.push(item);
    }
    let warnings: Vec<String> = result
        .cycles
        .iter()
        .map(|cycle| {
            let chain: Vec<String> = cycle.iter().map(|id| format!("CI {id}")).collect();
            format!(
                "the impact-carrying relationships form a cycle ({}); each CI is listed once, but a cycle is usually a modelling error",
                chain.join(" → ")
            )
        })
        .collect();
    Ok(Json(json!({
        "direction": direction,
        "depth": depth,
        "start": starts.iter().map(|ci| ci_summary(&schema, ci)).collect::<Vec<_>>(),
        "affected": affected,
        "services": services,
        "cycles": result.cycles,
        "warnings": warnings,
        "queries": result.queries,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Days without a sighting after which a discovered CI is stale; the setting of
    /// `workflows/cmdb/audit.yaml` when absent.
    #[serde(default)]
    stale_days: Option<u32>,
    #[serde(default)]
    limit: Option<u64>,
}

async fn run_audit(
    state: &AppState,
    query: &AuditQuery,
) -> Result<crate::cmdb_audit::AuditReport, ApiError> {
    crate::cmdb_audit::audit(
        state.commands.store.db(),
        &schema(state),
        query.stale_days,
        query
            .limit
            .unwrap_or(crate::cmdb_audit::DEFAULT_LIMIT)
            .clamp(1, store::MAX_CI_LIMIT),
        Utc::now(),
    )
    .await
}

/// `GET /cmdb/audit`: stale CIs, disagreements with discovery, orphans and recent import
/// conflicts.
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let report = run_audit(&state, &query).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

/// `POST /cmdb/audit/tasks`: runs the audit and opens one task per kind of finding,
/// once a day; returns the report and the tasks.
pub async fn audit_tasks(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let report = run_audit(&state, &query).await?;
    let tasks =
        crate::cmdb_audit::open_tasks(&state.commands, &schema(&state), &caller.actor, &report)
            .await?;
    Ok(Json(json!({ "report": report, "tasks": tasks })))
}

/// `GET /collections`: the collections with their definitions.
pub async fn collections(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let schema = schema(&state);
    let list: Vec<Value> = schema
        .collections
        .iter()
        .map(|(name, collection)| {
            let mut value = serde_json::to_value(collection).unwrap_or(Value::Null);
            value["name"] = json!(name);
            value
        })
        .collect();
    Ok(Json(json!({ "collections": list })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionQuery {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    after: Option<i64>,
    /// Counts the members by this attribute (or `class`, `status`) instead of listing
    /// them only.
    #[serde(default)]
    group_by: Option<String>,
}

/// `GET /collections/{name}`: the members of a collection, a page at a time, with
/// their total and, with `group_by`, their counts by value.
pub async fn collection_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<CollectionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_staff(&caller.actor)?;
    let Query(query) = query.map_err(query_error)?;
    let schema = schema(&state);
    let collection = crate::collections::collection(&schema, &name)?;
    let members =
        crate::collections::members(state.commands.store.db(), &schema, collection).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, store::MAX_CI_LIMIT) as usize;
    let page: Vec<&Ci> = members
        .iter()
        .filter(|ci| query.after.is_none_or(|after| ci.id > after))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let mut body = json!({
        "name": name,
        "label": collection.label,
        "total": members.len(),
        "cis": page.iter().map(|ci| ci_summary(&schema, ci)).collect::<Vec<_>>(),
        "next_after": if more { page.last().map(|ci| ci.id) } else { None },
    });
    if let Some(attribute) = &query.group_by {
        let known = ["class", "status"].contains(&attribute.as_str())
            || collection.classes.iter().any(|class| {
                schema.subclasses_of(class).iter().any(|sub| {
                    schema
                        .class(sub)
                        .is_some_and(|resolved| resolved.attributes.contains_key(attribute))
                })
            });
        if !known {
            return Err(ApiError::bad_request(
                "unknown_attribute",
                format!(
                    "`group_by` is `{attribute}`, which no class of collection `{name}` has: give `class`, `status` or an attribute of {}",
                    collection.classes.join(", ")
                ),
                Some("group_by"),
            ));
        }
        body["group_by"] = json!(attribute);
        body["groups"] = json!(crate::collections::group_by(&members, attribute));
    }
    Ok(Json(body))
}
