//! Tests of the rule host: finding and compiling scripts, the variables rules see, and
//! the effect functions.

mod common;

use common::{TestRules, plain_record, record};
use serde_json::json;
use tend_domain::{Actor, Effect, Role};
use tend_workflow::{Hook, RuleCheckError, RuleInput, RuleRunner};

#[test]
fn check_reports_missing_script() {
    let rules = TestRules::new(&[]);
    match rules.host.check("incident/nothing") {
        Err(RuleCheckError::Missing { rule, expected }) => {
            assert_eq!(rule, "incident/nothing");
            assert_eq!(
                expected,
                rules.dir.path().join("rules/incident/nothing.rhai")
            );
        }
        other => panic!("expected a missing script, got {other:?}"),
    }
    let failure = rules.run("incident/nothing", &plain_record()).unwrap_err();
    assert!(failure.message.contains("create"), "{}", failure.message);
}

#[test]
fn check_locates_compile_error() {
    let rules = TestRules::new(&[("incident/broken", "let a = 1;\nlet b = (a + ;\n")]);
    match rules.host.check("incident/broken") {
        Err(RuleCheckError::Compile(error)) => {
            assert_eq!(
                error.path,
                rules.dir.path().join("rules/incident/broken.rhai")
            );
            assert_eq!(error.line, 2);
            assert!(error.column > 0, "{error}");
            assert!(!error.message.is_empty());
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn check_rejects_undefined_variable() {
    let rules = TestRules::new(&[("incident/typo", r#"set_field("x", recrod.title, "r");"#)]);
    match rules.host.check("incident/typo") {
        Err(RuleCheckError::Compile(error)) => {
            assert!(error.message.contains("recrod"), "{error}");
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn check_rejects_path_escape() {
    let rules = TestRules::new(&[]);
    for name in ["../secret", "incident//x", "Incident/X", "incident/x.y", ""] {
        match rules.host.check(name) {
            Err(RuleCheckError::Compile(error)) => {
                assert!(
                    error.message.contains("invalid rule name"),
                    "{name}: {error}"
                );
            }
            other => panic!("{name}: expected an invalid name, got {other:?}"),
        }
    }
}

#[test]
fn script_recompiled_after_change() {
    let rules = TestRules::new(&[("incident/edit", r#"note("first", "r");"#)]);
    let first = rules.run("incident/edit", &plain_record()).unwrap();
    assert_eq!(
        first[0].effect,
        Effect::Note {
            text: "first".to_owned()
        }
    );

    rules.write("incident/edit", r#"note("second version", "r");"#);
    let second = rules.run("incident/edit", &plain_record()).unwrap();
    assert_eq!(
        second[0].effect,
        Effect::Note {
            text: "second version".to_owned()
        }
    );

    rules.write("incident/edit", "let broken = ;");
    assert!(matches!(
        rules.host.check("incident/edit"),
        Err(RuleCheckError::Compile(_))
    ));
}

#[test]
fn rule_sees_its_input() {
    let rules = TestRules::new(&[(
        "incident/input",
        r#"
        note(`${record.number} ${record.process} ${record.state} ${record.title} ${record.impact}`, "r");
        note(`previous ${previous.impact}`, "r");
        note(`${actor.name} ${actor.roles}`, "r");
        note(`${hook} ${transition}`, "r");
        "#,
    )]);
    let current = record("disk full", json!({ "impact": "high" }));
    let previous = record("disk full", json!({ "impact": "low" }));
    let actor = Actor::new("tara", vec![Role::Technician, Role::ProcessOwner]);
    let input = RuleInput {
        hook: Hook::OnTransition,
        record: &current,
        previous: Some(&previous),
        actor: &actor,
        transition: Some("start"),
        links: &[],
        linked: None,
        now: chrono::DateTime::UNIX_EPOCH,
        email: None,
        cmdb: None,
        alert: None,
    };
    let texts: Vec<String> = rules
        .host
        .run("incident/input", &input)
        .unwrap()
        .into_iter()
        .map(|proposed| match proposed.effect {
            Effect::Note { text } => text,
            other => panic!("unexpected effect {other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        [
            "INC0000001 incident new disk full high",
            "previous low",
            "tara [\"technician\", \"process_owner\"]",
            "on_transition start",
        ]
    );
}

#[test]
fn effect_functions_map_to_effects() {
    let rules = TestRules::new(&[(
        "incident/effects",
        r#"
        set_field("impact", "high", "set");
        assign_group("network", "group");
        assign_to("tara", "user");
        recommend("recover", #{ ci: record.ci, depth: 2, tags: ["a"] }, "tool");
        note("checked", "note");
        "#,
    )]);
    let effects = rules.run("incident/effects", &plain_record()).unwrap();
    let pairs: Vec<(String, Effect)> = effects
        .into_iter()
        .map(|proposed| {
            assert_eq!(proposed.rule, "incident/effects");
            (proposed.reason, proposed.effect)
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "set".to_owned(),
                Effect::SetField {
                    field: "impact".to_owned(),
                    value: json!("high")
                }
            ),
            (
                "group".to_owned(),
                Effect::SetField {
                    field: "assignment_group".to_owned(),
                    value: json!("network")
                }
            ),
            (
                "user".to_owned(),
                Effect::SetField {
                    field: "assignee".to_owned(),
                    value: json!("tara")
                }
            ),
            (
                "tool".to_owned(),
                Effect::Recommend {
                    action: "recover".to_owned(),
                    params: json!({ "ci": null, "depth": 2, "tags": ["a"] }),
                }
            ),
            (
                "note".to_owned(),
                Effect::Note {
                    text: "checked".to_owned()
                }
            ),
        ]
    );
}

#[test]
fn wrong_argument_types_fail() {
    let rules = TestRules::new(&[("incident/wrong", r#"set_field(1, 2);"#)]);
    let failure = rules.run("incident/wrong", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("no function matches set_field"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("wrong.rhai:1:1"),
        "{}",
        failure.message
    );
}

#[test]
fn empty_reason_fails() {
    let rules = TestRules::new(&[("incident/reason", r#"note("text", " ");"#)]);
    let failure = rules.run("incident/reason", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("reason must not be empty"),
        "{}",
        failure.message
    );
}

#[test]
fn function_pointer_cannot_be_stored() {
    let rules = TestRules::new(&[(
        "incident/pointer",
        r#"fn f() {} set_field("x", Fn("f"), "r");"#,
    )]);
    let failure = rules.run("incident/pointer", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("cannot be stored"),
        "{}",
        failure.message
    );
}

#[test]
fn error_names_function() {
    let rules = TestRules::new(&[("incident/inner", "fn check(n) {\n    n / 0\n}\ncheck(1);")]);
    let failure = rules.run("incident/inner", &plain_record()).unwrap_err();
    assert!(
        failure.message.contains("arithmetic error"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("in function `check`"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("inner.rhai:2:"),
        "{}",
        failure.message
    );
}

#[test]
fn print_and_debug_do_not_fail() {
    let rules = TestRules::new(&[(
        "incident/print",
        r#"print("hello"); debug(record.title); note("done", "r");"#,
    )]);
    let effects = rules.run("incident/print", &plain_record()).unwrap();
    assert_eq!(effects.len(), 1);
}

#[test]
fn fields_used_lists_reads_and_writes() {
    let source = "\
if record.impact == \"high\" && previous != () && previous.urgency != () {
    set_field(\"priority\", \"P1\", \"high impact\");
}
let name = \"category\";
set_field(name, \"data\", \"computed name is not listed\");
assign_group(\"network\", \"network words\");
let text = `${record.title}`;
";
    let rules = TestRules::new(&[("incident/uses", source)]);
    let uses = rules.host.fields_used("incident/uses");
    let found: Vec<(&str, tend_workflow::FieldAccess, usize)> = uses
        .iter()
        .map(|used| (used.field.as_str(), used.access, used.line))
        .collect();
    use tend_workflow::FieldAccess::{Read, Write};
    assert_eq!(
        found,
        [
            ("impact", Read, 1),
            ("urgency", Read, 1),
            ("priority", Write, 2),
            ("assignment_group", Write, 6),
            ("title", Read, 7),
        ]
    );
    assert!(
        uses.iter()
            .all(|used| used.path.ends_with("rules/incident/uses.rhai"))
    );
    assert!(uses[2].column > 0);
}

#[test]
fn fields_used_of_missing_rule_is_empty() {
    let rules = TestRules::new(&[]);
    assert!(rules.host.fields_used("incident/nothing").is_empty());
}

#[test]
fn guard_deny_proposes_deny_effect() {
    let source = "\
if hook == \"guard\" && transition == \"resolve\" && record.resolution_code == () {
    deny(\"Give a resolution code before resolving\");
}
";
    let rules = TestRules::new(&[("incident/resolvable", source)]);
    let actor = Actor::new("tara", vec![Role::Technician]);
    let record = plain_record();
    let input = RuleInput {
        hook: Hook::Guard,
        record: &record,
        previous: Some(&record),
        actor: &actor,
        transition: Some("resolve"),
        links: &[],
        linked: None,
        now: chrono::DateTime::UNIX_EPOCH,
        email: None,
        cmdb: None,
        alert: None,
    };
    let effects = rules.host.run("incident/resolvable", &input).unwrap();
    assert_eq!(effects.len(), 1);
    assert_eq!(
        effects[0].effect,
        Effect::Deny {
            message: "Give a resolution code before resolving".into()
        }
    );
    let blank = TestRules::new(&[("incident/blank", "deny(\"  \");")]);
    let failure = blank.host.run("incident/blank", &input).unwrap_err();
    assert!(failure.message.contains("deny"), "{}", failure.message);
}
