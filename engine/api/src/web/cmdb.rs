//! The CMDB in the console, for staff: the CI list at `/cmdb` and what the CMDB pages
//! share. The CI page is in `cmdb_ci`, its forms in `cmdb_forms`, the inventory import
//! log in `cmdb_imports` and the audit in `cmdb_audit`. Every page reads and writes
//! through the same functions as the REST API (`crate::cmdb`, `tend_store::cmdb`), so
//! checks, versions and error messages are the API's.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tend_store::cmdb::{self as store, Ci, CiFilter};
use tend_workflow::cmdb::{AttributeDef, AttributeType, CmdbSchema};

use super::display::humanise;
use super::forms::SelectOption;
use super::{Viewer, format_time};
use crate::AppState;
use crate::error::ApiError;

/// CIs per page of the list.
const PAGE_SIZE: u64 = 50;

/// Attributes the list shows beside the name when a CI has them, in this order.
const LIST_ATTRIBUTES: [&str; 4] = ["serial_number", "fqdn", "criticality", "environment"];

/// Checks that the viewer may use the CMDB pages, with the API's rule and message.
pub(super) fn require_staff(viewer: &Viewer) -> Result<(), ApiError> {
    crate::cmdb::require_staff(viewer.actor())
}

pub(super) fn schema(state: &AppState) -> Arc<CmdbSchema> {
    state.commands.engine.definitions().cmdb.clone()
}

pub(super) fn ci_href(id: i64) -> String {
    format!("/cmdb/cis/{id}")
}

/// Returns the label of class `name`, or the name itself for a class the loaded
/// definitions no longer declare.
pub(super) fn class_label(schema: &CmdbSchema, name: &str) -> String {
    schema
        .class(name)
        .map_or_else(|| name.to_owned(), |class| class.label.clone())
}

/// Abbreviations that attribute names spell in lower case, upper-cased in labels.
const ABBREVIATIONS: [&str; 11] = [
    "cpu", "dns", "fqdn", "gb", "id", "ip", "mac", "mb", "os", "url", "uuid",
];

/// Returns the label of an attribute, or else its name humanised with the abbreviations
/// of [`ABBREVIATIONS`] upper-cased, so that `memory_mb` reads "Memory MB".
pub(super) fn attribute_label(name: &str, def: Option<&AttributeDef>) -> String {
    if let Some(label) = def.and_then(|def| def.label.clone()) {
        return label;
    }
    let words: Vec<String> = name
        .split('_')
        .map(|word| {
            if ABBREVIATIONS.contains(&word) {
                word.to_uppercase()
            } else {
                word.to_owned()
            }
        })
        .collect();
    humanise(&words.join(" "))
}

/// Describes an attribute's type for people, e.g. "list of string" or "CI (location)".
pub(super) fn type_text(def: &AttributeDef) -> String {
    let single = |kind: AttributeType| match (kind, def.class.as_deref()) {
        (AttributeType::Ci, Some(class)) => format!("CI ({class})"),
        (AttributeType::Ci, None) => "CI".to_owned(),
        (kind, _) => kind.as_str().to_owned(),
    };
    match def.kind {
        AttributeType::List => format!("list of {}", single(def.value_type())),
        kind => single(kind),
    }
}

/// Formats one attribute value as text: booleans as Yes or No, enum values humanised,
/// lists joined by commas and "(empty)" for no value.
pub(super) fn value_text(def: Option<&AttributeDef>, value: &Value) -> String {
    let kind = def.map(AttributeDef::value_type);
    match value {
        Value::Null => "(empty)".to_owned(),
        Value::Array(items) if items.is_empty() => "(empty)".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|item| value_text(def, item))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(true) => "Yes".to_owned(),
        Value::Bool(false) => "No".to_owned(),
        Value::String(text) if text.is_empty() => "(empty)".to_owned(),
        Value::String(text) if kind == Some(AttributeType::Enum) => humanise(text),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A link to a CI, as lists and sections show it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct CiLink {
    pub id: i64,
    pub href: String,
    pub name: String,
    pub class_label: String,
    pub status: String,
    pub retired: bool,
}

pub(super) fn ci_link(schema: &CmdbSchema, ci: &Ci) -> CiLink {
    CiLink {
        id: ci.id,
        href: ci_href(ci.id),
        name: ci.name.clone(),
        class_label: class_label(schema, &ci.class),
        status: humanise(&ci.status),
        retired: ci.retired_at.is_some(),
    }
}

/// Lists every class as a select option, in file order, with `selected` chosen. Abstract
/// classes are marked, since choosing one lists the CIs of all its subclasses.
pub(super) fn class_options(
    schema: &CmdbSchema,
    selected: &str,
    concrete_only: bool,
) -> Vec<SelectOption> {
    schema
        .classes
        .values()
        .filter(|class| !(concrete_only && class.is_abstract))
        .map(|class| SelectOption {
            value: class.name.clone(),
            label: if class.is_abstract {
                format!("{} (all kinds)", class.label)
            } else {
                class.label.clone()
            },
            selected: class.name == selected,
        })
        .collect()
}

/// The filters of the list, as its GET form sends them; empty controls mean "any".
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ListQuery {
    class: String,
    q: String,
    status: String,
    after: String,
}

#[derive(Debug, Serialize)]
struct Row {
    link: CiLink,
    /// Label and value of the attributes of [`LIST_ATTRIBUTES`] that the CI has.
    details: Vec<Detail>,
    updated: String,
    updated_iso: String,
}

#[derive(Debug, Serialize)]
struct Detail {
    label: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct ListPage {
    filters: ListQuery,
    classes: Vec<SelectOption>,
    statuses: Vec<SelectOption>,
    rows: Vec<Row>,
    next_link: Option<String>,
    first_link: Option<String>,
    error: Option<String>,
}

/// Builds the list URL for `filters` after CI `after`, leaving out empty filters.
fn list_link(filters: &ListQuery, after: Option<i64>) -> String {
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let pairs = [
        ("class", filters.class.as_str()),
        ("q", &filters.q),
        ("status", &filters.status),
        ("after", &after),
    ];
    let present: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let query = serde_urlencoded::to_string(present).unwrap_or_default();
    if query.is_empty() {
        "/cmdb".into()
    } else {
        format!("/cmdb?{query}")
    }
}

fn status_options(selected: &str) -> Vec<SelectOption> {
    let mut options = vec![SelectOption {
        value: String::new(),
        label: "Any but retired".into(),
        selected: selected.is_empty(),
    }];
    options.extend(
        crate::cmdb::STATUSES
            .iter()
            .chain(std::iter::once(&store::RETIRED))
            .map(|status| SelectOption {
                value: (*status).to_owned(),
                label: humanise(status),
                selected: *status == selected,
            }),
    );
    options
}

/// Turns the form's filters into the store's, with the API's checks and messages.
fn filter_of(schema: &CmdbSchema, filters: &ListQuery) -> Result<CiFilter, ApiError> {
    let class = filters.class.trim();
    let classes = if class.is_empty() {
        None
    } else if schema.class(class).is_none() {
        let known: Vec<&str> = schema.classes.keys().map(String::as_str).collect();
        return Err(ApiError::bad_request(
            "unknown_class",
            format!(
                "unknown CI class `{class}`: use one of {}",
                known.join(", ")
            ),
            Some("class"),
        ));
    } else {
        Some(schema.subclasses_of(class))
    };
    let status = filters.status.trim();
    if !status.is_empty() && status != store::RETIRED {
        crate::cmdb::check_status(status)?;
    }
    let after = match filters.after.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("`after` is `{text}`, which is not a CI id: follow the Next page link"),
                Some("after"),
            )
        })?),
    };
    let q = filters.q.trim();
    Ok(CiFilter {
        classes,
        q: (!q.is_empty()).then(|| q.to_owned()),
        status: (!status.is_empty()).then(|| status.to_owned()),
        limit: PAGE_SIZE,
        after,
    })
}

fn row(schema: &CmdbSchema, ci: &Ci) -> Row {
    let class = schema.class(&ci.class);
    let details = LIST_ATTRIBUTES
        .iter()
        .filter_map(|name| {
            let value = ci.attributes.get(*name)?;
            let def = class
                .and_then(|class| class.attributes.get(*name))
                .map(|attribute| &attribute.def);
            Some(Detail {
                label: attribute_label(name, def),
                value: value_text(def, value),
            })
        })
        .collect();
    Row {
        link: ci_link(schema, ci),
        details,
        updated: format_time(ci.updated_at),
        updated_iso: ci.updated_at.to_rfc3339(),
    }
}

/// `GET /cmdb`: the CIs in id order, filtered by class (with its subclasses), text and
/// status, one page after the CI `after`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let filters = match query {
        Ok(Query(filters)) => filters,
        Err(rejection) => {
            let error = ApiError::bad_request("invalid_query", rejection.body_text(), None);
            return state.web.error(Some(&viewer), &error);
        }
    };
    let schema = schema(&state);
    let mut page = ListPage {
        classes: class_options(&schema, filters.class.trim(), false),
        statuses: status_options(filters.status.trim()),
        rows: Vec::new(),
        next_link: None,
        first_link: (!filters.after.trim().is_empty()).then(|| list_link(&filters, None)),
        error: None,
        filters: filters.clone(),
    };
    let filter = match filter_of(&schema, &filters) {
        Ok(filter) => filter,
        Err(error) => return render_list(&state, &viewer, page, Some(error)),
    };
    let (cis, more) = match store::list_cis(state.commands.store.db(), &filter).await {
        Ok(found) => found,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    page.rows = cis.iter().map(|ci| row(&schema, ci)).collect();
    page.next_link = more
        .then(|| cis.last().map(|ci| list_link(&filters, Some(ci.id))))
        .flatten();
    render_list(&state, &viewer, page, None)
}

fn render_list(
    state: &AppState,
    viewer: &Viewer,
    mut page: ListPage,
    error: Option<ApiError>,
) -> Response {
    let status = match &error {
        Some(error) => {
            page.error = Some(error.public_message());
            error.status()
        }
        None => StatusCode::OK,
    };
    state.web.page(
        status,
        "cmdb_list",
        Some(viewer),
        "Configuration items",
        &page,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(kind: AttributeType, of: Option<AttributeType>, class: Option<&str>) -> AttributeDef {
        AttributeDef {
            kind,
            label: None,
            of,
            values: Vec::new(),
            class: class.map(str::to_owned),
            required: false,
            unique: false,
            owner: Default::default(),
            indexed: false,
            sources: Vec::new(),
        }
    }

    #[test]
    fn list_link_keeps_set_filters_only() {
        let filters = ListQuery {
            class: "computer".into(),
            q: "db & web".into(),
            ..ListQuery::default()
        };
        assert_eq!(
            list_link(&filters, Some(40)),
            "/cmdb?class=computer&q=db+%26+web&after=40"
        );
        assert_eq!(list_link(&ListQuery::default(), None), "/cmdb");
    }

    #[test]
    fn values_read_for_people() {
        let enumeration = def(AttributeType::Enum, None, None);
        let list = def(AttributeType::List, Some(AttributeType::String), None);
        assert_eq!(value_text(Some(&enumeration), &json!("in_use")), "In use");
        assert_eq!(value_text(Some(&list), &json!(["a", "b"])), "a, b");
        assert_eq!(value_text(Some(&list), &json!([])), "(empty)");
        assert_eq!(value_text(None, &json!(true)), "Yes");
        assert_eq!(value_text(None, &json!(4096)), "4096");
        assert_eq!(value_text(None, &Value::Null), "(empty)");
    }

    #[test]
    fn labels_upper_case_abbreviations() {
        assert_eq!(attribute_label("memory_mb", None), "Memory MB");
        assert_eq!(attribute_label("fqdn", None), "FQDN");
        assert_eq!(attribute_label("ip_addresses", None), "IP addresses");
        assert_eq!(attribute_label("serial_number", None), "Serial number");
        let mut labelled = def(AttributeType::String, None, None);
        labelled.label = Some("Host name".into());
        assert_eq!(attribute_label("fqdn", Some(&labelled)), "Host name");
    }

    #[test]
    fn types_read_for_people() {
        assert_eq!(
            type_text(&def(
                AttributeType::List,
                Some(AttributeType::Ci),
                Some("location")
            )),
            "list of CI (location)"
        );
        assert_eq!(type_text(&def(AttributeType::Date, None, None)), "date");
    }
}
