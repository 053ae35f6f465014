//! Rule test cases: `rules/<process>/<name>.tests.yaml` beside each script.
//!
//! A test file is a list of cases:
//!
//! ```yaml
//! - name: vpn outage goes to infrastructure
//!   record: { title: VPN down, description: cannot connect, impact: high }
//!   previous: { assignment_group: network }    # optional: the record before the command
//!   hook: on_update                            # optional, on_create by default
//!   transition: reopen                         # optional
//!   actor: { name: tara, roles: [technician] } # optional
//!   now: 2027-01-04T09:00:00Z                  # optional: the rule's `now`
//!   expect:
//!     - { effect: set_field, field: category, value: infrastructure }
//!     - { effect: recommend, action: recover, params: { ci: null } }
//!     - { effect: note, text: "..." }
//! ```
//!
//! `expect` is the exact list of effects in order. `params`, `text` and `reason` are
//! compared only when given. In `record`, the keys `title`, `description`, `state`,
//! `number`, `created_at`, `updated_at` and `state_changed_at` fill the record's columns
//! and every other key is a field. The three instants and `now` are RFC 3339 and default to
//! 1970-01-01T00:00:00Z. `previous` takes the columns it does not give from `record`.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tend_domain::{Actor, Effect, Fields, ProposedEffect, Record, Role};
use tend_workflow::{Hook, LinkedChange, LinkedRecord, RuleInput, RuleRunner};

use crate::RuleHost;
use crate::report::{CaseResult, RuleTestReport, effects_diff};

/// One test case of a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    record: Fields,
    #[serde(default)]
    previous: Option<Fields>,
    #[serde(default)]
    hook: Option<HookName>,
    #[serde(default)]
    transition: Option<String>,
    #[serde(default)]
    actor: Option<Actor>,
    /// Records linked to the record, as rules see them.
    #[serde(default)]
    links: Vec<LinkedRecord>,
    /// For `on_linked`: the transition of a linked record the rule reacts to.
    #[serde(default)]
    linked: Option<LinkedChange>,
    /// The instant the rule reads as `now`.
    #[serde(default)]
    now: Option<DateTime<Utc>>,
    /// For `on_email`: the message the rule reads as `email`.
    #[serde(default)]
    email: Option<Value>,
    /// What the CMDB knows about the record, as the rule reads it in `cmdb`: `cis`,
    /// `affected` (`count`, `services`, `critical_services`, `highest_criticality`),
    /// `open_changes`, `known_errors`, `problems`, `incidents` and `requester_cis`.
    #[serde(default)]
    cmdb: Option<Value>,
    /// For `on_alert`: the alert the rule reads as `alert`.
    #[serde(default)]
    alert: Option<Value>,
    expect: Vec<ExpectedEffect>,
}

/// The hook a case runs for, spelled as in definitions.
#[derive(Debug, Clone, Copy, Deserialize)]
enum HookName {
    #[serde(rename = "on_create")]
    Create,
    #[serde(rename = "on_update")]
    Update,
    #[serde(rename = "on_transition")]
    Transition,
    #[serde(rename = "guard")]
    Guard,
    #[serde(rename = "approvers")]
    Approvers,
    #[serde(rename = "on_linked")]
    Linked,
    #[serde(rename = "on_timer")]
    Timer,
    #[serde(rename = "on_email")]
    Email,
    #[serde(rename = "on_ci_change")]
    CiChange,
    #[serde(rename = "on_alert")]
    Alert,
}

impl From<HookName> for Hook {
    fn from(name: HookName) -> Hook {
        match name {
            HookName::Create => Hook::OnCreate,
            HookName::Update => Hook::OnUpdate,
            HookName::Transition => Hook::OnTransition,
            HookName::Guard => Hook::Guard,
            HookName::Approvers => Hook::Approvers,
            HookName::Linked => Hook::OnLinked,
            HookName::Timer => Hook::OnTimer,
            HookName::Email => Hook::OnEmail,
            HookName::CiChange => Hook::OnCiChange,
            HookName::Alert => Hook::OnAlert,
        }
    }
}

/// An effect a case expects; optional parts are compared only when given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ExpectedEffect {
    SetField {
        field: String,
        value: Value,
        #[serde(default)]
        reason: Option<String>,
    },
    Recommend {
        action: String,
        #[serde(default)]
        params: Option<Value>,
        #[serde(default)]
        reason: Option<String>,
    },
    Note {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    Deny {
        #[serde(default)]
        message: Option<String>,
    },
    Approver {
        approver: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Transition {
        name: String,
        #[serde(default)]
        reason: Option<String>,
    },
    RunAction {
        action: String,
        #[serde(default)]
        params: Option<Value>,
        #[serde(default)]
        reason: Option<String>,
    },
    Link {
        link_type: String,
        target: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Open {
        process: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        fields: Option<Fields>,
        #[serde(default)]
        link_type: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
}

impl ExpectedEffect {
    /// Checks whether `actual` satisfies this expectation.
    pub(crate) fn matches(&self, actual: &ProposedEffect) -> bool {
        let (effect_matches, reason) = match (self, &actual.effect) {
            (
                ExpectedEffect::SetField {
                    field,
                    value,
                    reason,
                },
                Effect::SetField {
                    field: actual_field,
                    value: actual_value,
                },
            ) => (field == actual_field && value == actual_value, reason),
            (
                ExpectedEffect::Recommend {
                    action,
                    params,
                    reason,
                },
                Effect::Recommend {
                    action: actual_action,
                    params: actual_params,
                },
            ) => (
                action == actual_action
                    && params.as_ref().is_none_or(|params| params == actual_params),
                reason,
            ),
            (ExpectedEffect::Note { text, reason }, Effect::Note { text: actual_text }) => {
                (text.as_ref().is_none_or(|text| text == actual_text), reason)
            }
            (ExpectedEffect::Deny { message }, Effect::Deny { message: actual }) => (
                message.as_ref().is_none_or(|message| message == actual),
                &None,
            ),
            (
                ExpectedEffect::Approver { approver, reason },
                Effect::Approver { approver: actual },
            ) => (approver == actual, reason),
            (ExpectedEffect::Transition { name, reason }, Effect::Transition { name: actual }) => {
                (name == actual, reason)
            }
            (
                ExpectedEffect::RunAction {
                    action,
                    params,
                    reason,
                },
                Effect::RunAction {
                    action: actual_action,
                    params: actual_params,
                },
            ) => (
                action == actual_action
                    && params.as_ref().is_none_or(|params| params == actual_params),
                reason,
            ),
            (
                ExpectedEffect::Link {
                    link_type,
                    target,
                    reason,
                },
                Effect::Link {
                    link_type: actual_type,
                    target: actual_target,
                },
            ) => (link_type == actual_type && target == actual_target, reason),
            (
                ExpectedEffect::Open {
                    process,
                    title,
                    fields,
                    link_type,
                    reason,
                },
                Effect::Open {
                    process: actual_process,
                    title: actual_title,
                    fields: actual_fields,
                    link_type: actual_link,
                    ..
                },
            ) => (
                process == actual_process
                    && title.as_ref().is_none_or(|t| t == actual_title)
                    && fields.as_ref().is_none_or(|f| {
                        f.iter()
                            .all(|(name, value)| actual_fields.get(name) == Some(value))
                    })
                    && link_type
                        .as_ref()
                        .is_none_or(|l| Some(l) == actual_link.as_ref()),
                reason,
            ),
            _ => return false,
        };
        effect_matches
            && reason
                .as_ref()
                .is_none_or(|reason| *reason == actual.reason)
    }
}

/// Runs every test case under `root/rules` with `host` and reports each case. A script
/// without a test file, a test file without a script and an unreadable test file are
/// reported as failures too.
pub fn run_rule_tests(root: &Path, host: &RuleHost) -> RuleTestReport {
    let mut report = RuleTestReport::default();
    let rules_dir = root.join("rules");
    if !rules_dir.is_dir() {
        report.push(CaseResult::failed(
            "",
            "",
            format!(
                "no rules directory at {}: check the definitions directory",
                rules_dir.display()
            ),
        ));
        return report;
    }

    let mut rules = Vec::new();
    let mut test_files = Vec::new();
    if let Err(error) = collect_files(&rules_dir, &mut rules, &mut test_files) {
        report.push(CaseResult::failed(
            "",
            "",
            format!("cannot list {}: {error}", rules_dir.display()),
        ));
        return report;
    }

    for rule in &test_files {
        if !rules.contains(rule) {
            let message = format!(
                "rules/{rule}.tests.yaml has no script: create rules/{rule}.rhai or remove the test file"
            );
            report.push(CaseResult::failed(rule, "", message));
        }
    }
    for rule in &rules {
        if !test_files.contains(rule) {
            let message = format!("rule {rule} has no test cases: create rules/{rule}.tests.yaml");
            report.push(CaseResult::failed(rule, "", message));
            continue;
        }
        run_test_file(
            &rules_dir.join(format!("{rule}.tests.yaml")),
            rule,
            host,
            &mut report,
        );
    }
    report
}

/// Collects the rule names of scripts and of test files below `rules_dir`, sorted.
fn collect_files(
    rules_dir: &Path,
    rules: &mut Vec<String>,
    tests: &mut Vec<String>,
) -> std::io::Result<()> {
    let mut pending = vec![rules_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(relative) = path.strip_prefix(rules_dir).ok().and_then(Path::to_str) else {
                continue;
            };
            let relative = relative.replace(std::path::MAIN_SEPARATOR, "/");
            if let Some(rule) = relative.strip_suffix(".tests.yaml") {
                tests.push(rule.to_owned());
            } else if let Some(rule) = relative.strip_suffix(".rhai") {
                rules.push(rule.to_owned());
            }
        }
    }
    rules.sort();
    tests.sort();
    Ok(())
}

fn run_test_file(path: &Path, rule: &str, host: &RuleHost, report: &mut RuleTestReport) {
    // The definitions' parser rejects duplicate keys, so that a case whose `record` names
    // a field twice fails instead of keeping the last value.
    let cases: Vec<TestCase> = match fs::read_to_string(path)
        .map_err(|error| format!("{}: {error}", path.display()))
        .and_then(|text| {
            tend_workflow::parse_yaml(path, &text).map_err(|diagnostics| {
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }) {
        Ok(cases) => cases,
        Err(error) => {
            report.push(CaseResult::failed(rule, "", error));
            return;
        }
    };
    if cases.is_empty() {
        let message = format!(
            "rule {rule} has no test cases: add cases to {}",
            path.display()
        );
        report.push(CaseResult::failed(rule, "", message));
        return;
    }
    for case in cases {
        let outcome = run_case(rule, &case, host);
        report.push(match outcome {
            Ok(()) => CaseResult::passed(rule, &case.name),
            Err(message) => CaseResult::failed(rule, &case.name, message),
        });
    }
}

fn run_case(rule: &str, case: &TestCase, host: &RuleHost) -> Result<(), String> {
    let process = rule.split('/').next().unwrap_or(rule);
    let record = build_record(process, &case.record, None)?;
    let previous = case
        .previous
        .as_ref()
        .map(|previous| build_record(process, previous, Some(&record)))
        .transpose()?;
    let actor = case
        .actor
        .clone()
        .unwrap_or_else(|| Actor::new("rule-test", vec![Role::Technician]));
    let input = RuleInput {
        hook: case.hook.map_or(Hook::OnCreate, Hook::from),
        record: &record,
        previous: previous.as_ref(),
        actor: &actor,
        transition: case.transition.as_deref(),
        links: &case.links,
        linked: case.linked.as_ref(),
        now: case.now.unwrap_or(DateTime::UNIX_EPOCH),
        email: case.email.as_ref(),
        cmdb: case.cmdb.as_ref(),
        alert: case.alert.as_ref(),
    };
    let actual = host
        .run(rule, &input)
        .map_err(|failure| format!("the rule failed: {}", failure.message))?;
    match effects_diff(&case.expect, &actual) {
        None => Ok(()),
        Some(diff) => Err(format!("effects differ:\n{diff}")),
    }
}

/// Builds a record from a case's map; columns missing from it come from `base`.
fn build_record(process: &str, map: &Fields, base: Option<&Record>) -> Result<Record, String> {
    let mut fields = map.clone();
    let mut take = |name: &str| {
        fields.remove(name).map(|value| match value {
            Value::String(text) => text,
            other => other.to_string(),
        })
    };
    let title = take("title").or_else(|| base.map(|record| record.title.clone()));
    let description = take("description").or_else(|| base.map(|record| record.description.clone()));
    let state = take("state").or_else(|| base.map(|record| record.state.clone()));
    let number = take("number").or_else(|| base.map(|record| record.number.clone()));
    let mut instant = |name: &str, inherited: Option<DateTime<Utc>>| {
        match take(name) {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|at| at.to_utc())
            .map_err(|error| {
                format!(
                    "`{name}: {text}` in the case's record is not an RFC 3339 instant ({error}): write it as 2027-01-04T09:00:00Z"
                )
            }),
        None => Ok(inherited.unwrap_or(DateTime::UNIX_EPOCH)),
    }
    };
    let created_at = instant("created_at", base.map(|record| record.created_at))?;
    let updated_at = instant("updated_at", base.map(|record| record.updated_at))?;
    let state_changed_at = instant(
        "state_changed_at",
        base.map(|record| record.state_changed_at),
    )?;
    Ok(Record {
        id: 1,
        number: number.unwrap_or_default(),
        process: process.to_owned(),
        definition_version: "rule-test".to_owned(),
        state: state.unwrap_or_else(|| "new".to_owned()),
        open: true,
        title: title.unwrap_or_default(),
        description: description.unwrap_or_default(),
        fields,
        recommendations: Vec::new(),
        created_at,
        updated_at,
        state_changed_at,
        revision: 1,
    })
}
