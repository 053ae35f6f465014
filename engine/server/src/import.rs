//! `tend import-tickets`: labelled helpdesk tickets through the same command path as the
//! API, with a report of what the rules decided and how it agrees with the labels.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;
use tend_api::{Commands, NewRecord};
use tend_domain::{Actor, Fields};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::ImportArgs;

/// Translation of the data set's label codes to values of the incident definition.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Each code names one category, or a list when the data set's code covers several
    /// of Tend's categories. A rule category in the list agrees with the label.
    #[serde(default)]
    pub category: HashMap<String, OneOrMany>,
    #[serde(default)]
    pub urgency: HashMap<String, String>,
    #[serde(default)]
    pub impact: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, category: &str) -> bool {
        match self {
            OneOrMany::One(one) => one == category,
            OneOrMany::Many(many) => many.iter().any(|c| c == category),
        }
    }

    fn first(&self) -> String {
        match self {
            OneOrMany::One(one) => one.clone(),
            OneOrMany::Many(many) => many.first().cloned().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Row {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    impact: Option<String>,
}

/// Words of the body used as a title when a ticket has none.
const DERIVED_TITLE_WORDS: usize = 8;

enum Result {
    Imported {
        category: Option<String>,
        priority: Option<String>,
        label: Option<OneOrMany>,
    },
    Rejected {
        line: u64,
        reason: String,
    },
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let labels = match &args.labels {
        Some(path) => read_labels(path)?,
        None => Labels::default(),
    };
    let commands = crate::setup::commands(&args.store, &args.definitions).await?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&args.file)
        .with_context(|| format!("failed to open {}", args.file.display()))?;

    let labels = Arc::new(labels);
    let actor = Actor::system("import");
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut results = Vec::new();
    let started = Instant::now();
    for (index, row) in reader.deserialize::<Row>().enumerate() {
        // Line numbers count the header as line 1.
        let line = index as u64 + 2;
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                results.push(Result::Rejected {
                    line,
                    reason: format!("unreadable CSV row: {error}"),
                });
                continue;
            }
        };
        let permit = permits.clone().acquire_owned().await?;
        let commands = commands.clone();
        let labels = labels.clone();
        let actor = actor.clone();
        tasks.spawn(async move {
            let result = import_row(&commands, &actor, &labels, line, row).await;
            drop(permit);
            result
        });
        while let Some(done) = tasks.try_join_next() {
            results.push(done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        results.push(done?);
    }
    let elapsed = started.elapsed();
    print_report(&results, elapsed.as_secs_f64(), !labels.category.is_empty());
    Ok(ExitCode::SUCCESS)
}

fn read_labels(path: &Path) -> anyhow::Result<Labels> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the labels file {}", path.display()))?;
    tend_workflow::parse_yaml(path, &text).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid labels file:\n  {}", lines.join("\n  "))
    })
}

async fn import_row(
    commands: &Commands,
    actor: &Actor,
    labels: &Labels,
    line: u64,
    row: Row,
) -> Result {
    let body = row.body.trim().to_owned();
    let mut title = row.title.trim().to_owned();
    if title.is_empty() {
        title = body
            .split_whitespace()
            .take(DERIVED_TITLE_WORDS)
            .collect::<Vec<_>>()
            .join(" ");
    }
    if title.is_empty() {
        return Result::Rejected {
            line,
            reason: "the ticket has neither a title nor a body".into(),
        };
    }
    let mut fields = Fields::new();
    fields.insert("contact_type".into(), Value::String("email".into()));
    for (name, code, map) in [
        ("urgency", &row.urgency, &labels.urgency),
        ("impact", &row.impact, &labels.impact),
    ] {
        if let Some(value) = code.as_ref().and_then(|c| map.get(c.trim())) {
            fields.insert(name.into(), Value::String(value.clone()));
        }
    }
    let input = NewRecord {
        title,
        description: body,
        fields,
        idempotency_key: None,
        preset: Fields::new(),
    };
    match commands.create(actor, "incident", input).await {
        Ok((record, _)) => Result::Imported {
            category: record.field_str("category").map(str::to_owned),
            priority: record.field_str("priority").map(str::to_owned),
            label: row
                .category
                .as_ref()
                .and_then(|code| labels.category.get(code.trim()).cloned()),
        },
        Err(error) => Result::Rejected {
            line,
            reason: error.to_string(),
        },
    }
}

fn print_report(results: &[Result], seconds: f64, labelled: bool) {
    let mut per_category: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_priority: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_label: BTreeMap<String, usize> = BTreeMap::new();
    let mut agree = 0usize;
    let mut imported = 0usize;
    let mut rejected = Vec::new();
    for result in results {
        match result {
            Result::Imported {
                category,
                priority,
                label,
            } => {
                imported += 1;
                let category = category.clone().unwrap_or_else(|| "(none)".into());
                *per_category.entry(category.clone()).or_default() += 1;
                *per_priority
                    .entry(priority.clone().unwrap_or_else(|| "(none)".into()))
                    .or_default() += 1;
                if label
                    .as_ref()
                    .is_some_and(|label| label.contains(&category))
                {
                    agree += 1;
                }
                let label = label
                    .as_ref()
                    .map_or_else(|| "(unmapped)".to_owned(), OneOrMany::first);
                *per_label.entry(label).or_default() += 1;
            }
            Result::Rejected { line, reason } => rejected.push((*line, reason)),
        }
    }
    rejected.sort();
    let rate = if seconds > 0.0 {
        imported as f64 / seconds
    } else {
        0.0
    };
    println!(
        "imported {imported} tickets, rejected {} ({seconds:.1} s, {rate:.0} tickets per second)",
        rejected.len()
    );
    for (line, reason) in &rejected {
        println!("  rejected line {line}: {reason}");
    }
    println!("records per category:");
    for (category, count) in &per_category {
        println!("  {category:<16} {count:>6}");
    }
    println!("records per priority:");
    for (priority, count) in &per_priority {
        println!("  {priority:<16} {count:>6}");
    }
    if labelled && imported > 0 {
        let majority = per_label
            .iter()
            .filter(|(label, _)| label.as_str() != "(unmapped)")
            .map(|(_, count)| *count)
            .max()
            .unwrap_or(0);
        println!(
            "category agreement with the labels: {agree} of {imported} ({:.1} %); the most common label alone covers {:.1} %",
            100.0 * agree as f64 / imported as f64,
            100.0 * majority as f64 / imported as f64
        );
    }
}
