//! Journal entries as the record page shows them: when, who, what changed and, for changes
//! made by rules, which rule and why.

use serde::Serialize;
use tend_domain::{JournalEntry, JournalEvent};
use tend_workflow::Definition;

use super::display::{
    action_label, field_text, humanise, input_label, param_list, transition_label,
};
use super::format_time;

/// One journal entry on the record page.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub seq: i64,
    /// RFC 3339, for the `datetime` attribute.
    pub at_iso: String,
    pub at: String,
    pub actor: String,
    /// One line that describes what happened.
    pub summary: String,
    /// Longer text (a comment, a note, an error), shown with its line breaks.
    pub text: Option<String>,
    /// The rule that made the change, and its reason.
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// A page with more about the entry, such as the stored message of an email.
    pub link: Option<String>,
}

/// Builds the views of `entries`, oldest first. Rule notes, rule failures and
/// recommendations are internal to the people who work records, so `staff` decides
/// whether they are shown.
pub fn entry_views(
    definition: &Definition,
    entries: &[JournalEntry],
    staff: bool,
) -> Vec<EntryView> {
    entries
        .iter()
        .filter(|entry| staff || !is_internal(&entry.event))
        .map(|entry| {
            let mut view = EntryView {
                seq: entry.seq,
                at_iso: entry.at.to_rfc3339(),
                at: format_time(entry.at),
                actor: entry.actor.clone(),
                summary: String::new(),
                text: None,
                rule: None,
                reason: None,
                link: None,
            };
            describe(definition, &entry.event, &mut view);
            view
        })
        .collect()
}

fn is_internal(event: &JournalEvent) -> bool {
    matches!(
        event,
        JournalEvent::Note { .. }
            | JournalEvent::RuleFailed { .. }
            | JournalEvent::Recommended { .. }
            | JournalEvent::FollowOnFailed { .. }
            | JournalEvent::EmailQueued { .. }
            | JournalEvent::EmailSent { .. }
    ) || matches!(event, JournalEvent::EmailReceived { effect, .. } if effect == "noted" || effect == "rejected")
}

fn describe(definition: &Definition, event: &JournalEvent, view: &mut EntryView) {
    match event {
        JournalEvent::Created { state, .. } => {
            view.summary = format!("Created in state {}", definition.state_label(state));
        }
        JournalEvent::FieldChanged {
            field,
            from,
            to,
            rule,
            reason,
        } => {
            let declared = definition.fields.get(field);
            view.summary = format!(
                "{}: {} → {}",
                input_label(definition, field),
                field_text(declared, from),
                field_text(declared, to)
            );
            view.rule = rule.clone();
            view.reason = reason.clone();
        }
        JournalEvent::TextChanged { field, from, to } => {
            let label = match field.as_str() {
                "title" => "Title",
                "description" => "Description",
                other => other,
            };
            view.summary = format!("{label} changed");
            view.text = Some(format!("Before:\n{from}\n\nAfter:\n{to}"));
        }
        JournalEvent::Transitioned {
            transition,
            from,
            to,
        } => {
            let label = definition
                .transition(transition)
                .map_or_else(|| humanise(transition), transition_label);
            view.summary = format!(
                "{label}: {} → {}",
                definition.state_label(from),
                definition.state_label(to)
            );
        }
        JournalEvent::Commented { text } => {
            view.summary = "Comment".into();
            view.text = Some(text.clone());
        }
        JournalEvent::Note { text, rule, reason } => {
            view.summary = "Note".into();
            view.text = Some(text.clone());
            view.rule = Some(rule.clone());
            view.reason = Some(reason.clone());
        }
        JournalEvent::Recommended {
            action,
            params,
            rule,
            reason,
        } => {
            let listed: Vec<String> = param_list(params)
                .into_iter()
                .map(|param| format!("{}: {}", param.name, param.value))
                .collect();
            view.summary = format!("Recommended action {}", action_label(action));
            if !listed.is_empty() {
                view.summary += &format!(" ({})", listed.join(", "));
            }
            view.rule = Some(rule.clone());
            view.reason = Some(reason.clone());
        }
        JournalEvent::RuleFailed { rule, error } => {
            view.summary = "Rule failed".into();
            view.text = Some(error.clone());
            view.rule = Some(rule.clone());
        }
        JournalEvent::Linked {
            link_type,
            other,
            outgoing,
        } => {
            let link = humanise(link_type);
            view.summary = if *outgoing {
                format!("Link added: {link} {other}")
            } else {
                format!("Link added from {other}: {link} this record")
            };
        }
        JournalEvent::ApprovalRequested {
            round,
            transition,
            approvers,
            required,
            due_at,
        } => {
            let label = transition_name(definition, transition);
            view.summary = format!(
                "Approval of {label} requested (round {round}): {required} of {} needed",
                approvers.len()
            );
            let mut text = format!("Asked: {}", approvers.join(", "));
            if let Some(due_at) = due_at {
                text += &format!("\nDecide by {}", due_at.format("%Y-%m-%d %H:%M UTC"));
            }
            view.text = Some(text);
        }
        JournalEvent::ApprovalDecided {
            round,
            approver,
            decision,
            reason,
        } => {
            let verb = if decision == "approve" {
                "Approved"
            } else {
                "Rejected"
            };
            view.summary = format!("{verb} by {approver} (round {round})");
            if !reason.is_empty() {
                view.text = Some(reason.clone());
            }
        }
        JournalEvent::ApprovalCompleted {
            round,
            transition,
            outcome,
        } => {
            let label = transition_name(definition, transition);
            view.summary = format!("Approval of {label} {outcome} (round {round})");
        }
        JournalEvent::ApprovalEscalated { round, approvers } => {
            view.summary = format!("Approval deadline passed (round {round}): escalated");
            view.text = Some(format!("Now asked: {}", approvers.join(", ")));
        }
        JournalEvent::FollowOnFailed {
            rule,
            effect,
            error,
        } => {
            view.summary = format!("Could not {effect}");
            view.text = Some(error.clone());
            view.rule = Some(rule.clone());
        }
        JournalEvent::Migrated {
            from_version,
            to_version,
        } => {
            view.summary = format!("Moved from definition version {from_version} to {to_version}");
        }
        JournalEvent::SlaClock {
            policy,
            target,
            change,
            due_at,
        } => {
            view.summary = format!("{} clock of {policy} {change}", humanise(target));
            if let Some(due_at) = due_at {
                view.text = Some(format!("Due {}", due_at.to_rfc3339()));
            }
        }
        JournalEvent::SlaThreshold {
            policy,
            target,
            percent,
            due_at,
            notified,
            ..
        } => {
            view.summary = format!(
                "{} target of {policy} reached {percent} %",
                humanise(target)
            );
            let mut text = format!("Reached at {}", due_at.to_rfc3339());
            if !notified.is_empty() {
                text.push_str(&format!("; notified {}", notified.join(", ")));
            }
            view.text = Some(text);
        }
        JournalEvent::FiredLate { timer, due_at } => {
            view.summary = format!("{timer} fired late");
            view.text = Some(format!(
                "It was due at {}, when no server was running",
                due_at.to_rfc3339()
            ));
        }
        JournalEvent::ActionQueued {
            run,
            plugin,
            action,
            params,
            reason,
            waits_for,
        } => {
            view.summary = format!("Queued {plugin} {} (run {run})", humanise(action));
            let mut lines: Vec<String> = param_list(params)
                .into_iter()
                .map(|param| format!("{}: {}", param.name, param.value))
                .collect();
            if let Some(waits_for) = waits_for {
                lines.push(format!("Waits for {waits_for}"));
            }
            if !lines.is_empty() {
                view.text = Some(lines.join("\n"));
            }
            view.reason = reason.clone();
        }
        JournalEvent::ActionDecided {
            run,
            plugin,
            action,
            approved,
            note,
        } => {
            let decision = if *approved { "Approved" } else { "Rejected" };
            view.summary = format!("{decision} {plugin} {} (run {run})", humanise(action));
            view.text = note.clone();
        }
        JournalEvent::ActionFinished {
            run,
            plugin,
            action,
            status,
            duration_ms,
            summary,
            output,
        } => {
            view.summary = format!(
                "{plugin} {} {} after {} (run {run})",
                humanise(action),
                humanise(status).to_lowercase(),
                duration_text(*duration_ms)
            );
            let mut text = summary.clone();
            if !output.is_empty() {
                text.push_str("\n\n");
                text.push_str(output);
            }
            view.text = Some(text);
        }
        JournalEvent::EmailReceived {
            mail,
            message_id,
            mailbox,
            from,
            subject,
            effect,
            related,
            robot,
            attachments,
            skipped,
        } => {
            let from = if from.is_empty() {
                "an unknown sender"
            } else {
                from.as_str()
            };
            let related = related.as_deref().unwrap_or("another record");
            view.summary = match effect.as_str() {
                "created" => format!("Opened by email from {from}"),
                "commented" => format!("Email from {from} added"),
                "reopened" => format!("Email from {from} reopened the record"),
                "follow_up" => format!("Opened by email from {from}, a reply to {related}"),
                "linked" => format!("Opened by email from {from}, which named {related}"),
                "noted" => format!("Machine-made email from {from} kept as a note"),
                "rejected" => format!("Email from {from} that named this record was rejected"),
                other => format!("Email from {from} ({})", humanise(other)),
            };
            let mut lines = vec![
                format!("Subject: {subject}"),
                format!("Message-ID: {message_id}"),
                format!("Mailbox: {mailbox} (stored message {mail})"),
            ];
            if let Some(robot) = robot {
                lines.push(format!("Machine-made: {robot}"));
            }
            if !attachments.is_empty() {
                lines.push(format!("Attachments: {}", attachments.join(", ")));
            }
            for file in skipped {
                lines.push(format!("Not stored: {file}"));
            }
            view.text = Some(lines.join("\n"));
            view.link = Some(format!("/mail/messages/{mail}"));
        }
        JournalEvent::EmailQueued {
            outbox,
            message_id,
            notify,
            template,
            to,
            subject,
            status,
            reason,
        } => {
            view.summary = match reason {
                Some(reason) if status == "suppressed" => {
                    format!("Email to {to} not sent: {reason}")
                }
                _ => format!("Email to {to} queued"),
            };
            view.text = Some(
                [
                    format!("Subject: {subject}"),
                    format!("Message-ID: <{message_id}>"),
                    format!(
                        "Notification: {} with template {template} (outbox {outbox})",
                        humanise(notify)
                    ),
                ]
                .join("\n"),
            );
        }
        JournalEvent::EmailSent {
            outbox,
            message_id,
            to,
            attempts,
        } => {
            view.summary = format!("Email to {to} sent");
            view.text = Some(format!(
                "Message-ID: <{message_id}>\nOutbox {outbox}, attempt {attempts}"
            ));
        }
    }
}

/// Writes a run's duration for people: milliseconds below a second, then seconds.
fn duration_text(milliseconds: i64) -> String {
    if milliseconds < 1_000 {
        format!("{milliseconds} ms")
    } else {
        format!("{:.1} s", milliseconds as f64 / 1_000.0)
    }
}

fn transition_name(definition: &Definition, name: &str) -> String {
    definition
        .transition(name)
        .map_or_else(|| humanise(name), transition_label)
}
