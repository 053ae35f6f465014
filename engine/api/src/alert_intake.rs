//! Alerts of monitoring systems: [`Commands::take_alert`] turns one alert into a new
//! record, an update of the record it opened before, a resolution, a reopening, or a note
//! on a change whose planned window covers the alert's configuration item. The endpoints
//! `POST /api/v1/alerts/alertmanager` (Prometheus Alertmanager's webhook body) and
//! `POST /api/v1/alerts` (Tend's generic form, docs/alerts.md) hand batches in.
//!
//! The steps of one alert:
//!
//! 1. The alert is stored in its own write, keyed by its source and fingerprint (the
//!    sender's, or the SHA-256 of its sorted labels): status, last seen, count, payload.
//! 2. Firing and unknown, or its record closed longer than `reopen_within` ago: a change
//!    in a blocking state whose window covers now and names the alert's configuration
//!    item gets a note, and no record opens. Otherwise a record of the source's process
//!    (or the matching route's) opens, with an idempotency key of the alert's episode, so
//!    that two deliveries at once open one record.
//! 3. Firing and its record open: the count and last seen time grow, and a note is added
//!    at most once per `note_every`.
//! 4. Firing and its record resolved within `reopen_within`: the reopen transition.
//! 5. Resolved: the source's `resolved` transition, or a note.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tend_domain::{Actor, Command, Effect, Fields, Record, Role};
use tend_store::alerts::{Alert, AlertOutcome, NewAlert};
use tend_workflow::alerts::{AlertSource, ResolvedKind, Target, TemplateValues, render};
use tend_workflow::engine::{MAX_TEXT_LENGTH, MAX_TITLE_LENGTH};
use tend_workflow::{Definition, DefinitionSet, Hook, RuleInput};

use crate::AppState;
use crate::auth::Caller;
use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;

/// The process and fields that an alert source's routing rule chose.
struct RuleChoice {
    process: String,
    fields: Fields,
}

/// Name of the system actor that journals what alerts do.
pub const ALERT_ACTOR: &str = "alerts";

/// Process whose planned windows suppress alerts.
const CHANGE_PROCESS: &str = "change";

/// Largest number of alerts in one request.
pub const MAX_ALERTS: usize = 1000;

/// One alert, read from either form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingAlert {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub fingerprint: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: Option<String>,
}

impl IncomingAlert {
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("alert", String::as_str)
    }
}

/// Outcome of one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertResult {
    /// Position of the alert in the request.
    pub index: usize,
    pub fingerprint: String,
    pub alertname: String,
    pub status: String,
    /// The record the alert opened or reached.
    pub record: Option<String>,
    /// `created`, `updated`, `noted`, `resolved`, `reopened`, `suppressed` or `ignored`.
    pub effect: String,
    pub reason: Option<String>,
}

/// An alert of a request that was not taken, with the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadAlert {
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

/// The alerts of a request that were read, with their positions, and those that were not.
pub type Parsed = (Vec<(usize, IncomingAlert)>, Vec<BadAlert>);

struct Values<'a> {
    alert: &'a IncomingAlert,
    ci: Option<&'a str>,
}

impl TemplateValues for Values<'_> {
    fn value(&self, name: &str) -> Option<String> {
        let alert = self.alert;
        if let Some(label) = name.strip_prefix("labels.") {
            return alert.labels.get(label).cloned();
        }
        if let Some(annotation) = name.strip_prefix("annotations.") {
            return alert.annotations.get(annotation).cloned();
        }
        match name {
            "fingerprint" => Some(alert.fingerprint.clone()),
            "status" => Some(alert.status.clone()),
            "starts_at" => alert.starts_at.map(|at| at.to_rfc3339()),
            "ends_at" => alert.ends_at.map(|at| at.to_rfc3339()),
            "generator_url" => alert.generator_url.clone(),
            "ci" => self.ci.map(str::to_owned),
            _ => None,
        }
    }
}

/// Reads the body of `POST /api/v1/alerts/alertmanager`, Alertmanager's webhook message.
/// Returns the good alerts with their positions and the bad ones with their reasons, or an
/// error when the body as a whole is unusable.
pub fn parse_alertmanager(body: &Value) -> Result<Parsed, BadAlert> {
    let whole = |field: &str, message: String| BadAlert {
        index: None,
        field: field.to_owned(),
        message,
    };
    let Some(object) = body.as_object() else {
        return Err(whole(
            "",
            "the body must be Alertmanager's webhook message, a JSON object with `alerts`: point a webhook receiver (`webhook_configs`) at this URL".into(),
        ));
    };
    let group_status = match object.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(status)) if status == "firing" || status == "resolved" => {
            Some(status.clone())
        }
        Some(other) => {
            return Err(whole(
                "status",
                format!("`status` is {other}: Alertmanager sends \"firing\" or \"resolved\""),
            ));
        }
    };
    let alerts = alerts_array(object)?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (index, alert) in alerts.iter().enumerate() {
        match parse_one(index, alert, group_status.as_deref(), Form::Alertmanager) {
            Ok(alert) => good.push((index, alert)),
            Err(problem) => bad.push(problem),
        }
    }
    Ok((good, bad))
}

/// Reads the body of `POST /api/v1/alerts`, the generic form of docs/alerts.md.
pub fn parse_generic(body: &Value) -> Result<Parsed, BadAlert> {
    let Some(object) = body.as_object() else {
        return Err(BadAlert {
            index: None,
            field: String::new(),
            message: "the body must be a JSON object with `alerts`, a list of alerts such as {\"status\": \"firing\", \"labels\": {\"alertname\": \"DiskFull\"}}".into(),
        });
    };
    if let Some(key) = object.keys().find(|key| key.as_str() != "alerts") {
        return Err(BadAlert {
            index: None,
            field: key.clone(),
            message: format!("unknown field `{key}`: the body has only `alerts`"),
        });
    }
    let alerts = alerts_array(object)?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (index, alert) in alerts.iter().enumerate() {
        match parse_one(index, alert, None, Form::Generic) {
            Ok(alert) => good.push((index, alert)),
            Err(problem) => bad.push(problem),
        }
    }
    Ok((good, bad))
}

fn alerts_array(object: &Map<String, Value>) -> Result<&Vec<Value>, BadAlert> {
    let whole = |message: String| BadAlert {
        index: None,
        field: "alerts".into(),
        message,
    };
    match object.get("alerts") {
        Some(Value::Array(alerts)) if alerts.is_empty() => {
            Err(whole("`alerts` is empty: send at least one alert".into()))
        }
        Some(Value::Array(alerts)) if alerts.len() > MAX_ALERTS => Err(whole(format!(
            "`alerts` holds {} alerts, more than {MAX_ALERTS}: send them in smaller batches (Alertmanager's `max_alerts` in webhook_configs)",
            alerts.len()
        ))),
        Some(Value::Array(alerts)) => Ok(alerts),
        None | Some(Value::Null) => Err(whole(
            "`alerts` is missing: send the alerts as a JSON list under `alerts`".into(),
        )),
        Some(other) => Err(whole(format!(
            "`alerts` must be a list of alerts, not {}",
            kind(other)
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Alertmanager,
    Generic,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_one(
    index: usize,
    value: &Value,
    group_status: Option<&str>,
    form: Form,
) -> Result<IncomingAlert, BadAlert> {
    let bad = |field: &str, message: String| BadAlert {
        index: Some(index),
        field: format!("alerts[{index}].{field}"),
        message,
    };
    let Some(object) = value.as_object() else {
        return Err(BadAlert {
            index: Some(index),
            field: format!("alerts[{index}]"),
            message: format!("an alert must be an object, not {}", kind(value)),
        });
    };
    let (starts_key, ends_key, url_key) = match form {
        Form::Alertmanager => ("startsAt", "endsAt", "generatorURL"),
        Form::Generic => ("starts_at", "ends_at", "url"),
    };
    if form == Form::Generic {
        let known = [
            "status",
            "labels",
            "annotations",
            "fingerprint",
            starts_key,
            ends_key,
            url_key,
        ];
        if let Some(key) = object.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(bad(
                key,
                format!("unknown field `{key}`: an alert has {}", known.join(", ")),
            ));
        }
    }
    let status = match object.get("status") {
        Some(Value::String(status)) if status == "firing" || status == "resolved" => status.clone(),
        None | Some(Value::Null) => match group_status {
            Some(status) => status.to_owned(),
            None => {
                return Err(bad(
                    "status",
                    "`status` is missing: set it to \"firing\" or \"resolved\"".into(),
                ));
            }
        },
        Some(other) => {
            return Err(bad(
                "status",
                format!("`status` is {other}: set it to \"firing\" or \"resolved\""),
            ));
        }
    };
    let labels = string_map(object.get("labels"), "labels", &bad)?;
    match labels.get("alertname") {
        Some(name) if !name.trim().is_empty() => {}
        _ => {
            return Err(bad(
                "labels.alertname",
                "the label `alertname` is missing: every alert needs one, such as \"alertname\": \"DiskFull\" (Prometheus sets it from the alerting rule's name)".into(),
            ));
        }
    }
    let annotations = string_map(object.get("annotations"), "annotations", &bad)?;
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, BadAlert> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
                // Alertmanager writes the zero time for an alert that has no end yet.
                Ok(at) if at.timestamp() <= 0 => Ok(None),
                Ok(at) => Ok(Some(at.with_timezone(&Utc))),
                Err(_) => Err(bad(
                    key,
                    format!(
                        "`{text}` is not a time: write it in RFC 3339, such as 2026-02-12T09:00:00Z"
                    ),
                )),
            },
            Some(other) => Err(bad(
                key,
                format!("`{key}` must be an RFC 3339 time text, not {}", kind(other)),
            )),
        }
    };
    let starts_at = time(starts_key)?;
    let ends_at = time(ends_key)?;
    let generator_url = match object.get(url_key) {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => (!url.is_empty()).then(|| url.clone()),
        Some(other) => {
            return Err(bad(
                url_key,
                format!("`{url_key}` must be a text, not {}", kind(other)),
            ));
        }
    };
    let fingerprint = match object.get("fingerprint") {
        None | Some(Value::Null) => computed_fingerprint(&labels),
        Some(Value::String(text)) if text.trim().is_empty() => computed_fingerprint(&labels),
        Some(Value::String(text)) if text.len() <= 200 => text.trim().to_owned(),
        Some(Value::String(text)) => {
            return Err(bad(
                "fingerprint",
                format!(
                    "the fingerprint is {} characters long: use at most 200, or leave it out and Tend computes one from the labels",
                    text.len()
                ),
            ));
        }
        Some(other) => {
            return Err(bad(
                "fingerprint",
                format!("`fingerprint` must be a text, not {}", kind(other)),
            ));
        }
    };
    Ok(IncomingAlert {
        status,
        labels,
        annotations,
        fingerprint,
        starts_at,
        ends_at,
        generator_url,
    })
}

fn string_map(
    value: Option<&Value>,
    name: &str,
    bad: &dyn Fn(&str, String) -> BadAlert,
) -> Result<BTreeMap<String, String>, BadAlert> {
    let object = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(object)) => object,
        Some(other) => {
            return Err(bad(
                name,
                format!(
                    "`{name}` must be an object of names and text values, not {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut map = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(bad(
                    &format!("{name}.{key}"),
                    format!("`{name}.{key}` must be a text, not {}", kind(other)),
                ));
            }
        };
        map.insert(key.clone(), text);
    }
    Ok(map)
}

/// The fingerprint of an alert that carries none: the first 16 hex digits of the SHA-256
/// of its labels, sorted by name, as `name=value` lines.
pub fn computed_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (name, value) in labels {
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    tend_store::sha256_hex(&text)[..16].to_owned()
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// Fills the field templates of `templates` that `definition` declares.
fn fill(
    definition: &Definition,
    templates: &BTreeMap<String, String>,
    values: &Values<'_>,
    fields: &mut Fields,
) {
    for (field, template) in templates {
        let Some(declared) = definition.fields.get(field) else {
            continue;
        };
        let value = tend_workflow::alerts::field_value(declared, &render(template, values));
        if !value.is_null() {
            fields.insert(field.clone(), value);
        }
    }
}

impl Commands {
    /// Takes one alert of `source`: stores it, then opens, updates, resolves or reopens its
    /// record, or notes it on a change. Returns an error only when the alert could not be
    /// stored; every later problem is in the result's reason.
    pub async fn take_alert(
        &self,
        source_name: &str,
        index: usize,
        alert: &IncomingAlert,
        now: DateTime<Utc>,
    ) -> Result<AlertResult, ApiError> {
        let set = self.engine.current().set.clone();
        let source = set
            .alert_sources
            .get(source_name)
            .cloned()
            .ok_or_else(|| unknown_source(&set, source_name))?;
        let delivery = NewAlert {
            source: source.name.clone(),
            fingerprint: alert.fingerprint.clone(),
            alertname: alert.alertname().to_owned(),
            status: alert.status.clone(),
            received_at: now,
            payload: serde_json::to_value(alert).unwrap_or(Value::Null),
        };
        let (_, row) = match self.store.record_alert(delivery.clone()).await {
            // Another node stored the first delivery of this alert between the read and
            // the insert: the row exists now, so the second try updates it.
            Err(tend_store::Error::Duplicate { .. }) => self.store.record_alert(delivery).await?,
            stored => stored?,
        };
        let decided = self.decide_alert(&set, &source, alert, &row, now).await;
        let (outcome, reason) = match decided {
            Ok(outcome) => (outcome, None),
            Err(error) => (
                AlertOutcome {
                    effect: Some("failed".into()),
                    ..AlertOutcome::default()
                },
                Some(error.to_string()),
            ),
        };
        if let Some(reason) = &reason {
            tracing::warn!(alert.fingerprint = alert.fingerprint, %reason, "an alert did not reach a record");
        }
        let stored = self.store.finish_alert(row.id, outcome).await?;
        Ok(AlertResult {
            index,
            fingerprint: alert.fingerprint.clone(),
            alertname: alert.alertname().to_owned(),
            status: alert.status.clone(),
            record: stored.record_number.clone(),
            effect: stored.effect.clone().unwrap_or_default(),
            reason,
        })
    }

    async fn decide_alert(
        &self,
        set: &DefinitionSet,
        source: &AlertSource,
        alert: &IncomingAlert,
        row: &Alert,
        now: DateTime<Utc>,
    ) -> Result<AlertOutcome, ApiError> {
        let actor = Actor::system(ALERT_ACTOR);
        let ci = source.ci(&alert.labels);
        let routed = self.route_by_rule(source, alert, ci.as_deref(), now);
        let target = match &routed {
            Some(choice) => source.target_for_process(&choice.process),
            None => source.target(&alert.labels),
        };
        let record = match &row.record_number {
            Some(number) => self.store.get_record(number).await?,
            None => None,
        };
        let describe = describe_alert(source, alert, ci.as_deref());
        if alert.status == "resolved" {
            let Some(record) = record else {
                return Ok(AlertOutcome {
                    effect: Some("ignored".into()),
                    ..AlertOutcome::default()
                });
            };
            if !record.open {
                return Ok(AlertOutcome {
                    effect: Some("ignored".into()),
                    resolved_at: row.resolved_at.is_none().then_some(Some(now)),
                    ..AlertOutcome::default()
                });
            }
            let text = format!("Resolved: {describe}");
            if record.process != target.process || target.resolved.action == ResolvedKind::Note {
                self.note(&actor, &record.number, text).await?;
                return Ok(AlertOutcome {
                    effect: Some("noted".into()),
                    resolved_at: Some(Some(now)),
                    last_note_at: Some(now),
                    ..AlertOutcome::default()
                });
            }
            let definition = self.engine.definition(&record.process)?;
            let values = Values {
                alert,
                ci: ci.as_deref(),
            };
            let mut fields = Fields::new();
            fill(&definition, &target.resolved.fields, &values, &mut fields);
            let command = Command::Transition {
                name: target.resolved.transition.clone(),
                fields,
                comment: Some(text.clone()),
            };
            return match self
                .apply_at(&actor, &record.number, command, Some(now))
                .await
            {
                Ok(_) => Ok(AlertOutcome {
                    effect: Some("resolved".into()),
                    resolved_at: Some(Some(now)),
                    last_note_at: Some(now),
                    ..AlertOutcome::default()
                }),
                Err(error) => {
                    self.note(
                        &actor,
                        &record.number,
                        format!(
                            "{text}. The transition `{}` was not taken: {error}",
                            target.resolved.transition
                        ),
                    )
                    .await?;
                    Ok(AlertOutcome {
                        effect: Some("noted".into()),
                        resolved_at: Some(Some(now)),
                        last_note_at: Some(now),
                        ..AlertOutcome::default()
                    })
                }
            };
        }

        // Firing.
        if let Some(record) = &record {
            let suppressing = record.process == CHANGE_PROCESS && target.process != CHANGE_PROCESS;
            let still_covered =
                !suppressing || ci.as_deref().is_some_and(|ci| covers(set, record, ci, now));
            if record.open && still_covered {
                let due = row
                    .last_note_at
                    .is_none_or(|at| now - at >= source.file.note_every.duration());
                if !due {
                    return Ok(AlertOutcome {
                        effect: Some("updated".into()),
                        ..AlertOutcome::default()
                    });
                }
                let text = format!(
                    "Still firing ({} deliveries since {}): {describe}",
                    row.count,
                    row.first_seen.format("%Y-%m-%d %H:%M UTC")
                );
                self.note(&actor, &record.number, text).await?;
                return Ok(AlertOutcome {
                    effect: Some("noted".into()),
                    last_note_at: Some(now),
                    ..AlertOutcome::default()
                });
            }
            let recent = row
                .resolved_at
                .is_some_and(|at| now - at <= source.file.reopen_within.duration());
            if !record.open && !suppressing && recent {
                let command = Command::Transition {
                    name: target.reopen_transition.to_owned(),
                    fields: Fields::new(),
                    comment: Some(format!("Firing again: {describe}")),
                };
                if self
                    .apply_at(&actor, &record.number, command, Some(now))
                    .await
                    .is_ok()
                {
                    return Ok(AlertOutcome {
                        effect: Some("reopened".into()),
                        resolved_at: Some(None),
                        last_note_at: Some(now),
                        ..AlertOutcome::default()
                    });
                }
            }
        }
        let episode = if record.is_some() {
            row.episode + 1
        } else {
            row.episode
        };
        if source.file.change_windows
            && let Some(ci) = &ci
            && let Some(change) = self.covering_change(set, ci, now).await?
        {
            self.note(
                &actor,
                &change.number,
                format!("Alert during the planned window, no incident opened: {describe}"),
            )
            .await?;
            return Ok(AlertOutcome {
                record_number: Some(Some(change.number)),
                effect: Some("suppressed".into()),
                episode: Some(episode),
                last_note_at: Some(now),
                resolved_at: Some(None),
            });
        }
        let number = self
            .open_for_alert(
                source,
                &target,
                alert,
                ci.as_deref(),
                routed.as_ref().map(|choice| &choice.fields),
                episode,
                now,
            )
            .await?;
        Ok(AlertOutcome {
            record_number: Some(Some(number.0)),
            effect: Some(if number.1 { "created" } else { "updated" }.into()),
            episode: Some(episode),
            last_note_at: Some(now),
            resolved_at: Some(None),
        })
    }

    /// Opens the record of an alert's episode and journals the alert on it. Returns the
    /// number and whether the record was opened now.
    #[allow(clippy::too_many_arguments)]
    async fn open_for_alert(
        &self,
        source: &AlertSource,
        target: &Target<'_>,
        alert: &IncomingAlert,
        ci: Option<&str>,
        chosen: Option<&Fields>,
        episode: i64,
        now: DateTime<Utc>,
    ) -> Result<(String, bool), ApiError> {
        let actor = Actor::system(ALERT_ACTOR);
        let definition = self.engine.definition(target.process)?;
        let values = Values { alert, ci };
        let mut preset = Fields::new();
        if let (Some(mapping), Some(ci)) = (&source.file.ci, ci)
            && definition.fields.contains_key(&mapping.field)
        {
            preset.insert(mapping.field.clone(), Value::String(ci.to_owned()));
        }
        if let Some(severity) = source.severity_fields(&alert.labels) {
            fill(&definition, severity, &values, &mut preset);
        }
        for templates in &target.fields {
            fill(&definition, templates, &values, &mut preset);
        }
        // The fields a routing rule gave win over the templates.
        for (name, value) in chosen.into_iter().flatten() {
            if definition.fields.contains_key(name) {
                preset.insert(name.clone(), value.clone());
            }
        }
        let title = render(&source.file.title, &values);
        let title = title.trim().trim_end_matches(':').trim();
        let title = if title.is_empty() {
            alert.alertname()
        } else {
            title
        };
        let key = tend_store::sha256_hex(&format!(
            "{}\n{}\n{episode}",
            source.name, alert.fingerprint
        ));
        let input = NewRecord {
            title: truncate_chars(title, MAX_TITLE_LENGTH),
            description: truncate_chars(
                render(&source.file.description, &values).trim(),
                MAX_TEXT_LENGTH,
            ),
            fields: Fields::new(),
            idempotency_key: Some(format!("alert-{}", &key[..32])),
            preset,
        };
        let created = self
            .create_journaled(&actor, target.process, input, now)
            .await?;
        let number = created.record.number.clone();
        if created.is_new {
            self.note(
                &actor,
                &number,
                format!("Opened by {}", describe_alert(source, alert, ci)),
            )
            .await?;
        }
        Ok((number, created.is_new))
    }

    /// Runs the source's routing rule on `alert`. Returns the process and fields of the
    /// rule's `open_record`, when it called one for a process that exists; a rule that
    /// fails or chooses nothing leaves the alert to the routes, and a failure is logged.
    fn route_by_rule(
        &self,
        source: &AlertSource,
        alert: &IncomingAlert,
        ci: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<RuleChoice> {
        let rule = source.file.rule.as_deref()?;
        let current = self.engine.current();
        let mut input_alert = serde_json::to_value(alert).unwrap_or(Value::Null);
        input_alert["ci"] = ci.map_or(Value::Null, |ci| Value::String(ci.to_owned()));
        input_alert["source"] = Value::String(source.name.clone());
        // The rule decides from `alert`; the record only carries the alert's name.
        let record = Record {
            id: 0,
            number: String::new(),
            process: source.file.process.clone(),
            definition_version: current.set.version.clone(),
            state: String::new(),
            open: true,
            title: alert.alertname().to_owned(),
            description: String::new(),
            fields: Fields::new(),
            recommendations: Vec::new(),
            created_at: now,
            updated_at: now,
            state_changed_at: now,
            revision: 0,
        };
        let actor = Actor::system(ALERT_ACTOR);
        let input = RuleInput {
            hook: Hook::OnAlert,
            record: &record,
            previous: None,
            actor: &actor,
            transition: None,
            links: &[],
            linked: None,
            now,
            email: None,
            cmdb: None,
            alert: Some(&input_alert),
        };
        let effects = match current.rules.run(rule, &input) {
            Ok(effects) => effects,
            Err(failure) => {
                tracing::warn!(rule, source = %source.name, fingerprint = %alert.fingerprint, error = %failure.message, "an alert routing rule failed; the routes decide");
                return None;
            }
        };
        effects
            .into_iter()
            .find_map(|proposed| match proposed.effect {
                Effect::Open {
                    process, fields, ..
                } if current.set.definitions.contains_key(&process) => {
                    Some(RuleChoice { process, fields })
                }
                Effect::Open { process, .. } => {
                    tracing::warn!(
                        rule,
                        process,
                        "an alert routing rule chose an unknown process; the routes decide"
                    );
                    None
                }
                _ => None,
            })
    }

    async fn note(&self, actor: &Actor, number: &str, text: String) -> Result<(), ApiError> {
        let text = truncate_chars(&text, MAX_TEXT_LENGTH);
        self.apply(actor, number, Command::Comment { text }).await?;
        Ok(())
    }

    /// Finds a change in a blocking state of its schedule whose planned window covers
    /// `now` and which names configuration item `ci`.
    async fn covering_change(
        &self,
        set: &DefinitionSet,
        ci: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Record>, ApiError> {
        if set
            .get(CHANGE_PROCESS)
            .and_then(|d| d.schedule.as_ref())
            .is_none()
        {
            return Ok(None);
        }
        let mut filter = tend_store::RecordFilter {
            process: Some(CHANGE_PROCESS.to_owned()),
            open: Some(true),
            limit: tend_store::MAX_LIMIT,
            ..Default::default()
        };
        for _ in 0..20 {
            let page = self.store.list_records(&filter).await?;
            if let Some(found) = page
                .records
                .into_iter()
                .find(|record| covers(set, record, ci, now))
            {
                return Ok(Some(found));
            }
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
        Ok(None)
    }
}

/// Checks whether change `record` is in a blocking state, its window covers `now`, and it
/// names `ci`.
fn covers(set: &DefinitionSet, record: &Record, ci: &str, now: DateTime<Utc>) -> bool {
    let Some(schedule) = set.get(&record.process).and_then(|d| d.schedule.clone()) else {
        return false;
    };
    if !schedule.blocking_states.contains(&record.state) {
        return false;
    }
    let Some(window) = schedule.window(record) else {
        return false;
    };
    window.start <= now && now < window.end && schedule.cis(record).contains(&ci.to_lowercase())
}

fn describe_alert(source: &AlertSource, alert: &IncomingAlert, ci: Option<&str>) -> String {
    let mut text = format!(
        "alert `{}` of source `{}` (fingerprint {})",
        alert.alertname(),
        source.name,
        alert.fingerprint
    );
    if let Some(ci) = ci {
        text.push_str(&format!(" on {ci}"));
    }
    if let Some(summary) = alert.annotations.get("summary") {
        text.push_str(&format!(": {summary}"));
    }
    if let Some(at) = alert.starts_at {
        text.push_str(&format!("; starts at {}", at.to_rfc3339()));
    }
    if let Some(url) = &alert.generator_url {
        text.push_str(&format!("; {url}"));
    }
    text
}

fn unknown_source(set: &DefinitionSet, name: &str) -> ApiError {
    let known: Vec<&str> = set.alert_sources.keys().map(String::as_str).collect();
    ApiError::bad_request(
        "unknown_source",
        format!(
            "alert source `{name}` is not defined: add workflows/alerts/{name}.yaml or name {}",
            if known.is_empty() {
                "a source defined there".to_owned()
            } else {
                format!("one of {}", known.join(", "))
            }
        ),
        Some("source"),
    )
}

// ---- HTTP ----------------------------------------------------------------------------

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", post(generic).get(list))
        .route("/api/v1/alerts/alertmanager", post(alertmanager))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceQuery {
    #[serde(default)]
    source: Option<String>,
}

fn require_sender(caller: &Caller) -> Result<(), ApiError> {
    if caller.actor.is_admin() || caller.actor.has_role(Role::AlertSource) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "handing in alerts needs the admin or alert_source role: create a user with `--role alert_source` and give its token to the monitoring system".into(),
        ))
    }
}

/// The source a request names, or the only one defined.
fn source_name(
    state: &AppState,
    query: Result<Query<SourceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<String, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "{}: name the alert source, as in ?source=prometheus",
                rejection.body_text()
            ),
            Some("source"),
        )
    })?;
    let set = state.commands.engine.current().set.clone();
    match query.source {
        Some(name) if set.alert_sources.contains_key(&name) => Ok(name),
        Some(name) => Err(unknown_source(&set, &name)),
        None if set.alert_sources.len() == 1 => {
            Ok(set.alert_sources.keys().next().cloned().unwrap_or_default())
        }
        None => Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "name the alert source with ?source=NAME: {}",
                if set.alert_sources.is_empty() {
                    "none is defined, add one in workflows/alerts/NAME.yaml".to_owned()
                } else {
                    format!(
                        "one of {}",
                        set.alert_sources
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
            Some("source"),
        )),
    }
}

type Parser = fn(&Value) -> Result<Parsed, BadAlert>;

async fn take_batch(
    state: AppState,
    caller: Caller,
    query: Result<Query<SourceQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
    parse: Parser,
) -> Result<Response, ApiError> {
    require_sender(&caller)?;
    let source = source_name(&state, query)?;
    let body: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not JSON ({error}): send the alerts as a JSON object"),
            None,
        )
    })?;
    let (good, bad) = parse(&body).map_err(|problem| ApiError::BadRequest {
        code: "invalid_alerts",
        message: problem.message,
        field: (!problem.field.is_empty()).then_some(problem.field),
    })?;
    if good.is_empty() {
        let first = bad.first().cloned();
        let message = bad
            .iter()
            .map(|problem| format!("{}: {}", problem.field, problem.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::BadRequest {
            code: "invalid_alerts",
            message: format!("no alert was taken: {message}"),
            field: first.map(|problem| problem.field),
        });
    }
    let now = Utc::now();
    let mut results = Vec::new();
    for (index, alert) in &good {
        results.push(
            state
                .commands
                .take_alert(&source, *index, alert, now)
                .await?,
        );
    }
    let body = json!({
        "source": source,
        "accepted": results.len(),
        "results": results,
        "rejected": bad,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `POST /api/v1/alerts/alertmanager[?source=NAME]`: Alertmanager's webhook message.
/// 200 with what each alert did and the alerts that were not taken; 400 when none was.
pub async fn alertmanager(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SourceQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    take_batch(state, caller, query, body, parse_alertmanager).await
}

/// `POST /api/v1/alerts[?source=NAME]`: the generic form.
pub async fn generic(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SourceQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    take_batch(state, caller, query, body, parse_generic).await
}

/// `GET /api/v1/alerts`: the stored alerts, last seen first, for staff.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    if !caller.actor.is_staff() {
        return Err(ApiError::Forbidden(
            "the alert list is for staff: log in as a technician, process owner or admin".into(),
        ));
    }
    let alerts = state.commands.store.list_alerts(500).await?;
    Ok(axum::Json(json!({ "alerts": alerts })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_status_and_bad_alerts() {
        let body = json!({
            "status": "firing",
            "alerts": [
                {"labels": {"alertname": "A", "instance": "h:1"}},
                {"labels": {"instance": "h"}},
                {"status": "gone", "labels": {"alertname": "C"}},
                {"labels": {"alertname": "D"}, "startsAt": "yesterday"},
                {"labels": {"alertname": "E"}, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc"}
            ]
        });
        let (good, bad) = parse_alertmanager(&body).unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].1.status, "firing");
        assert_eq!(good[1].1.fingerprint, "abc");
        assert_eq!(good[1].1.ends_at, None);
        let fields: Vec<&str> = bad.iter().map(|b| b.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "alerts[1].labels.alertname",
                "alerts[2].status",
                "alerts[3].startsAt"
            ]
        );
    }

    #[test]
    fn fingerprint_ignores_label_order() {
        let a: BTreeMap<String, String> = [
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]
        .into();
        let b: BTreeMap<String, String> = [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]
        .into();
        assert_eq!(computed_fingerprint(&a), computed_fingerprint(&b));
        assert_eq!(computed_fingerprint(&a).len(), 16);
    }

    #[test]
    fn generic_form_is_strict() {
        let problem = parse_generic(&json!({"alerts": [], "x": 1})).unwrap_err();
        assert_eq!(problem.field, "x");
        let (_, bad) =
            parse_generic(&json!({"alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": "x"}]}))
                .unwrap();
        assert_eq!(bad[0].field, "alerts[0].startsAt");
    }
}
