//! `tend replay --definitions DIR`: runs the recorded journals of stored records through a
//! changed definition set and reports where their path would differ. Nothing is written:
//! the state machine and the rules are pure, and the store is only read.
//!
//! A journal records events, not commands, so each command is rebuilt from the entries
//! that one write produced, which share their time and actor. A `created` entry becomes a
//! create, and a `transitioned` entry a transition with the fields a person set and the
//! comment. Field and text changes by a person become an update, and a lone comment a
//! comment. Link and migration entries do not pass through the definitions and are
//! skipped.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tend_domain::{Actor, Command, Fields, JournalEntry, JournalEvent, Record};
use tend_store::{RecordScan, Store};
use tend_workflow::{Context, Definition, DefinitionSet, Outcome, RuleRunner};

use crate::cli::JournalReplayArgs;
use crate::setup::{load_definitions, open_store};

/// Records read per page of the scan.
const PAGE: u64 = 200;

pub async fn run(args: JournalReplayArgs) -> anyhow::Result<ExitCode> {
    let (set, host) = load_definitions(&args.definitions)?;
    if let Some(process) = &args.process
        && set.get(process).is_none()
    {
        let known: Vec<&str> = set.definitions.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown process `{process}` in {}: use one of {}",
            args.definitions.display(),
            known.join(", ")
        );
    }
    if args.limit == Some(0) {
        anyhow::bail!("--limit is 0: give a positive number of records, or leave it out");
    }
    let store = open_store(&args.store.url()).await?;
    println!(
        "Replaying stored journals through the definitions in {} (version {})",
        args.definitions.display(),
        set.version
    );

    let mut replay = Replay {
        set: &set,
        rules: host.as_ref(),
        store: &store,
        actors: HashMap::new(),
        counts: Counts::default(),
    };
    let mut scan = RecordScan {
        process: args.process.clone(),
        open_only: false,
        not_version: None,
        after_id: 0,
        limit: PAGE,
    };
    'pages: loop {
        let page = store.scan_records(&scan).await?;
        let Some(last) = page.last() else { break };
        scan.after_id = last.id;
        for record in page {
            if args
                .limit
                .is_some_and(|limit| replay.counts.records >= limit)
            {
                break 'pages;
            }
            let journal = store.journal(record.id).await?;
            let differences = replay.record(&record, &journal).await?;
            replay.counts.records += 1;
            if differences.is_empty() {
                continue;
            }
            replay.counts.differing += 1;
            println!(
                "{} ({}, state {}, version {}):",
                record.number, record.process, record.state, record.definition_version
            );
            for line in differences {
                println!("  {line}");
            }
        }
    }

    let counts = &replay.counts;
    println!(
        "{} record(s) replayed in {} step(s): {} would take another path ({} rejected step(s), {} other state(s), {} other rule field value(s), {} other recommendation(s), {} other approval request(s), {} other rule failure(s)), {} not replayed; nothing was written",
        counts.records,
        counts.steps,
        counts.differing,
        counts.rejected,
        counts.states,
        counts.fields,
        counts.recommendations,
        counts.approvals,
        counts.rule_failures,
        counts.skipped,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Counts {
    records: u64,
    steps: u64,
    differing: u64,
    rejected: u64,
    states: u64,
    fields: u64,
    recommendations: u64,
    approvals: u64,
    rule_failures: u64,
    skipped: u64,
}

struct Replay<'a> {
    set: &'a DefinitionSet,
    rules: &'a dyn RuleRunner,
    store: &'a Store,
    /// Actors by user name: users with their current roles, and system actors for names
    /// without a user (such as `timer`).
    actors: HashMap<String, Actor>,
    counts: Counts,
}

/// The journal entries of one write: same time, same actor, consecutive.
struct Step<'j> {
    at: DateTime<Utc>,
    actor: &'j str,
    events: Vec<&'j JournalEvent>,
}

/// Changes that rules made in one step.
#[derive(Debug, Default, PartialEq)]
struct Effects {
    /// Last value each rule set per field, with the rule.
    fields: BTreeMap<String, (Value, String)>,
    /// Recommended actions with their parameters.
    recommendations: BTreeMap<String, Value>,
    /// Rules that failed.
    failures: BTreeMap<String, String>,
    /// Approvers asked and approvals needed, when the write opened an approval round.
    approval: Option<(Vec<String>, i64)>,
}

impl Replay<'_> {
    /// Replays one record's journal and returns one line per difference.
    async fn record(
        &mut self,
        record: &Record,
        journal: &[JournalEntry],
    ) -> anyhow::Result<Vec<String>> {
        let mut differences = Vec::new();
        let Some(definition) = self.set.get(&record.process).cloned() else {
            self.counts.rejected += 1;
            differences.push(format!(
                "process `{}` is not in the changed definitions, so no step can be replayed",
                record.process
            ));
            return Ok(differences);
        };
        let steps = steps_of(journal);
        let starts_with_create = steps.first().is_some_and(|step| {
            step.events
                .iter()
                .any(|event| matches!(event, JournalEvent::Created { .. }))
        });
        if !starts_with_create {
            self.counts.skipped += 1;
            differences
                .push("not replayed: the journal does not start with the record's creation".into());
            return Ok(differences);
        }

        let mut replayed: Option<Record> = None;
        let mut recorded_state = String::new();
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            let actor = self.actor(step.actor).await?;
            let Some(command) = command_of(step, &definition, &actor) else {
                continue;
            };
            self.counts.steps += 1;
            let label = format!(
                "step {} ({} by {} at {})",
                index + 1,
                describe(&command),
                step.actor,
                step.at.format("%Y-%m-%d %H:%M:%S")
            );
            for event in &step.events {
                match event {
                    JournalEvent::Created { state, .. } => recorded_state = state.clone(),
                    JournalEvent::Transitioned { to, .. } => recorded_state = to.clone(),
                    _ => {}
                }
            }
            let context = Context {
                definition: &definition,
                version: &self.set.version,
                rules: self.rules,
                actor: &actor,
                now: step.at,
                groups: &self.set.groups,
                links: &[],
                cmdb: None,
            };
            // The write that ended an approval round took its transition without asking again.
            let completes_round = step
                .events
                .iter()
                .any(|event| matches!(event, JournalEvent::ApprovalCompleted { .. }));
            let decided = match (&command, replayed.as_ref()) {
                (Command::Transition { name, comment, .. }, Some(record)) if completes_round => {
                    tend_workflow::execute_approved(&context, record, name, comment.as_deref())
                }
                _ => tend_workflow::execute(&context, replayed.as_ref(), &command),
            };
            let outcome = match decided {
                Ok(outcome) => outcome,
                Err(rejection) => {
                    self.counts.rejected += 1;
                    let later = total - index - 1;
                    let rest = if later > 0 {
                        format!("; the {later} later step(s) were not replayed")
                    } else {
                        String::new()
                    };
                    differences.push(format!(
                        "{label}: rejected ({}): {rejection}{rest}",
                        rejection.code()
                    ));
                    return Ok(differences);
                }
            };
            let recorded = effects_of(step.events.iter().copied());
            let now = effects_of(outcome.events.iter());
            self.compare(&label, &recorded, &now, &mut differences);
            let mut next = after(outcome, record);
            if next.state != recorded_state {
                self.counts.states += 1;
                differences.push(format!(
                    "{label}: reaches state `{}` where the record reached `{recorded_state}`",
                    next.state
                ));
            }
            next.number = record.number.clone();
            replayed = Some(next);
        }
        Ok(differences)
    }

    /// Adds a line per rule field value, recommendation and rule failure that differs.
    fn compare(
        &mut self,
        label: &str,
        recorded: &Effects,
        replayed: &Effects,
        differences: &mut Vec<String>,
    ) {
        let fields = recorded.fields.keys().chain(replayed.fields.keys());
        let mut seen = Vec::new();
        for field in fields {
            if seen.contains(&field) {
                continue;
            }
            seen.push(field);
            let before = recorded.fields.get(field);
            let now = replayed.fields.get(field);
            if before.map(|(value, _)| value) == now.map(|(value, _)| value) {
                continue;
            }
            self.counts.fields += 1;
            differences.push(format!(
                "{label}: rules set `{field}` to {} where they set {}",
                set_by(now),
                set_by(before)
            ));
        }
        if recorded.recommendations != replayed.recommendations {
            self.counts.recommendations += 1;
            differences.push(format!(
                "{label}: rules recommend {} where they recommended {}",
                actions(&replayed.recommendations),
                actions(&recorded.recommendations)
            ));
        }
        if recorded.approval != replayed.approval {
            self.counts.approvals += 1;
            let asked = |approval: &Option<(Vec<String>, i64)>| match approval {
                Some((approvers, required)) => {
                    format!("asks {} ({required} needed)", approvers.join(", "))
                }
                None => "asks nobody for approval".to_owned(),
            };
            differences.push(format!(
                "{label}: {} where it {}",
                asked(&replayed.approval),
                asked(&recorded.approval).replacen("asks", "asked", 1)
            ));
        }
        for (rule, error) in &replayed.failures {
            if !recorded.failures.contains_key(rule) {
                self.counts.rule_failures += 1;
                differences.push(format!("{label}: rule {rule} fails: {error}"));
            }
        }
    }

    async fn actor(&mut self, name: &str) -> anyhow::Result<Actor> {
        if let Some(actor) = self.actors.get(name) {
            return Ok(actor.clone());
        }
        let actor = match self.store.find_user(name).await? {
            Some(user) => user.actor(),
            None => Actor::system(name),
        };
        self.actors.insert(name.to_owned(), actor.clone());
        Ok(actor)
    }
}

/// Returns the record after an accepted step; a create gets the stored record's number.
fn after(outcome: Outcome, stored: &Record) -> Record {
    let mut record = outcome.record;
    record.id = stored.id;
    record
}

/// Splits a journal into the entries of each write: entries of one time and actor, where
/// a second transition (or approval request) starts a new write. Follow-ons of rules run
/// at the time of the command that asked for them and under the same rule actor, so two
/// chained follow-ons would otherwise read as one write.
fn steps_of(journal: &[JournalEntry]) -> Vec<Step<'_>> {
    let moves = |event: &JournalEvent| {
        matches!(
            event,
            JournalEvent::Transitioned { .. } | JournalEvent::ApprovalRequested { .. }
        )
    };
    let mut steps: Vec<Step<'_>> = Vec::new();
    for entry in journal {
        match steps.last_mut() {
            Some(step)
                if step.at == entry.at
                    && step.actor == entry.actor
                    && !(moves(&entry.event) && step.events.iter().any(|e| moves(e))) =>
            {
                step.events.push(&entry.event);
            }
            _ => steps.push(Step {
                at: entry.at,
                actor: &entry.actor,
                events: vec![&entry.event],
            }),
        }
    }
    steps
}

/// Rebuilds the command of one write from its journal entries, or `None` for a write that
/// did not pass through the definitions (links, migrations).
fn command_of(step: &Step<'_>, definition: &Definition, actor: &Actor) -> Option<Command> {
    let mut by_person = Fields::new();
    let mut title = None;
    let mut description = None;
    let mut comment = None;
    let mut transition = None;
    for event in &step.events {
        match event {
            JournalEvent::Created {
                title,
                description,
                fields,
                ..
            } => {
                let (fields, preset) = create_input(fields, definition, actor);
                return Some(Command::Create {
                    title: title.clone(),
                    description: description.clone(),
                    fields,
                    preset,
                });
            }
            JournalEvent::FieldChanged {
                field,
                to,
                rule: None,
                ..
            } if transition.is_none() => {
                by_person.insert(field.clone(), to.clone());
            }
            JournalEvent::TextChanged { field, to, .. } => match field.as_str() {
                "title" => title = Some(to.clone()),
                "description" => description = Some(to.clone()),
                _ => {}
            },
            JournalEvent::Transitioned {
                transition: name, ..
            } => transition = Some(name.clone()),
            // A transition that needs approval opened a round instead of moving the record.
            JournalEvent::ApprovalRequested {
                transition: name, ..
            } => transition = Some(name.clone()),
            JournalEvent::Commented { text } => comment = Some(text.clone()),
            _ => {}
        }
    }
    if let Some(name) = transition {
        return Some(Command::Transition {
            name,
            fields: by_person,
            comment,
        });
    }
    if !by_person.is_empty() || title.is_some() || description.is_some() {
        return Some(Command::Update {
            title,
            description,
            fields: by_person,
        });
    }
    comment.map(|text| Command::Comment { text })
}

/// Returns the fields given to a create, as far as the `created` entry shows them: those
/// the person gave, and those the channel preset (a catalog order's item and approvers),
/// which are the values the actor may not set. A field's default and the requester when it
/// is the actor are left out, because the engine fills them in again. Fields that the
/// definition no longer declares stay with the person's, so that the create reports them.
fn create_input(fields: &Fields, definition: &Definition, actor: &Actor) -> (Fields, Fields) {
    let mut given = Fields::new();
    let mut preset = Fields::new();
    for (name, value) in fields {
        if name.as_str() == "requester" && value.as_str() == Some(actor.name.as_str()) {
            continue;
        }
        match definition.fields.get(name.as_str()) {
            None => {
                given.insert(name.clone(), value.clone());
            }
            Some(field) if field.default.as_ref() == Some(value) => {}
            Some(field) if field.settable_by(actor) => {
                given.insert(name.clone(), value.clone());
            }
            Some(_) => {
                preset.insert(name.clone(), value.clone());
            }
        }
    }
    (given, preset)
}

/// Collects the rule effects of one write.
fn effects_of<'e>(events: impl Iterator<Item = &'e JournalEvent>) -> Effects {
    let mut effects = Effects::default();
    for event in events {
        match event {
            JournalEvent::FieldChanged {
                field,
                to,
                rule: Some(rule),
                ..
            } => {
                effects
                    .fields
                    .insert(field.clone(), (to.clone(), rule.clone()));
            }
            JournalEvent::Recommended { action, params, .. } => {
                effects
                    .recommendations
                    .insert(action.clone(), params.clone());
            }
            JournalEvent::RuleFailed { rule, error } => {
                effects.failures.insert(rule.clone(), error.clone());
            }
            JournalEvent::ApprovalRequested {
                approvers,
                required,
                ..
            } => effects.approval = Some((approvers.clone(), *required)),
            _ => {}
        }
    }
    effects
}

fn describe(command: &Command) -> String {
    match command {
        Command::Transition { name, .. } => format!("transition `{name}`"),
        other => other.kind().to_owned(),
    }
}

/// Words a rule field value as `"P2" (by rule common/prioritize)`, or `nothing`.
fn set_by(value: Option<&(Value, String)>) -> String {
    match value {
        Some((value, rule)) => format!("{value} (by rule {rule})"),
        None => "nothing".to_owned(),
    }
}

fn actions(recommendations: &BTreeMap<String, Value>) -> String {
    if recommendations.is_empty() {
        return "nothing".to_owned();
    }
    recommendations
        .keys()
        .map(|action| format!("`{action}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: i64, at: i64, actor: &str, event: JournalEvent) -> JournalEntry {
        JournalEntry {
            seq,
            at: DateTime::from_timestamp(at, 0).unwrap(),
            actor: actor.into(),
            event,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn steps_group_by_time_and_actor() {
        let journal = [
            entry(1, 10, "alice", JournalEvent::Commented { text: "a".into() }),
            entry(2, 10, "alice", JournalEvent::Commented { text: "b".into() }),
            entry(3, 10, "tom", JournalEvent::Commented { text: "c".into() }),
            entry(4, 11, "tom", JournalEvent::Commented { text: "d".into() }),
        ];
        let steps = steps_of(&journal);
        let sizes: Vec<usize> = steps.iter().map(|step| step.events.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }

    #[test]
    fn transition_step_becomes_transition_command() {
        let resolve = [
            JournalEvent::FieldChanged {
                field: "resolution_code".into(),
                from: Value::Null,
                to: json!("fixed"),
                rule: None,
                reason: None,
            },
            JournalEvent::Transitioned {
                transition: "resolve".into(),
                from: "in_progress".into(),
                to: "resolved".into(),
            },
            JournalEvent::Commented {
                text: "done".into(),
            },
            JournalEvent::FieldChanged {
                field: "priority".into(),
                from: Value::Null,
                to: json!("P2"),
                rule: Some("common/prioritize".into()),
                reason: Some("impact".into()),
            },
        ];
        let step = Step {
            at: Utc::now(),
            actor: "tom",
            events: resolve.iter().collect(),
        };
        let definition: Definition = serde_norway::from_str(
            "process: incident\ntitle: I\nnumber_prefix: INC\nstates: { new: { initial: true } }\ntransitions: []\n",
        )
        .unwrap();
        let command = command_of(&step, &definition, &Actor::system("tom")).unwrap();
        let mut fields = Fields::new();
        fields.insert("resolution_code".into(), json!("fixed"));
        assert_eq!(
            command,
            Command::Transition {
                name: "resolve".into(),
                fields,
                comment: Some("done".into()),
            }
        );
    }
}
