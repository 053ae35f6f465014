//! `tend migrate-records`: moves open records pinned to older definition versions to the
//! current version of the definitions directory, and reports those that do not fit it.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use tend_domain::{JournalEvent, Record};
use tend_store::{RecordScan, Store};
use tend_workflow::{Definition, DefinitionSet};

use crate::cli::MigrateArgs;
use crate::setup::{load_definitions, open_engine, open_store};

/// Actor name of the journal entries that a migration writes.
const MIGRATION_ACTOR: &str = "migrate-records";

/// Records read per page of the scan.
const PAGE: u64 = 200;

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.store.url()).await?;
    let dir = &args.definitions.definitions;
    // A dry run writes nothing, not even the definition version.
    let set: Arc<DefinitionSet> = if args.dry_run {
        Arc::new(load_definitions(dir)?.0)
    } else {
        open_engine(store.clone(), dir).await?.definitions()
    };
    if let Some(process) = &args.process
        && set.get(process).is_none()
    {
        let known: Vec<&str> = set.definitions.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown process `{process}`: use one of {}",
            known.join(", ")
        );
    }

    let verb = if args.dry_run { "would move" } else { "moved" };
    let mut counts = Counts::default();
    let mut scan = RecordScan {
        process: args.process.clone(),
        open_only: true,
        not_version: Some(set.version.clone()),
        after_id: 0,
        limit: PAGE,
    };
    loop {
        let page = store.scan_records(&scan).await?;
        let Some(last) = page.last() else { break };
        scan.after_id = last.id;
        for record in page {
            let from = record.definition_version.clone();
            let Some(definition) = set.get(&record.process) else {
                counts.misfits += 1;
                println!(
                    "{}: not moved: process `{}` is not in the definitions of version {}",
                    record.number, record.process, set.version
                );
                continue;
            };
            let problems = tend_workflow::misfits(definition, &record);
            if !problems.is_empty() {
                counts.misfits += 1;
                println!(
                    "{} ({}, state {}, version {from}): not moved: {}",
                    record.number,
                    record.process,
                    record.state,
                    problems.join("; ")
                );
                continue;
            }
            if !args.dry_run
                && let Err(error) = migrate(&store, &set, definition, record.clone()).await
            {
                counts.failed += 1;
                println!("{}: not moved: {error}", record.number);
                continue;
            }
            counts.moved += 1;
            println!(
                "{} ({}, state {}): {verb} from version {from} to {}",
                record.number, record.process, record.state, set.version
            );
        }
    }

    let total = counts.moved + counts.misfits + counts.failed;
    let scope = args
        .process
        .as_ref()
        .map(|process| format!(" of process {process}"))
        .unwrap_or_default();
    println!(
        "{total} open record(s){scope} on older versions than {}: {} {verb}, {} not moved because they do not fit, {} failed{}",
        set.version,
        counts.moved,
        counts.misfits,
        counts.failed,
        if args.dry_run {
            "; nothing was written (dry run)"
        } else {
            ""
        }
    );
    Ok(if counts.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Default)]
struct Counts {
    moved: usize,
    misfits: usize,
    failed: usize,
}

/// Pins `record` to `version` in one write, with a `migrated` journal entry, and plans its
/// automatic transitions anew under `definition`. Fails with a conflict when the record
/// changed since it was read.
/// The record's SLA clocks are computed again under the new version's policies and
/// calendars, from its whole journal.
async fn migrate(
    store: &Store,
    set: &std::sync::Arc<tend_workflow::DefinitionSet>,
    definition: &std::sync::Arc<Definition>,
    record: Record,
) -> anyhow::Result<()> {
    let version = set.version.as_str();
    let mut moved = record.clone();
    moved.definition_version = version.to_owned();
    moved.open = definition.is_open_state(&moved.state);
    moved.updated_at = Utc::now();
    let events = vec![JournalEvent::Migrated {
        from_version: record.definition_version.clone(),
        to_version: version.to_owned(),
    }];
    let plans: Vec<tend_store::PlannedTimer> = tend_workflow::plan_timers(definition, &moved)
        .into_iter()
        .map(|plan| tend_store::PlannedTimer {
            transition: plan.transition,
            due_at: plan.due_at,
        })
        .collect();
    let (set, definition) = (set.clone(), definition.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                let mut events = events;
                let clocks = tend_api::clocks::prepare(
                    tx,
                    &set,
                    &definition,
                    &moved,
                    &events,
                    moved.updated_at,
                )
                .await?;
                events.extend(clocks.events.iter().cloned());
                let stored =
                    tend_store::update_record(tx, &moved, MIGRATION_ACTOR, &events).await?;
                clocks.store(tx, &stored).await?;
                tend_store::replace_timers(tx, stored.id, &plans, stored.state_changed_at).await
            })
        })
        .await?;
    Ok(())
}
