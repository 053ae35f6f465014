//! The outcome of running rule test cases, printable for a terminal.

use std::fmt::{self, Write};

use tend_domain::{Effect, ProposedEffect};

use crate::tests_file::ExpectedEffect;

/// Outcome of every rule test case, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTestReport {
    pub results: Vec<CaseResult>,
}

/// Outcome of one case. `case` is empty for a problem with a whole rule or test file,
/// such as a missing test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub rule: String,
    pub case: String,
    /// Failure message, possibly of several lines; `None` when the case passed.
    pub failure: Option<String>,
}

impl CaseResult {
    pub(crate) fn passed(rule: &str, case: &str) -> CaseResult {
        CaseResult {
            rule: rule.to_owned(),
            case: case.to_owned(),
            failure: None,
        }
    }

    pub(crate) fn failed(rule: &str, case: &str, message: String) -> CaseResult {
        CaseResult {
            rule: rule.to_owned(),
            case: case.to_owned(),
            failure: Some(message),
        }
    }

    pub fn is_passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Names the case as `rule: case`, or only the rule for a rule-wide problem.
    pub fn title(&self) -> String {
        match (self.rule.is_empty(), self.case.is_empty()) {
            (true, _) => "rules".to_owned(),
            (false, true) => self.rule.clone(),
            (false, false) => format!("{}: {}", self.rule, self.case),
        }
    }
}

impl RuleTestReport {
    pub(crate) fn push(&mut self, result: CaseResult) {
        self.results.push(result);
    }

    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|result| result.is_passed())
            .count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Checks whether every case passed and at least one case ran.
    pub fn is_success(&self) -> bool {
        self.failed() == 0 && self.passed() > 0
    }

    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|result| !result.is_passed())
    }
}

/// Prints one line per case, failure details indented below it, and a closing
/// `N passed, N failed` line.
impl fmt::Display for RuleTestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            match &result.failure {
                None => writeln!(f, "ok   {}", result.title())?,
                Some(message) => {
                    writeln!(f, "FAIL {}", result.title())?;
                    for line in message.lines() {
                        writeln!(f, "       {line}")?;
                    }
                }
            }
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Compares expected and actual effects position by position. Returns `None` when they
/// match, or a listing of both sides with each differing position marked.
pub(crate) fn effects_diff(
    expected: &[ExpectedEffect],
    actual: &[ProposedEffect],
) -> Option<String> {
    let same_length = expected.len() == actual.len();
    if same_length
        && expected
            .iter()
            .zip(actual)
            .all(|(want, got)| want.matches(got))
    {
        return None;
    }

    let mut diff = String::new();
    for index in 0..expected.len().max(actual.len()) {
        let want = expected.get(index);
        let got = actual.get(index);
        let number = index + 1;
        match (want, got) {
            (Some(want), Some(got)) if want.matches(got) => {
                let _ = writeln!(diff, "  {number}. same      {}", show_actual(got));
            }
            _ => {
                let want = want.map_or_else(|| "(no effect)".to_owned(), show_expected);
                let got = got.map_or_else(|| "(no effect)".to_owned(), show_actual);
                let _ = writeln!(diff, "  {number}. expected  {want}");
                let _ = writeln!(diff, "     actual    {got}");
            }
        }
    }
    Some(diff.trim_end().to_owned())
}

fn show_expected(effect: &ExpectedEffect) -> String {
    let (text, reason) = match effect {
        ExpectedEffect::SetField {
            field,
            value,
            reason,
        } => (format!("set_field {field} = {value}"), reason),
        ExpectedEffect::Recommend {
            action,
            params,
            reason,
        } => {
            let params = params
                .as_ref()
                .map_or_else(|| "(any params)".to_owned(), ToString::to_string);
            (format!("recommend {action} {params}"), reason)
        }
        ExpectedEffect::Note { text, reason } => {
            let text = text
                .as_ref()
                .map_or_else(|| "(any text)".to_owned(), |text| format!("{text:?}"));
            (format!("note {text}"), reason)
        }
        ExpectedEffect::Deny { message } => {
            let message = message
                .as_ref()
                .map_or_else(|| "(any message)".to_owned(), |m| format!("{m:?}"));
            (format!("deny {message}"), &None)
        }
        ExpectedEffect::Approver { approver, reason } => (format!("approver {approver}"), reason),
        ExpectedEffect::Transition { name, reason } => (format!("transition {name}"), reason),
        ExpectedEffect::RunAction { action, reason, .. } => {
            (format!("run_action {action}"), reason)
        }
        ExpectedEffect::Link {
            link_type,
            target,
            reason,
        } => (format!("link {link_type} {target}"), reason),
        ExpectedEffect::Open {
            process,
            title,
            reason,
            ..
        } => {
            let title = title
                .as_ref()
                .map_or_else(|| "(any title)".to_owned(), |t| format!("{t:?}"));
            (format!("open {process} {title}"), reason)
        }
    };
    match reason {
        Some(reason) => format!("{text} (reason: {reason:?})"),
        None => text,
    }
}

fn show_actual(effect: &ProposedEffect) -> String {
    let text = match &effect.effect {
        Effect::SetField { field, value } => format!("set_field {field} = {value}"),
        Effect::Recommend { action, params } => format!("recommend {action} {params}"),
        Effect::Note { text } => format!("note {text:?}"),
        Effect::Deny { message } => format!("deny {message:?}"),
        Effect::Approver { approver } => format!("approver {approver}"),
        Effect::Transition { name } => format!("transition {name}"),
        Effect::Link { link_type, target } => format!("link {link_type} {target}"),
        Effect::Open { process, title, .. } => format!("open {process} {title:?}"),
        Effect::RunAction { action, params } => format!("run_action {action} {params}"),
    };
    format!("{text} (reason: {:?})", effect.reason)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn proposed(effect: Effect) -> ProposedEffect {
        ProposedEffect {
            rule: "incident/test".to_owned(),
            reason: "because".to_owned(),
            effect,
        }
    }

    #[test]
    fn diff_none_when_matching() {
        let expected = vec![ExpectedEffect::SetField {
            field: "priority".to_owned(),
            value: json!("P1"),
            reason: None,
        }];
        let actual = vec![proposed(Effect::SetField {
            field: "priority".to_owned(),
            value: json!("P1"),
        })];
        assert_eq!(effects_diff(&expected, &actual), None);
    }

    #[test]
    fn diff_marks_wrong_value_and_extra_effect() {
        let expected = vec![ExpectedEffect::SetField {
            field: "priority".to_owned(),
            value: json!("P1"),
            reason: None,
        }];
        let actual = vec![
            proposed(Effect::SetField {
                field: "priority".to_owned(),
                value: json!("P2"),
            }),
            proposed(Effect::Note {
                text: "hi".to_owned(),
            }),
        ];
        let diff = effects_diff(&expected, &actual).unwrap();
        assert!(
            diff.contains("1. expected  set_field priority = \"P1\""),
            "{diff}"
        );
        assert!(
            diff.contains("actual    set_field priority = \"P2\""),
            "{diff}"
        );
        assert!(diff.contains("2. expected  (no effect)"), "{diff}");
        assert!(diff.contains("actual    note \"hi\""), "{diff}");
    }

    #[test]
    fn diff_compares_reason_when_given() {
        let expected = vec![ExpectedEffect::Note {
            text: None,
            reason: Some("other".to_owned()),
        }];
        let actual = vec![proposed(Effect::Note {
            text: "hi".to_owned(),
        })];
        assert!(effects_diff(&expected, &actual).is_some());
    }

    #[test]
    fn report_counts_and_closing_line() {
        let mut report = RuleTestReport::default();
        report.push(CaseResult::passed("incident/a", "one"));
        report.push(CaseResult::failed(
            "incident/b",
            "two",
            "effects differ".to_owned(),
        ));
        assert_eq!(report.passed(), 1);
        assert_eq!(report.failed(), 1);
        assert!(!report.is_success());
        let text = report.to_string();
        assert!(
            text.contains("FAIL incident/b: two\n       effects differ"),
            "{text}"
        );
        assert!(text.ends_with("1 passed, 1 failed"), "{text}");
    }
}
