//! `tend replay-log`: replays a ServiceNow incident event log (one CSV row per update)
//! through Tend's incident definition, as the commands a technician would have given, at
//! the log's own timestamps.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tend_api::{Commands, NewRecord};
use tend_domain::{Actor, Command, Fields, Record, Role};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::ReplayArgs;

/// Incidents replayed at once; each incident's own rows stay in order.
const CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Deserialize)]
struct Row {
    number: String,
    incident_state: String,
    opened_by: String,
    opened_at: String,
    sys_updated_by: String,
    sys_updated_at: String,
    caller_id: String,
    contact_type: String,
    category: String,
    subcategory: String,
    cmdb_ci: String,
    impact: String,
    urgency: String,
    priority: String,
    assignment_group: String,
    assigned_to: String,
    closed_code: String,
}

/// Returns the trimmed value, or `None` for `?`, which the log writes for a missing value.
fn present(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty() && value != "?").then_some(value)
}

fn parse_time(value: &str) -> anyhow::Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value.trim(), "%d-%m-%Y %H:%M")
        .map(|time| time.and_utc())
        .with_context(|| format!("invalid time `{value}`: expected DD-MM-YYYY HH:MM"))
}

fn level(value: &str) -> anyhow::Result<&'static str> {
    match value.split(" - ").next().map(str::trim) {
        Some("1") => Ok("high"),
        Some("2") => Ok("medium"),
        Some("3") => Ok("low"),
        _ => anyhow::bail!(
            "invalid impact or urgency `{value}`: expected 1 - High, 2 - Medium or 3 - Low"
        ),
    }
}

fn priority(value: &str) -> Option<String> {
    let digit = value.split(" - ").next()?.trim();
    matches!(digit, "1" | "2" | "3" | "4").then(|| format!("P{digit}"))
}

fn state(value: &str) -> anyhow::Result<&'static str> {
    Ok(match value.trim() {
        "New" => "new",
        "Active" => "in_progress",
        "Awaiting User Info" => "awaiting_user_info",
        "Awaiting Problem" => "awaiting_problem",
        "Awaiting Vendor" => "awaiting_vendor",
        "Awaiting Evidence" => "awaiting_evidence",
        "Resolved" => "resolved",
        "Closed" => "closed",
        other => anyhow::bail!("unknown incident state `{other}` in the log"),
    })
}

fn technician(name: &str) -> Actor {
    Actor::new(present(name).unwrap_or("replay"), vec![Role::Technician])
}

struct Replayed {
    /// Tend's number of the replayed record.
    number: String,
    priority_agrees: bool,
    /// Rows after which the record's priority equalled the row's priority.
    rows_agreeing: usize,
    rows: usize,
}

/// A history that could not be replayed to its end.
struct Rejected {
    reason: String,
    /// The Tend record as far as the replay got, or `None` when creating it failed.
    partial: Option<Record>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let commands = crate::setup::commands(&args.store, &args.definitions).await?;
    let mut reader = csv::Reader::from_path(&args.file)
        .with_context(|| format!("failed to open {}", args.file.display()))?;
    let mut histories: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut order = Vec::new();
    for (index, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.with_context(|| format!("unreadable row at line {}", index + 2))?;
        if !histories.contains_key(&row.number) {
            order.push(row.number.clone());
        }
        histories.entry(row.number.clone()).or_default().push(row);
    }

    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for number in order {
        let rows = histories.remove(&number).unwrap_or_default();
        let commands = commands.clone();
        let permit = permits.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let result = replay(&commands, &rows).await;
            drop(permit);
            (number, result)
        });
    }
    let mut replayed = Vec::new();
    let mut rejected = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (number, result) = done?;
        match result {
            Ok(outcome) => replayed.push(outcome),
            Err(rejection) => rejected.push((number, rejection)),
        }
    }
    rejected.sort_by(|a, b| a.0.cmp(&b.0));
    let agreeing = replayed.iter().filter(|r| r.priority_agrees).count();
    let rows: usize = replayed.iter().map(|r| r.rows).sum();
    let rows_agreeing: usize = replayed.iter().map(|r| r.rows_agreeing).sum();
    println!(
        "incidents replayed: {}, histories rejected: {}",
        replayed.len(),
        rejected.len()
    );
    for (number, rejection) in &rejected {
        println!("  rejected {number}: {}", rejection.reason);
        match &rejection.partial {
            Some(record) => println!(
                "    the partial history is Tend record {}, left in state `{}`",
                record.number, record.state
            ),
            None => println!("    no Tend record was created for it"),
        }
    }
    if !replayed.is_empty() {
        println!(
            "priority agreement: {agreeing} of {} incidents ({:.1} %) end with the log's priority",
            replayed.len(),
            100.0 * agreeing as f64 / replayed.len() as f64
        );
        println!(
            "priority agreement per event row: {rows_agreeing} of {rows} rows ({:.1} %)",
            100.0 * rows_agreeing as f64 / rows.max(1) as f64
        );
        for outcome in replayed.iter().filter(|r| !r.priority_agrees).take(10) {
            println!("  priority differs on {}", outcome.number);
        }
    }
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Fields a row sets directly: assignment, impact and urgency.
fn row_fields(row: &Row) -> anyhow::Result<Fields> {
    let mut fields = Fields::new();
    fields.insert("impact".into(), Value::String(level(&row.impact)?.into()));
    fields.insert("urgency".into(), Value::String(level(&row.urgency)?.into()));
    if let Some(group) = present(&row.assignment_group) {
        fields.insert("assignment_group".into(), Value::String(group.into()));
    }
    if let Some(assignee) = present(&row.assigned_to) {
        fields.insert("assignee".into(), Value::String(assignee.into()));
    }
    Ok(fields)
}

async fn replay(commands: &Commands, rows: &[Row]) -> Result<Replayed, Rejected> {
    let mut record = create(commands, rows).await.map_err(|error| Rejected {
        reason: format!("{error:#}"),
        partial: None,
    })?;
    match follow(commands, rows, &mut record).await {
        Ok(rows_agreeing) => {
            let expected = rows.last().and_then(|row| priority(&row.priority));
            Ok(Replayed {
                number: record.number.clone(),
                priority_agrees: expected.is_some()
                    && record.field_str("priority") == expected.as_deref(),
                rows_agreeing,
                rows: rows.len(),
            })
        }
        Err(error) => Err(Rejected {
            reason: format!("{error:#}"),
            partial: Some(record),
        }),
    }
}

/// Creates the Tend record of a history from its first row, at the log's opening time.
async fn create(commands: &Commands, rows: &[Row]) -> anyhow::Result<Record> {
    let first = rows.first().context("empty history")?;
    let mut fields = row_fields(first)?;
    let contact = match first.contact_type.trim() {
        "Phone" => "phone",
        "Email" => "email",
        "Self service" => "self_service",
        "Direct opening" => "walk_in",
        _ => "phone",
    };
    fields.insert("contact_type".into(), Value::String(contact.into()));

    if let Some(caller) = present(&first.caller_id) {
        fields.insert("requester".into(), Value::String(caller.into()));
    }
    if let Some(ci) = present(&first.cmdb_ci) {
        fields.insert("ci".into(), Value::String(ci.into()));
    }
    let subcategory = [present(&first.category), present(&first.subcategory)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    if !subcategory.is_empty() {
        fields.insert("subcategory".into(), Value::String(subcategory.clone()));
    }

    let input = NewRecord {
        title: format!("{} (replayed from the event log)", first.number),
        description: format!(
            "Replayed incident {}; source category {subcategory}.",
            first.number
        ),
        fields,
        idempotency_key: None,
        preset: Fields::new(),
    };
    let opened_at = parse_time(&first.opened_at)?;
    let (record, _) = commands
        .create_at(&technician(&first.opened_by), "incident", input, opened_at)
        .await
        .map_err(|error| anyhow::anyhow!("create failed: {error}"))?;
    Ok(record)
}

/// Applies every row of a history to `record`, which keeps the last state written when a
/// row fails. Returns the number of rows after which the record's priority equalled the
/// row's priority.
async fn follow(commands: &Commands, rows: &[Row], record: &mut Record) -> anyhow::Result<usize> {
    let definition = commands
        .engine
        .definition("incident")
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut rows_agreeing = 0;
    for row in rows {
        let at = parse_time(&row.sys_updated_at)?;
        let actor = technician(&row.sys_updated_by);
        let changes: Fields = row_fields(row)?
            .into_iter()
            .filter(|(name, value)| record.fields.get(name) != Some(value))
            .collect();
        if !changes.is_empty() {
            *record = apply(
                commands,
                &actor,
                record,
                Command::Update {
                    title: None,
                    description: None,
                    fields: changes,
                },
                at,
            )
            .await?;
        }
        if record.field_str("priority").map(str::to_owned) == priority(&row.priority) {
            rows_agreeing += 1;
        }
        let target = state(&row.incident_state)?;
        if record.state == target {
            continue;
        }
        let path =
            tend_workflow::path_between(&definition, &record.state, target).with_context(|| {
                format!("no transition leads from `{}` to `{target}`", record.state)
            })?;
        for step in path {
            let mut fields = Fields::new();
            if step.requires.iter().any(|f| f == "resolution_code")
                && !tend_workflow::values::is_present(record.fields.get("resolution_code"))
            {
                let code = present(&row.closed_code).unwrap_or("not recorded in the source log");
                fields.insert("resolution_code".into(), Value::String(code.into()));
            }
            let command = Command::Transition {
                name: step.name.clone(),
                fields,
                comment: Some(format!(
                    "Replayed from the event log row of {}.",
                    row.sys_updated_at.trim()
                )),
            };
            *record = apply(commands, &actor, record, command, at).await?;
        }
    }
    Ok(rows_agreeing)
}

async fn apply(
    commands: &Commands,
    actor: &Actor,
    record: &Record,
    command: Command,
    at: DateTime<Utc>,
) -> anyhow::Result<Record> {
    let kind = match &command {
        Command::Transition { name, .. } => format!("transition `{name}`"),
        other => other.kind().to_owned(),
    };
    commands
        .apply_at(actor, &record.number, command, Some(at))
        .await
        .map_err(|error| anyhow::anyhow!("{kind} from `{}` failed: {error}", record.state))
}
