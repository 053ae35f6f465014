//! `tend import-inventory`: inventory files into the CMDB through the same import as
//! `POST /api/v1/inventory`, with a summary of what each item changed or would change.
//! `tend cmdb audit`: the CMDB audit of `GET /api/v1/cmdb/audit`, as a summary.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::Value;
use tend_api::inventory::{self, ImportError, ImportReport, ItemReport};
use tend_domain::Actor;

use crate::cli::{CmdbAuditArgs, ImportInventoryArgs};

/// Imports each file; exits 1 when a file cannot be read or an item conflicts with the
/// CMDB, so that scripts notice.
pub async fn run(args: ImportInventoryArgs) -> anyhow::Result<ExitCode> {
    let commands = crate::setup::commands(&args.store, &args.definitions).await?;
    let actor = Actor::system("import");
    let started = Instant::now();
    let mut failed = 0usize;
    let mut items = 0usize;
    for file in &args.files {
        let bytes = read(file)?;
        let result = inventory::import(
            &commands,
            &actor,
            &bytes,
            tend_inventory::DEFAULT_MAX_BYTES,
            args.dry_run,
        )
        .await;
        match result {
            Ok(report) => {
                items += report.items.len();
                failed += report.count("conflict") + report.count("rejected");
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print_report(file, &report);
                }
            }
            Err(ImportError::Unreadable(unreadable)) => {
                failed += 1;
                let kept = unreadable
                    .import_id
                    .map(|id| format!(" (kept as import {id})"))
                    .unwrap_or_default();
                eprintln!("{}: {}{kept}", file.display(), unreadable.error);
            }
            Err(ImportError::Prolog { .. }) => {
                failed += 1;
                eprintln!(
                    "{}: this is an agent's first contact (PROLOG) and carries no inventory",
                    file.display()
                );
            }
            Err(ImportError::Api(error)) => return Err(anyhow::anyhow!(error)),
        }
    }
    if !args.json {
        let verb = if args.dry_run { "planned" } else { "imported" };
        println!(
            "{verb} {items} item(s) from {} file(s) in {:.2} s; {failed} not applied",
            args.files.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("failed to read the inventory from standard input")?;
        return Ok(bytes);
    }
    std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))
}

fn print_report(file: &Path, report: &ImportReport) {
    let dry = if report.dry_run { " (dry run)" } else { "" };
    println!(
        "{}: {} document from {}{}{dry}",
        file.display(),
        serde_json::to_value(report.format)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default(),
        report.source,
        report
            .device_id
            .as_deref()
            .map(|id| format!(", device {id}"))
            .unwrap_or_default(),
    );
    for item in &report.items {
        print_item(item);
    }
}

fn print_item(item: &ItemReport) {
    let plan = &item.plan;
    let ci = plan
        .ci_id
        .map(|id| format!(" (CI {id})"))
        .unwrap_or_default();
    let by = plan
        .matched_by
        .as_deref()
        .map(|key| format!(", matched by {key}"))
        .unwrap_or_default();
    println!("  {} {} `{}`{ci}{by}", plan.action, plan.class, plan.name);
    if let Some(message) = &plan.message {
        println!("    {message}");
    }
    for (attribute, change) in &plan.changes {
        println!(
            "    {attribute}: {} -> {}",
            show(change.get("before")),
            show(change.get("after"))
        );
    }
    for kept in &plan.kept {
        println!(
            "    {attribute} kept at {}, reported {}: {}",
            show(Some(&kept.current)),
            show(Some(&kept.reported)),
            kept.reason,
            attribute = kept.attribute
        );
    }
    let software = &plan.software;
    if !software.added.is_empty() || !software.removed.is_empty() {
        println!(
            "    software: {} reported, {} linked ({} new packages), {} unlinked",
            software.reported,
            software.added.len(),
            software.new_packages,
            software.removed.len()
        );
    }
    if let Some(rules) = &item.rules {
        for (attribute, value) in &rules.set {
            println!("    rule set {attribute}: {}", show(Some(value)));
        }
        for (kind, target) in &rules.related {
            println!("    rule related {kind} CI {target}");
        }
        for skipped in &rules.skipped {
            println!("    rule not applied: {skipped}");
        }
    }
    let connections = &plan.connections;
    if !connections.added.is_empty() || connections.removed > 0 {
        println!(
            "    connections: {} added, {} removed, {} MAC addresses unknown",
            connections.added.len(),
            connections.removed,
            connections.unknown_macs
        );
    }
}

fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Runs the CMDB audit and prints it; with `--open-tasks`, opens its tasks as the
/// `audit` system actor.
pub async fn audit(args: CmdbAuditArgs) -> anyhow::Result<ExitCode> {
    let commands = crate::setup::commands(&args.store, &args.definitions).await?;
    let schema = commands.engine.definitions().cmdb.clone();
    let report = tend_api::cmdb_audit::audit(
        commands.store.db(),
        &schema,
        args.stale_days,
        args.limit.max(1),
        chrono::Utc::now(),
    )
    .await
    .map_err(|error| anyhow::anyhow!(error))?;
    let tasks = if args.open_tasks {
        tend_api::cmdb_audit::open_tasks(&commands, &schema, &Actor::system("audit"), &report)
            .await
            .map_err(|error| anyhow::anyhow!(error))?
    } else {
        Vec::new()
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "report": report, "tasks": tasks }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "CIs not seen by discovery for {} days: {}",
        report.stale_after_days, report.stale.total
    );
    for item in &report.stale.items {
        let seen = item
            .last_seen_at
            .map(|at| format!("last seen {}", at.format("%Y-%m-%d %H:%M")))
            .unwrap_or_else(|| "never seen".to_owned());
        println!("  {}  {seen}", ci_line(&item.ci));
    }
    println!(
        "people-owned attributes that discovery reports differently: {}",
        report.disagreements.total
    );
    for item in &report.disagreements.items {
        println!(
            "  {}  {}: {} here, {} reports {}",
            ci_line(&item.ci),
            item.attribute,
            show(Some(&item.value)),
            item.source,
            show(Some(&item.reported))
        );
    }
    println!("CIs with no relationship: {}", report.orphans.total);
    for ci in &report.orphans.items {
        println!("  {}", ci_line(ci));
    }
    println!(
        "inventory imports in conflict: {}",
        report.import_conflicts.total
    );
    for entry in &report.import_conflicts.items {
        println!(
            "  import {}  {}",
            entry["id"],
            entry["message"].as_str().unwrap_or_default()
        );
    }
    for task in &tasks {
        println!(
            "opened {} for {} ({})",
            task.number, task.finding, task.count
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn ci_line(ci: &Value) -> String {
    format!(
        "CI {} {} `{}`",
        ci["id"],
        ci["class"].as_str().unwrap_or_default(),
        ci["name"].as_str().unwrap_or_default()
    )
}
