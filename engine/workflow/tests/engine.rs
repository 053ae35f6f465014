//! The state machine, decided without IO.

use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};
use tend_domain::{Actor, Command, Effect, Fields, JournalEvent, ProposedEffect, Record, Role};
use tend_workflow::{
    Context, Definition, Hook, NoRules, Rejection, RuleCheckError, RuleFailure, RuleInput,
    RuleRunner, available_transitions, execute, parse_yaml, path_between,
};

const DEFINITION: &str = "\
process: ticket
title: Ticket
number_prefix: TKT
fields:
  category: { type: enum, values: [network, hardware] }
  priority: { type: enum, values: [P1, P2], read_only: true }
  technician: { type: user }
  solution: { type: text, required_in: [solved] }
states:
  new: { initial: true }
  assigned: {}
  solved: { open: false }
  closed: { open: false }
transitions:
  - { name: assign, from: new, to: assigned, roles: [technician], requires: [technician] }
  - { name: solve, from: [new, assigned], to: solved, roles: [technician] }
  - { name: close, from: solved, to: closed, roles: [technician, requester] }
  - { name: reopen, from: [solved], to: assigned, roles: [technician, requester], comment_required: true }
  - { name: revive, from: [closed], to: assigned, roles: [technician] }
rules:
  on_create: [ticket/first, ticket/second]
";

fn definition() -> Definition {
    parse_yaml(Path::new("ticket.yaml"), DEFINITION).unwrap()
}

/// Rules written in Rust for these tests: `ticket/first` categorises, `ticket/second`
/// reads what `first` set, and `ticket/broken` always fails.
struct TestRules;

impl RuleRunner for TestRules {
    fn check(&self, _: &str) -> Result<(), RuleCheckError> {
        Ok(())
    }

    fn run(&self, rule: &str, input: &RuleInput<'_>) -> Result<Vec<ProposedEffect>, RuleFailure> {
        let effect = |effect, reason: &str| ProposedEffect {
            rule: rule.to_owned(),
            reason: reason.to_owned(),
            effect,
        };
        if input.hook == Hook::Guard {
            assert_eq!(input.transition, Some("solve"));
            return match (rule, input.record.field_str("solution")) {
                ("ticket/guard", Some(solution)) if solution.len() < 5 => Ok(vec![effect(
                    Effect::Deny {
                        message: "Describe the solution in at least five characters".into(),
                    },
                    "Describe the solution in at least five characters",
                )]),
                ("ticket/guard", _) => Ok(vec![]),
                _ => Err(RuleFailure {
                    rule: rule.into(),
                    message: "boom".into(),
                }),
            };
        }
        assert_eq!(input.hook, Hook::OnCreate);
        match rule {
            "ticket/first" if input.record.title.contains("switch") => Ok(vec![effect(
                Effect::SetField {
                    field: "category".into(),
                    value: json!("network"),
                },
                "title mentions a switch",
            )]),
            "ticket/first" => Ok(vec![]),
            "ticket/second" => {
                let category = input.record.field_str("category");
                let mut effects = vec![effect(
                    Effect::SetField {
                        field: "priority".into(),
                        value: json!(if category == Some("network") {
                            "P1"
                        } else {
                            "P2"
                        }),
                    },
                    "network is P1",
                )];
                effects.push(effect(
                    Effect::SetField {
                        field: "undeclared".into(),
                        value: json!(1),
                    },
                    "wrong field",
                ));
                Ok(effects)
            }
            _ => Err(RuleFailure {
                rule: rule.into(),
                message: "boom".into(),
            }),
        }
    }
}

fn technician() -> Actor {
    Actor::new("tom", vec![Role::Technician])
}

fn requester() -> Actor {
    Actor::new("rita", vec![Role::Requester])
}

fn create(
    definition: &Definition,
    actor: &Actor,
    title: &str,
    fields: Value,
) -> Result<Record, Rejection> {
    let context = Context {
        definition,
        version: "v1",
        rules: &TestRules,
        actor,
        now: Utc::now(),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    let fields: Fields = serde_json::from_value(fields).unwrap();
    let command = Command::Create {
        title: title.into(),
        description: String::new(),
        fields,
        preset: Fields::new(),
    };
    execute(&context, None, &command).map(|outcome| outcome.record)
}

fn apply(
    definition: &Definition,
    actor: &Actor,
    record: &Record,
    command: Command,
) -> Result<tend_workflow::Outcome, Rejection> {
    let context = Context {
        definition,
        version: "v1",
        rules: &NoRules,
        actor,
        now: Utc::now(),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    execute(&context, Some(record), &command)
}

fn transition(name: &str, fields: Value, comment: Option<&str>) -> Command {
    Command::Transition {
        name: name.into(),
        fields: serde_json::from_value(fields).unwrap(),
        comment: comment.map(str::to_owned),
    }
}

#[test]
fn later_rule_sees_earlier_rule_effects() {
    let definition = definition();
    let record = create(
        &definition,
        &requester(),
        "switch down in room 3",
        json!({}),
    )
    .unwrap();
    assert_eq!(record.field_str("category"), Some("network"));
    assert_eq!(record.field_str("priority"), Some("P1"));
    assert_eq!(
        record.field_str("requester"),
        None,
        "the definition declares no requester"
    );
}

#[test]
fn invalid_rule_effect_is_journaled_and_skipped() {
    let definition = definition();
    let context = Context {
        definition: &definition,
        version: "v1",
        rules: &TestRules,
        actor: &requester(),
        now: Utc::now(),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    let command = Command::Create {
        title: "printer jam".into(),
        description: String::new(),
        fields: Fields::new(),
        preset: Fields::new(),
    };
    let outcome = execute(&context, None, &command).unwrap();
    let failures: Vec<&JournalEvent> = outcome
        .events
        .iter()
        .filter(|e| matches!(e, JournalEvent::RuleFailed { .. }))
        .collect();
    assert_eq!(failures.len(), 1);
    assert!(
        matches!(failures[0], JournalEvent::RuleFailed { rule, error } if rule == "ticket/second" && error.contains("undeclared field `undeclared`"))
    );
    assert!(outcome.events.iter().any(|e| matches!(e, JournalEvent::FieldChanged { field, rule: Some(rule), reason: Some(reason), .. } if field == "priority" && rule == "ticket/second" && reason == "network is P1")));
}

#[test]
fn read_only_field_rejected_from_people() {
    let definition = definition();
    let rejection =
        create(&definition, &technician(), "x", json!({ "priority": "P1" })).unwrap_err();
    assert_eq!(rejection.code(), "read_only_field");
    assert_eq!(rejection.field(), Some("priority"));
}

#[test]
fn unknown_field_and_bad_enum_rejected() {
    let definition = definition();
    let unknown = create(&definition, &technician(), "x", json!({ "colour": "red" })).unwrap_err();
    assert_eq!(unknown.code(), "unknown_field");
    assert_eq!(unknown.field(), Some("colour"));
    let bad = create(
        &definition,
        &technician(),
        "x",
        json!({ "category": "plumbing" }),
    )
    .unwrap_err();
    assert_eq!(bad.code(), "invalid_value");
    assert!(
        bad.to_string()
            .contains("`plumbing` is not one of network, hardware")
    );
}

#[test]
fn empty_title_rejected() {
    let definition = definition();
    let rejection = create(&definition, &technician(), "   ", json!({})).unwrap_err();
    assert_eq!(rejection.code(), "required_field_missing");
    assert_eq!(rejection.field(), Some("title"));
}

#[test]
fn transition_checks_state_role_and_requirements() {
    let definition = definition();
    let record = create(&definition, &requester(), "disk", json!({})).unwrap();

    let wrong_role = apply(
        &definition,
        &requester(),
        &record,
        transition("solve", json!({}), None),
    )
    .unwrap_err();
    assert_eq!(wrong_role.code(), "forbidden");

    let missing = apply(
        &definition,
        &technician(),
        &record,
        transition("assign", json!({}), None),
    )
    .unwrap_err();
    assert_eq!(missing.code(), "required_field_missing");
    assert_eq!(missing.field(), Some("technician"));

    let wrong_state = apply(
        &definition,
        &technician(),
        &record,
        transition("close", json!({}), None),
    )
    .unwrap_err();
    assert_eq!(wrong_state.code(), "transition_not_allowed");

    let in_state = apply(
        &definition,
        &technician(),
        &record,
        transition("solve", json!({}), None),
    )
    .unwrap_err();
    assert_eq!(in_state.code(), "required_field_missing");
    assert_eq!(in_state.field(), Some("solution"));

    let solved = apply(
        &definition,
        &technician(),
        &record,
        transition("solve", json!({ "solution": "replaced disk" }), None),
    )
    .unwrap();
    assert_eq!(solved.record.state, "solved");
    assert!(!solved.record.open);
    assert!(
        matches!(solved.events.last(), Some(JournalEvent::Transitioned { from, to, .. }) if from == "new" && to == "solved")
    );
}

#[test]
fn reopen_follows_the_configured_matrix() {
    // The matrix lets closed records be revived to `assigned` and solved ones be reopened
    // to `assigned`; nothing leads back to `new`. The offered controls and the permission
    // check use the real target state.
    let definition = definition();
    let mut record = create(
        &definition,
        &requester(),
        "disk",
        json!({ "technician": "tom" }),
    )
    .unwrap();
    record = apply(
        &definition,
        &technician(),
        &record,
        transition("solve", json!({ "solution": "done" }), None),
    )
    .unwrap()
    .record;

    let offered: Vec<&str> = available_transitions(&definition, &record, &requester())
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(offered, ["close", "reopen"]);
    let missing_comment = apply(
        &definition,
        &requester(),
        &record,
        transition("reopen", json!({}), None),
    )
    .unwrap_err();
    assert_eq!(missing_comment.code(), "comment_required");
    let reopened = apply(
        &definition,
        &requester(),
        &record,
        transition("reopen", json!({}), Some("still broken")),
    )
    .unwrap();
    assert_eq!(reopened.record.state, "assigned");

    record = apply(
        &definition,
        &technician(),
        &record,
        transition("close", json!({}), None),
    )
    .unwrap()
    .record;
    let offered: Vec<&str> = available_transitions(&definition, &record, &technician())
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(offered, ["revive"]);
    assert!(available_transitions(&definition, &record, &requester()).is_empty());
    let revived = apply(
        &definition,
        &technician(),
        &record,
        transition("revive", json!({}), None),
    )
    .unwrap();
    assert_eq!(revived.record.state, "assigned");
    assert_eq!(revived.record.field_str("technician"), Some("tom"));
}

#[test]
fn update_without_change_writes_nothing() {
    let definition = definition();
    let record = create(
        &definition,
        &requester(),
        "disk",
        json!({ "category": "hardware" }),
    )
    .unwrap();
    let command = Command::Update {
        title: Some("disk".into()),
        description: None,
        fields: serde_json::from_value(json!({ "category": "hardware" })).unwrap(),
    };
    let outcome = apply(&definition, &technician(), &record, command).unwrap();
    assert!(outcome.is_empty());
}

#[test]
fn requester_cannot_open_for_someone_else() {
    let text = DEFINITION
        .replace(
            "  technician: { type: user }",
            "  technician: { type: user }\n  requester: { type: user }",
        )
        .replace("rules:\n  on_create: [ticket/first, ticket/second]\n", "");
    let definition: Definition = parse_yaml(Path::new("ticket.yaml"), &text).unwrap();
    let own = create(&definition, &requester(), "mine", json!({})).unwrap();
    assert_eq!(own.field_str("requester"), Some("rita"));
    let other = create(
        &definition,
        &requester(),
        "theirs",
        json!({ "requester": "bob" }),
    )
    .unwrap_err();
    assert_eq!(other.code(), "forbidden");
    let on_behalf = create(
        &definition,
        &technician(),
        "theirs",
        json!({ "requester": "bob" }),
    )
    .unwrap();
    assert_eq!(on_behalf.field_str("requester"), Some("bob"));
}

#[test]
fn path_between_finds_shortest_route() {
    let definition = definition();
    let path: Vec<&str> = path_between(&definition, "new", "closed")
        .unwrap()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(path, ["solve", "close"]);
    assert!(path_between(&definition, "closed", "new").is_none());
    assert!(path_between(&definition, "new", "new").unwrap().is_empty());
}

const REPLIES: &str = "
replies:
  reopen: reopen
  reopen_within: 7d
  follow_up_in: [closed]
";

fn with_replies() -> Definition {
    let text = DEFINITION
        .replace(
            "  technician: { type: user }",
            "  technician: { type: user }\n  follow_up_of: { type: string }",
        )
        .replace(
            "rules:\n  on_create: [ticket/first, ticket/second]\n",
            REPLIES,
        );
    parse_yaml(Path::new("ticket.yaml"), &text).unwrap()
}

fn reply_at(definition: &Definition, record: &Record, days_later: i64) -> tend_workflow::Outcome {
    let context = Context {
        definition,
        version: "v1",
        rules: &NoRules,
        actor: &requester(),
        now: record.state_changed_at + chrono::TimeDelta::days(days_later),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    let command = Command::Reply {
        text: "still broken".into(),
    };
    execute(&context, Some(record), &command).unwrap()
}

fn solved(definition: &Definition) -> Record {
    let record = create(definition, &requester(), "disk", json!({})).unwrap();
    apply(
        definition,
        &technician(),
        &record,
        transition("solve", json!({ "solution": "done" }), None),
    )
    .unwrap()
    .record
}

#[test]
fn reply_within_window_reopens() {
    let definition = with_replies();
    let outcome = reply_at(&definition, &solved(&definition), 6);
    assert_eq!(outcome.record.state, "assigned");
    assert_eq!(outcome.follow_up, None);
    assert!(outcome.events.iter().any(
        |e| matches!(e, JournalEvent::Transitioned { transition, .. } if transition == "reopen")
    ));
    assert!(
        outcome
            .events
            .iter()
            .any(|e| matches!(e, JournalEvent::Commented { text } if text == "still broken"))
    );
}

#[test]
fn reply_after_window_asks_follow_up() {
    let definition = with_replies();
    let record = solved(&definition);
    let outcome = reply_at(&definition, &record, 8);
    assert!(outcome.events.is_empty());
    assert_eq!(outcome.record, record);
    let follow_up = outcome.follow_up.unwrap();
    assert_eq!(follow_up.of, record.number);
    assert_eq!(follow_up.field, "follow_up_of");
}

#[test]
fn reply_to_closed_asks_follow_up() {
    let definition = with_replies();
    let closed = apply(
        &definition,
        &technician(),
        &solved(&definition),
        transition("close", json!({}), None),
    )
    .unwrap()
    .record;
    let outcome = reply_at(&definition, &closed, 0);
    assert!(outcome.follow_up.is_some());
    assert!(outcome.events.is_empty());
}

#[test]
fn reply_elsewhere_is_comment() {
    let definition = with_replies();
    let record = create(&definition, &requester(), "disk", json!({})).unwrap();
    let outcome = reply_at(&definition, &record, 0);
    assert_eq!(outcome.record.state, "new");
    assert_eq!(
        outcome.events,
        vec![JournalEvent::Commented {
            text: "still broken".into()
        }]
    );
}

#[test]
fn reply_policy_names_are_checked() {
    let text = DEFINITION.replace(
        "rules:\n  on_create: [ticket/first, ticket/second]\n",
        "replies:\n  reopen: revive_all\n  follow_up_in: [archived]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/ticket.yaml"), text).unwrap();
    let errors = tend_workflow::load_dir(dir.path(), &NoRules)
        .unwrap_err()
        .diagnostics;
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("unknown transition `revive_all`")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("unknown state `archived`")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("declare it with `type: string`")),
        "{messages:?}"
    );
}

#[test]
fn field_set_by_limits_people_not_rules() {
    let text = DEFINITION.replace(
        "  category: { type: enum, values: [network, hardware] }",
        "  category: { type: enum, values: [network, hardware], set_by: [technician] }",
    );
    let definition: Definition = parse_yaml(Path::new("ticket.yaml"), &text).unwrap();

    let rejection = create(
        &definition,
        &requester(),
        "printer",
        json!({ "category": "hardware" }),
    )
    .unwrap_err();
    assert_eq!(rejection.code(), "forbidden");
    assert_eq!(rejection.field(), Some("category"));
    assert!(
        rejection.to_string().contains("needs the role technician"),
        "{rejection}"
    );

    // The rule `ticket/first` still sets it for a requester's record.
    let record = create(&definition, &requester(), "switch down", json!({})).unwrap();
    assert_eq!(record.field_str("category"), Some("network"));
    let by_technician = create(
        &definition,
        &technician(),
        "printer",
        json!({ "category": "hardware" }),
    )
    .unwrap();
    assert_eq!(by_technician.field_str("category"), Some("hardware"));
}

fn guarded(guard: &str) -> Definition {
    let text = DEFINITION.replace(
        "  - { name: solve, from: [new, assigned], to: solved, roles: [technician] }",
        &format!("  - {{ name: solve, from: [new, assigned], to: solved, roles: [technician], guard: {guard} }}"),
    );
    parse_yaml(Path::new("ticket.yaml"), &text).unwrap()
}

fn solve_with(
    definition: &Definition,
    solution: &str,
) -> Result<tend_workflow::Outcome, Rejection> {
    let record = create(definition, &requester(), "disk", json!({})).unwrap();
    let context = Context {
        definition,
        version: "v1",
        rules: &TestRules,
        actor: &technician(),
        now: Utc::now(),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    execute(
        &context,
        Some(&record),
        &transition("solve", json!({ "solution": solution }), None),
    )
}

#[test]
fn guard_deny_quotes_its_message() {
    let definition = guarded("ticket/guard");
    let rejection = solve_with(&definition, "ok").unwrap_err();
    assert_eq!(rejection.code(), "guard_failed");
    assert_eq!(
        rejection.to_string(),
        "Describe the solution in at least five characters"
    );
    let solved = solve_with(&definition, "replaced the disk").unwrap();
    assert_eq!(solved.record.state, "solved");
}

#[test]
fn failing_guard_blocks_transition() {
    let definition = guarded("ticket/broken");
    let rejection = solve_with(&definition, "replaced the disk").unwrap_err();
    assert_eq!(rejection.code(), "guard_failed");
    assert!(
        rejection
            .to_string()
            .contains("guard `ticket/broken` failed: boom"),
        "{rejection}"
    );
}

#[test]
fn state_requires_and_read_only_in() {
    let text = DEFINITION
        .replace(
            "  solved: { open: false }",
            "  solved: { open: false, requires: [technician] }",
        )
        .replace(
            "  category: { type: enum, values: [network, hardware] }",
            "  category: { type: enum, values: [network, hardware], read_only_in: [solved] }",
        );
    let definition: Definition = parse_yaml(Path::new("ticket.yaml"), &text).unwrap();
    let record = create(&definition, &requester(), "disk", json!({})).unwrap();
    let missing = apply(
        &definition,
        &technician(),
        &record,
        transition("solve", json!({ "solution": "done" }), None),
    )
    .unwrap_err();
    assert_eq!(missing.code(), "required_field_missing");
    assert_eq!(missing.field(), Some("technician"));

    let solved = apply(
        &definition,
        &technician(),
        &record,
        transition(
            "solve",
            json!({ "solution": "done", "technician": "tom" }),
            None,
        ),
    )
    .unwrap()
    .record;
    let update = Command::Update {
        title: None,
        description: None,
        fields: serde_json::from_value(json!({ "category": "network" })).unwrap(),
    };
    let locked = apply(&definition, &technician(), &solved, update).unwrap_err();
    assert_eq!(locked.code(), "read_only_field");
    assert_eq!(locked.field(), Some("category"));
    assert!(
        locked
            .to_string()
            .contains("cannot be changed in state `solved`"),
        "{locked}"
    );
}

#[test]
fn guard_and_state_names_are_validated() {
    let text = DEFINITION
        .replace("rules:\n  on_create: [ticket/first, ticket/second]\n", "")
        .replace("  solved: { open: false }", "  solved: { open: false, requires: [technican] }")
        .replace("  category: { type: enum, values: [network, hardware] }", "  category: { type: enum, values: [network, hardware], read_only_in: [archived] }")
        .replace(
            "  - { name: solve, from: [new, assigned], to: solved, roles: [technician] }",
            "  - { name: solve, from: [new, assigned], to: solved, roles: [technician], guard: ticket/missing_guard }",
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/ticket.yaml"), text).unwrap();
    let errors = tend_workflow::load_dir(dir.path(), &NoRules)
        .unwrap_err()
        .diagnostics;
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("rule `ticket/missing_guard` has no script")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(
            |m| m.contains("requires undeclared field `technican`: did you mean `technician`?")
        ),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("read-only in unknown state `archived`")),
        "{messages:?}"
    );
    assert_eq!(messages.len(), 3, "{messages:?}");
}

fn with_auto_close() -> Definition {
    let text = DEFINITION.replace(
        "  - { name: close, from: solved, to: closed, roles: [technician, requester] }",
        "  - { name: close, from: solved, to: closed, roles: [technician, requester], after: 5d }",
    );
    parse_yaml(Path::new("ticket.yaml"), &text).unwrap()
}

#[test]
fn timers_planned_on_entering_state() {
    let definition = with_auto_close();
    let record = create(&definition, &requester(), "disk", json!({})).unwrap();
    let outcome = apply(
        &definition,
        &technician(),
        &record,
        transition("solve", json!({ "solution": "done" }), None),
    )
    .unwrap();
    assert_eq!(outcome.timers.len(), 1, "{:?}", outcome.timers);
    assert_eq!(outcome.timers[0].transition, "close");
    assert_eq!(
        outcome.timers[0].due_at,
        outcome.record.state_changed_at + chrono::TimeDelta::days(5)
    );
}

#[test]
fn no_timers_from_state_without_after() {
    let definition = with_auto_close();
    let context = Context {
        definition: &definition,
        version: "v1",
        rules: &NoRules,
        actor: &requester(),
        now: Utc::now(),
        groups: &Default::default(),
        links: &[],
        cmdb: None,
    };
    let command = Command::Create {
        title: "disk".into(),
        description: String::new(),
        fields: Fields::new(),
        preset: Fields::new(),
    };
    let outcome = execute(&context, None, &command).unwrap();
    assert_eq!(outcome.record.state, "new");
    assert!(outcome.timers.is_empty(), "{:?}", outcome.timers);
}

#[test]
fn no_timers_when_state_unchanged() {
    let definition = with_auto_close();
    let record = solved(&definition);
    let outcome = apply(
        &definition,
        &technician(),
        &record,
        Command::Comment {
            text: "waiting for the requester".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.record.state, "solved");
    assert!(outcome.timers.is_empty(), "{:?}", outcome.timers);

    let outcome = apply(
        &definition,
        &technician(),
        &record,
        Command::Update {
            title: Some("disk full".into()),
            description: None,
            fields: Fields::new(),
        },
    )
    .unwrap();
    assert!(!outcome.events.is_empty());
    assert!(outcome.timers.is_empty(), "{:?}", outcome.timers);
}

#[test]
fn timed_transition_rules_are_checked() {
    let text = DEFINITION
        .replace("rules:\n  on_create: [ticket/first, ticket/second]\n", "")
        .replace(
            "requires: [technician] }",
            "requires: [technician], after: 1h }",
        )
        .replace(
            "  - { name: close, from: solved, to: closed, roles: [technician, requester] }",
            "  - { name: close, from: solved, to: closed, roles: [technician, requester], after: 5d }",
        )
        .replace(
            "roles: [technician, requester], comment_required: true }",
            "roles: [technician, requester], comment_required: true, after: 2d }",
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(dir.path().join("workflows/ticket.yaml"), text).unwrap();
    let errors = tend_workflow::load_dir(dir.path(), &NoRules)
        .unwrap_err()
        .diagnostics;
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`assign` has both `after` and `requires`")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`reopen` has both `after` and `comment_required`")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`close` and `reopen` both leave state `solved`")),
        "{messages:?}"
    );
}
