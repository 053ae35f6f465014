//! Tests of the rule test runner: `rules/<name>.tests.yaml` files and their report.

use std::fs;
use std::path::Path;

use tend_scripting::{RuleHost, run_rule_tests};

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

const PRIORITY_RULE: &str = r#"
if record.impact == "high" { set_field("priority", "P1", "high impact"); }
"#;

#[test]
fn passing_and_failing_cases_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/incident/prio.rhai", PRIORITY_RULE);
    write(
        dir.path(),
        "rules/incident/prio.tests.yaml",
        r#"
- name: high impact is P1
  record: { title: t, impact: high }
  expect: [{ effect: set_field, field: priority, value: P1, reason: high impact }]
- name: wrong expectation
  record: { title: t, impact: high }
  expect: [{ effect: set_field, field: priority, value: P2 }]
- name: low impact proposes nothing
  record: { title: t, impact: low }
  expect: []
"#,
    );
    let host = RuleHost::new(dir.path());
    let report = run_rule_tests(dir.path(), &host);
    assert_eq!(report.passed(), 2, "{report}");
    assert_eq!(report.failed(), 1, "{report}");

    let failure = report.failures().next().unwrap();
    assert_eq!(failure.title(), "incident/prio: wrong expectation");
    let message = failure.failure.as_deref().unwrap();
    assert!(
        message.contains("expected  set_field priority = \"P2\""),
        "{message}"
    );
    assert!(
        message.contains("actual    set_field priority = \"P1\" (reason: \"high impact\")"),
        "{message}"
    );
    assert!(
        report.to_string().ends_with("2 passed, 1 failed"),
        "{report}"
    );
}

#[test]
fn rule_without_tests_fails() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/incident/prio.rhai", PRIORITY_RULE);
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    let failure = report.failures().next().expect("a failure");
    assert_eq!(
        failure.failure.as_deref(),
        Some("rule incident/prio has no test cases: create rules/incident/prio.tests.yaml")
    );
    assert!(!report.is_success());
}

#[test]
fn tests_without_rule_fail() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules/incident/gone.tests.yaml",
        "- { name: a, record: {}, expect: [] }\n",
    );
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    let message = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(
        message.contains("has no script: create rules/incident/gone.rhai"),
        "{message}"
    );
}

#[test]
fn unknown_key_is_located() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/incident/prio.rhai", PRIORITY_RULE);
    write(
        dir.path(),
        "rules/incident/prio.tests.yaml",
        "- name: typo\n  record: { title: t }\n  expect:\n    - { effect: set_field, field: priority, vaule: P1 }\n",
    );
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    let message = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(message.contains("prio.tests.yaml"), "{message}");
    assert!(message.contains("vaule"), "{message}");
    assert!(message.contains("prio.tests.yaml:4:"), "{message}");
}

#[test]
fn failing_rule_reported_in_case() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules/incident/boom.rhai", "let x = 10 / 0;");
    write(
        dir.path(),
        "rules/incident/boom.tests.yaml",
        "- { name: divides, record: {}, expect: [] }\n",
    );
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    let message = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(
        message.starts_with("the rule failed: arithmetic error"),
        "{message}"
    );
}

#[test]
fn case_inputs_reach_rule() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rules/incident/echo.rhai",
        r#"note(`${hook} ${transition} ${actor.name} ${record.state} ${previous.state} ${previous.title}`, "echo");"#,
    );
    write(
        dir.path(),
        "rules/incident/echo.tests.yaml",
        r#"
- name: all inputs
  hook: on_transition
  transition: reopen
  actor: { name: ana, roles: [requester] }
  record: { title: printer, state: in_progress }
  previous: { state: resolved }
  expect: [{ effect: note, text: on_transition reopen ana in_progress resolved printer }]
"#,
    );
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    assert!(report.is_success(), "{report}");
}

#[test]
fn missing_rules_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_rule_tests(dir.path(), &RuleHost::new(dir.path()));
    let message = report.failures().next().unwrap().failure.clone().unwrap();
    assert!(message.starts_with("no rules directory at"), "{message}");
}
