//! Pattern criteria on values of any type: `matches(value, pattern)` on text, numbers,
//! `()` and arrays, in a rule that runs next to another rule for the same record.

mod common;

use serde_json::json;
use tend_domain::Effect;

use common::{TestRules, record};

const CHECK_PROCESS: &str = r#"
if matches(record.service, "(.*)_check_(.*)_process") {
    note("process check", "The service names a process check");
}
"#;

const ALWAYS: &str = r#"note("second rule ran", "Every record gets this note");"#;

fn notes(rules: &TestRules, rule: &str, service: serde_json::Value) -> Vec<String> {
    let input = record("Alert", json!({ "service": service }));
    rules
        .run(rule, &input)
        .unwrap_or_else(|failure| panic!("{rule} failed for {service}: {failure}"))
        .into_iter()
        .filter_map(|proposed| match proposed.effect {
            Effect::Note { text } => Some(text),
            _ => None,
        })
        .collect()
}

#[test]
fn matches_text_and_arrays_only() {
    let rules = TestRules::new(&[("alerts/check", CHECK_PROCESS), ("alerts/always", ALWAYS)]);
    for (service, expected) in [
        (json!("db_check_pg_process"), true),
        (json!(["web", "db_check_pg_process"]), true),
        (json!(["web", 42]), false),
        (json!(42), false),
        (json!(null), false),
        (json!({ "name": "db_check_pg_process" }), false),
        (json!(true), false),
    ] {
        let found = notes(&rules, "alerts/check", service.clone());
        assert_eq!(!found.is_empty(), expected, "service {service}");
        // The other rule of the same event still runs, whatever the first one met.
        assert_eq!(notes(&rules, "alerts/always", service), ["second rule ran"]);
    }
}

#[test]
fn invalid_pattern_fails_the_rule_with_its_error() {
    let rules = TestRules::new(&[(
        "alerts/broken",
        r#"if matches(record.service, "(unclosed") { note("x", "y"); }"#,
    )]);
    let input = record("Alert", json!({ "service": "db" }));
    let failure = rules
        .run("alerts/broken", &input)
        .expect_err("an invalid pattern must fail the rule");
    assert!(
        failure.message.contains("invalid pattern `(unclosed`"),
        "{}",
        failure.message
    );
}

/// Two conditions on one field: a mapping that names the field twice is rejected as a
/// duplicate key, never read as "the last one wins", and the list form keeps both.
#[test]
fn duplicate_key_in_case_is_rejected() {
    let rules = TestRules::new(&[(
        "alerts/disk",
        r#"
let body = record.body;
if matches(body, "disk") && !matches(body, "test") {
    note("disk alert", "The body mentions a disk and is not a test");
}
"#,
    )]);
    let tests = rules.dir.path().join("rules/alerts/disk.tests.yaml");
    std::fs::write(
        &tests,
        "- name: two values for one field\n  record:\n    body: disk full on srv1\n    body: test disk\n  expect: []\n",
    )
    .unwrap();
    let report = tend_scripting::run_rule_tests(rules.dir.path(), &rules.host);
    let failure = report
        .results
        .iter()
        .find_map(|result| result.failure.clone())
        .expect("a duplicate key must fail the test file");
    assert!(failure.contains("duplicate key `body`"), "{failure}");

    std::fs::write(
        &tests,
        "- name: disk without test\n  record: { body: disk full on srv1 }\n  expect:\n    - { effect: note, text: disk alert }\n- name: test disk\n  record: { body: test disk }\n  expect: []\n",
    )
    .unwrap();
    let report = tend_scripting::run_rule_tests(rules.dir.path(), &rules.host);
    let failures: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| r.failure.clone())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(report.results.len(), 2);
}
