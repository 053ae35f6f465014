//! Runs the test cases of the rules shipped in the repository's `rules/` directory.

use std::path::Path;

use tend_scripting::{RuleHost, run_rule_tests};
use tend_workflow::RuleRunner;

fn repository_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn shipped_rule_cases_pass() {
    let root = repository_root();
    let host = RuleHost::new(root);
    let report = run_rule_tests(root, &host);
    println!("{report}");

    let failures: Vec<String> = report
        .failures()
        .map(|failure| {
            format!(
                "{}: {}",
                failure.title(),
                failure.failure.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failed rule cases:\n{}",
        failures.join("\n")
    );
    assert!(
        report.passed() > 0,
        "no rule case ran under {}",
        root.display()
    );
}

#[test]
fn incident_workflow_rules_compile() {
    let root = repository_root();
    let host = RuleHost::new(root);
    let rules = [
        "incident/categorize",
        "common/prioritize",
        "incident/assign",
        "incident/recommend",
        "incident/count_reassignment",
        "incident/count_reopen",
    ];
    for rule in rules {
        assert_eq!(host.check(rule), Ok(()), "rule {rule}");
    }
}
