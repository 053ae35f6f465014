//! `tend simulate`: runs a record through a sequence of commands against the definitions
//! on disk and prints every effect and state. Nothing is written: the state machine and
//! the rules are pure, and no store is opened.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tend_domain::{Actor, Command, Fields, JournalEvent, Record, Role};
use tend_workflow::{Context, Definition, Span};

use crate::cli::SimulateArgs;

/// The starting record of a simulation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRecord {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    fields: Fields,
    /// Creator of the record, a requester named `requester` by default.
    #[serde(default)]
    actor: Option<ActorSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorSpec {
    name: String,
    roles: Vec<Role>,
}

impl ActorSpec {
    fn actor(&self) -> Actor {
        Actor::new(self.name.clone(), self.roles.clone())
    }
}

/// One step of a simulation. It is either a command as the API takes it, with `command:`
/// naming its kind (create is the start record) and the actor and time, or the end of the
/// pending approval round, `approval: approve` or `approval: reject`.
#[derive(Debug)]
enum Step {
    Approval(ApprovalStep),
    Command(CommandStep),
}

/// Tells the two kinds of step apart by the `approval` key, so that an error in a command
/// step names its own problem (an unknown command, a missing field) instead of "matches no
/// kind of step".
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        if value.get("approval").is_some() {
            ApprovalStep::deserialize(value)
                .map(Step::Approval)
                .map_err(D::Error::custom)
        } else {
            CommandStep::deserialize(value)
                .map(Step::Command)
                .map_err(D::Error::custom)
        }
    }
}

#[derive(Debug, Deserialize)]
struct CommandStep {
    #[serde(flatten)]
    command: Command,
    /// Actor of the command, a technician named `technician` by default.
    #[serde(default)]
    actor: Option<ActorSpec>,
    /// Time that passes before this step, such as `2d` or `90m`.
    #[serde(default)]
    after: Option<Span>,
}

/// The approvers' decision on the pending round, as if enough of them decided alike.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalStep {
    approval: ApprovalOutcome,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    after: Option<Span>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ApprovalOutcome {
    Approve,
    Reject,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let (set, host) = crate::setup::load_definitions(&args.definitions.definitions)?;
    let Some(definition) = set.get(&args.process) else {
        let known: Vec<&str> = set.definitions.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown process `{}`: use one of {}",
            args.process,
            known.join(", ")
        );
    };
    let start: StartRecord = read_yaml(&args.record)?;
    let steps: Vec<Step> = read_yaml(&args.steps)?;

    let mut now: DateTime<Utc> = Utc::now();
    let creator = start.actor.as_ref().map_or_else(
        || Actor::new("requester", vec![Role::Requester]),
        ActorSpec::actor,
    );
    let create = Command::Create {
        title: start.title,
        description: start.description,
        fields: start.fields,
        preset: tend_domain::Fields::new(),
    };
    let context = Context {
        definition,
        version: &set.version,
        rules: host.as_ref(),
        actor: &creator,
        now,
        groups: &set.groups,
        links: &[],
        cmdb: None,
    };
    println!("step 0: create as {}", creator.name);
    let mut record = match tend_workflow::execute(&context, None, &create) {
        Ok(outcome) => {
            print_events(&outcome.events);
            print_follow_ons(&outcome.follow_ons);
            let mut record = outcome.record;
            record.number = format!("{}-SIMULATED", definition.number_prefix);
            record
        }
        Err(rejection) => {
            println!("  rejected ({}): {rejection}", rejection.code());
            return Ok(ExitCode::FAILURE);
        }
    };
    print_state(definition, &record);

    let mut rejected = 0;
    let total = steps.len();
    // The transition of the approval round the last command opened, if it is pending.
    let mut pending: Option<String> = None;
    for (index, step) in steps.into_iter().enumerate() {
        let step_number = index + 1;
        match step {
            Step::Command(step) => {
                if let Some(after) = step.after {
                    now += after.duration();
                    take_due_transitions(definition, &set, host.as_ref(), &mut record, now);
                }
                let actor = step.actor.as_ref().map_or_else(
                    || Actor::new("technician", vec![Role::Technician]),
                    ActorSpec::actor,
                );
                println!(
                    "step {step_number}: {} as {}",
                    describe(&step.command),
                    actor.name
                );
                let context = Context {
                    definition,
                    version: &set.version,
                    rules: host.as_ref(),
                    actor: &actor,
                    now,
                    groups: &set.groups,
                    links: &[],
                    cmdb: None,
                };
                let decided = tend_workflow::execute(&context, Some(&record), &step.command)
                    .and_then(|outcome| check_freeze(definition, &set, &step.command, outcome));
                match decided {
                    Ok(outcome) => {
                        if let Some(follow_up) = &outcome.follow_up {
                            println!(
                                "  opens a follow-up record with `{}` = {}; {} stays as it is",
                                follow_up.field, follow_up.of, record.number
                            );
                        }
                        print_events(&outcome.events);
                        print_follow_ons(&outcome.follow_ons);
                        if outcome.entered_state() {
                            pending = None;
                        }
                        if let Some(plan) = &outcome.approval {
                            pending = Some(plan.transition.clone());
                        }
                        record = outcome.record;
                    }
                    Err(rejection) => {
                        rejected += 1;
                        let field = rejection
                            .field()
                            .map(|field| format!(", field `{field}`"))
                            .unwrap_or_default();
                        println!("  rejected ({}{field}): {rejection}", rejection.code());
                    }
                }
            }
            Step::Approval(step) => {
                if let Some(after) = step.after {
                    now += after.duration();
                    take_due_transitions(definition, &set, host.as_ref(), &mut record, now);
                }
                let verb = match step.approval {
                    ApprovalOutcome::Approve => "approved",
                    ApprovalOutcome::Reject => "rejected",
                };
                println!("step {step_number}: the approvers decide: {verb}");
                let Some(transition) = pending.take() else {
                    rejected += 1;
                    println!(
                        "  rejected: no approval round is pending; take a transition that needs approval first"
                    );
                    print_state(definition, &record);
                    continue;
                };
                let next = match step.approval {
                    ApprovalOutcome::Approve => Some(transition.clone()),
                    ApprovalOutcome::Reject => definition
                        .transition(&transition)
                        .and_then(|t| t.approval.as_ref())
                        .and_then(|a| a.on_reject.clone()),
                };
                println!("  approval of `{transition}` {verb}");
                let Some(next) = next else {
                    println!(
                        "  the definition names no `on_reject` transition, so the record stays"
                    );
                    print_state(definition, &record);
                    continue;
                };
                let system = Actor::system("approvals");
                let context = Context {
                    definition,
                    version: &set.version,
                    rules: host.as_ref(),
                    actor: &system,
                    now,
                    groups: &set.groups,
                    links: &[],
                    cmdb: None,
                };
                let comment = (!step.reason.trim().is_empty()).then_some(step.reason.as_str());
                match tend_workflow::execute_approved(&context, &record, &next, comment) {
                    Ok(outcome) => {
                        print_events(&outcome.events);
                        print_follow_ons(&outcome.follow_ons);
                        record = outcome.record;
                    }
                    Err(rejection) => {
                        rejected += 1;
                        println!(
                            "  transition `{next}` rejected ({}): {rejection}",
                            rejection.code()
                        );
                    }
                }
            }
        }
        print_state(definition, &record);
    }
    println!("{rejected} of {total} steps rejected; nothing was written");
    Ok(ExitCode::SUCCESS)
}

/// Takes the automatic transitions (`after`) that fell due before `now`, in due order, as
/// the server's timer would, and prints them.
fn take_due_transitions(
    definition: &Definition,
    set: &tend_workflow::DefinitionSet,
    rules: &dyn tend_workflow::RuleRunner,
    record: &mut Record,
    now: DateTime<Utc>,
) {
    let timer = Actor::system("timer");
    // Each automatic transition moves the record; a cycle of them stops after a few.
    for _ in 0..10 {
        // Plans whose `after` counts working time move to their business-time due time.
        let mut planned = tend_workflow::Outcome {
            record: record.clone(),
            events: Vec::new(),
            follow_up: None,
            timers: tend_workflow::plan_timers(definition, record),
            approval: None,
            follow_ons: Vec::new(),
        };
        tend_api::calendars::count_business_time(set, definition, &mut planned);
        let Some(due) = planned
            .timers
            .into_iter()
            .filter(|plan| plan.due_at <= now)
            .min_by_key(|plan| plan.due_at)
        else {
            return;
        };
        println!(
            "  at {}: automatic transition `{}` as timer",
            due.due_at.format("%Y-%m-%d %H:%M UTC"),
            due.transition
        );
        let context = Context {
            definition,
            version: &set.version,
            rules,
            actor: &timer,
            now: due.due_at,
            groups: &set.groups,
            links: &[],
            cmdb: None,
        };
        let command = Command::Transition {
            name: due.transition.clone(),
            fields: Fields::new(),
            comment: None,
        };
        match tend_workflow::execute(&context, Some(record), &command) {
            Ok(outcome) => {
                print_events(&outcome.events);
                *record = outcome.record;
            }
            Err(rejection) => {
                println!(
                    "  the automatic transition is blocked ({}): {rejection}",
                    rejection.code()
                );
                return;
            }
        }
    }
}

/// Refuses a transition whose planned window overlaps a freeze window, as the server does.
/// Other records are not simulated, so conflicts with them are not checked.
fn check_freeze(
    definition: &Definition,
    set: &tend_workflow::DefinitionSet,
    command: &Command,
    outcome: tend_workflow::Outcome,
) -> Result<tend_workflow::Outcome, tend_workflow::Rejection> {
    let (Command::Transition { name, .. }, Some(schedule)) = (command, &definition.schedule) else {
        return Ok(outcome);
    };
    if !schedule.check_on.contains(name) {
        return Ok(outcome);
    }
    let conflicts = schedule.conflicts(&outcome.record, &[], &set.freeze_windows);
    if conflicts.is_empty() {
        Ok(outcome)
    } else {
        Err(tend_workflow::Rejection::ScheduleConflict {
            transition: name.clone(),
            conflicts,
        })
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    tend_workflow::parse_yaml(path, &text).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid {}:\n  {}", path.display(), lines.join("\n  "))
    })
}

fn describe(command: &Command) -> String {
    match command {
        Command::Transition { name, .. } => format!("transition `{name}`"),
        other => other.kind().to_owned(),
    }
}

fn print_state(definition: &Definition, record: &Record) {
    println!(
        "  state: {} ({})",
        record.state,
        definition.state_label(&record.state)
    );
}

fn print_events(events: &[JournalEvent]) {
    for event in events {
        let line = match event {
            JournalEvent::Created { state, .. } => format!("created in state `{state}`"),
            JournalEvent::FieldChanged {
                field,
                from,
                to,
                rule,
                reason,
            } => {
                let by = match (rule, reason) {
                    (Some(rule), Some(reason)) => format!(" by rule {rule}: {reason}"),
                    _ => String::new(),
                };
                format!("{field}: {} -> {}{by}", show(from), show(to))
            }
            JournalEvent::TextChanged { field, .. } => format!("{field} changed"),
            JournalEvent::Transitioned {
                transition,
                from,
                to,
            } => format!("transition `{transition}`: {from} -> {to}"),
            JournalEvent::Commented { text } => format!("comment: {text}"),
            JournalEvent::Note { text, rule, .. } => format!("note by rule {rule}: {text}"),
            JournalEvent::Recommended {
                action,
                rule,
                reason,
                ..
            } => format!("recommend `{action}` by rule {rule}: {reason}"),
            JournalEvent::RuleFailed { rule, error } => format!("rule {rule} failed: {error}"),
            JournalEvent::Linked {
                link_type,
                other,
                outgoing,
            } => {
                let direction = if *outgoing { "to" } else { "from" };
                format!("link `{link_type}` {direction} {other}")
            }
            JournalEvent::ApprovalRequested {
                transition,
                approvers,
                required,
                ..
            } => format!(
                "waits for approval of `{transition}`: {required} of {} needed ({}); the record stays in its state",
                approvers.len(),
                approvers.join(", ")
            ),
            JournalEvent::ApprovalDecided {
                approver, decision, ..
            } => format!("{approver} decided: {decision}"),
            JournalEvent::ApprovalCompleted {
                transition,
                outcome,
                ..
            } => format!("approval of `{transition}` {outcome}"),
            JournalEvent::ApprovalEscalated { approvers, .. } => {
                format!("approval escalated to {}", approvers.join(", "))
            }
            JournalEvent::FollowOnFailed { effect, error, .. } => {
                format!("could not {effect}: {error}")
            }
            JournalEvent::Migrated {
                from_version,
                to_version,
            } => format!("moved from definition version {from_version} to {to_version}"),
            JournalEvent::SlaClock {
                policy,
                target,
                change,
                ..
            } => format!("{policy} {target} clock {change}"),
            JournalEvent::SlaThreshold {
                policy,
                target,
                percent,
                ..
            } => format!("{policy} {target} reached {percent} %"),
            JournalEvent::FiredLate { timer, due_at } => {
                format!("{timer} fired late (due {due_at})")
            }
            JournalEvent::ActionQueued {
                plugin,
                action,
                run,
                ..
            } => format!("queued {plugin} {action} (run {run})"),
            JournalEvent::ActionDecided {
                plugin,
                action,
                approved,
                ..
            } => format!(
                "{} {plugin} {action}",
                if *approved { "approved" } else { "rejected" }
            ),
            JournalEvent::ActionFinished {
                plugin,
                action,
                status,
                ..
            } => format!("{plugin} {action} {status}"),
            JournalEvent::EmailReceived {
                from,
                effect,
                message_id,
                ..
            } => format!("email from {from} {effect} (Message-ID {message_id})"),
            JournalEvent::EmailQueued {
                to, status, notify, ..
            } => format!("email to {to} {status} ({notify})"),
            JournalEvent::EmailSent { to, .. } => format!("email to {to} sent"),
        };
        println!("  {line}");
    }
}

/// Prints what the rules asked to do once the command is written; a simulation does
/// not carry it out.
fn print_follow_ons(follow_ons: &[tend_domain::ProposedEffect]) {
    for proposed in follow_ons {
        let what = match &proposed.effect {
            tend_domain::Effect::Transition { name } => format!("take transition `{name}`"),
            tend_domain::Effect::Link { link_type, target } => {
                format!("link `{link_type}` to {target}")
            }
            tend_domain::Effect::Open { process, title, .. } => {
                format!("open a {process} record \"{title}\"")
            }
            other => format!("{other:?}"),
        };
        println!(
            "  then (not simulated): {what}, by rule {}: {}",
            proposed.rule, proposed.reason
        );
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
