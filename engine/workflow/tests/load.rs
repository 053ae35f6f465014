//! Loading and validation of definition directories.

use std::path::{Path, PathBuf};

use tend_workflow::{
    CompileError, RuleCheckError, RuleFailure, RuleInput, RuleRunner, load_dir, parse_yaml,
};

/// Looks for `rules/NAME.rhai` and treats a script containing `syntax error` as not
/// compiling; enough to check how the loader reports rule problems.
struct FileRules(PathBuf);

impl RuleRunner for FileRules {
    fn check(&self, rule: &str) -> Result<(), RuleCheckError> {
        let path = self.0.join("rules").join(format!("{rule}.rhai"));
        let text = std::fs::read_to_string(&path).map_err(|_| RuleCheckError::Missing {
            rule: rule.into(),
            expected: path.clone(),
        })?;
        if let Some(offset) = text.find("syntax error") {
            return Err(RuleCheckError::Compile(CompileError {
                path,
                line: text[..offset].lines().count().max(1),
                column: 1,
                message: "syntax error".into(),
            }));
        }
        Ok(())
    }

    fn run(
        &self,
        rule: &str,
        _: &RuleInput<'_>,
    ) -> Result<Vec<tend_domain::ProposedEffect>, RuleFailure> {
        Err(RuleFailure {
            rule: rule.into(),
            message: "not run in load tests".into(),
        })
    }
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const GOOD: &str = "\
process: ticket
title: Ticket
number_prefix: TKT
fields:
  urgent: { type: boolean, default: false }
  code: { type: string, required_in: [done] }
states:
  open: { initial: true }
  done: { final: true }
transitions:
  - { name: finish, from: open, to: done, roles: [technician], requires: [code] }
";

fn load_errors(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    match load_dir(dir.path(), &FileRules(dir.path().to_path_buf())) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .diagnostics
            .iter()
            .map(|d| {
                let file = d
                    .file
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string();
                format!("{file}:{}:{}: {}", d.line, d.column, d.message)
            })
            .collect(),
    }
}

#[test]
fn good_definition_loads_with_version() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", GOOD);
    let set = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();
    assert_eq!(set.version.len(), 16);
    assert!(set.get("ticket").is_some());

    write(
        dir.path(),
        "workflows/ticket.yaml",
        &GOOD.replace("Ticket", "Tickets"),
    );
    let changed = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();
    assert_ne!(set.version, changed.version);
}

#[test]
fn duplicate_top_level_key_names_both_lines() {
    let errors = load_errors(&[(
        "workflows/incident.yaml",
        "process: incident\nsla:\n  response: 4h\n  resolution: 24h\nstates: [new, in_progress, resolved, closed]\nsla:\n  response: 1h\n",
    )]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/incident.yaml:6:1: duplicate key `sla`"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("first at line 2, again at line 6"),
        "{errors:?}"
    );
}

#[test]
fn duplicate_nested_key_is_rejected() {
    let text = GOOD.replace(
        "  urgent: { type: boolean, default: false }\n",
        "  urgent:\n    type: boolean\n    type: string\n",
    );
    let errors = load_errors(&[("workflows/ticket.yaml", &text)]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("duplicate key `type` in `fields.urgent`"),
        "{errors:?}"
    );
}

#[test]
fn merge_key_with_override_is_legal() {
    let text = "\
process: ticket
title: Ticket
number_prefix: TKT
states:
  open: &base { initial: true, label: Open }
  done:
    <<: *base
    initial: false
    final: true
transitions:
  - { name: finish, from: open, to: done, roles: [technician] }
";
    assert_eq!(
        load_errors(&[("workflows/ticket.yaml", text)]),
        Vec::<String>::new()
    );
}

#[test]
fn yaml_words_rejected_as_booleans() {
    let text = GOOD.replace("default: false", "default: no");
    let errors = load_errors(&[("workflows/ticket.yaml", &text)]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/ticket.yaml:5:"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("default of `urgent` is invalid"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("yes, no, on and off are text"),
        "{errors:?}"
    );
}

#[test]
fn norway_values_stay_strings() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Policy {
        holiday_calendars: Vec<String>,
        approval: Approval,
    }
    #[derive(serde::Deserialize, Debug)]
    struct Approval {
        required: bool,
        quorum_by_country: std::collections::BTreeMap<String, u32>,
    }
    let good = "holiday_calendars: [DE, NO, SE, FI]\napproval:\n  required: true\n  quorum_by_country: { NO: 2, SE: 1 }\n";
    let policy: Policy = parse_yaml(Path::new("policy.yaml"), good).unwrap();
    assert_eq!(policy.holiday_calendars, ["DE", "NO", "SE", "FI"]);
    assert!(policy.approval.required);
    assert_eq!(policy.approval.quorum_by_country["NO"], 2);

    for word in ["yes", "no", "on", "off", "y", "n"] {
        let text = good.replace("required: true", &format!("required: {word}"));
        let errors = parse_yaml::<Policy>(Path::new("policy.yaml"), &text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3, "{word}");
        assert!(
            errors[0].message.contains("approval.required"),
            "{word}: {}",
            errors[0].message
        );
    }
}

#[test]
fn calendar_times_are_read_as_times() {
    let text = "calendar: office-berlin\ntimezone: Europe/Berlin\nhours:\n  mon: { start: 08:30, end: 17:30 }\n  fri: { start: 9:00, end: 13:00 }\n";
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", GOOD);
    write(dir.path(), "workflows/calendars/berlin.yaml", text);
    let set = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();
    let calendar = &set.calendars["office-berlin"];
    let monday = calendar.hours["mon"].0[0];
    let friday = calendar.hours["fri"].0[0];
    assert_eq!(
        (monday.start.to_string(), monday.end.to_string()),
        ("08:30".into(), "17:30".into())
    );
    assert_eq!(
        (friday.start.to_string(), friday.end.to_string()),
        ("09:00".into(), "13:00".into())
    );
    assert_eq!(monday.end.minutes, 17 * 60 + 30);
}

#[test]
fn calendar_hours_take_every_form() {
    let text = concat!(
        "calendar: shifts\ntimezone: Europe/Berlin\n",
        "hours:\n  mon: \"09:00-17:00\"\n  tue: [\"08:00-12:00\", \"13:00-17:00\"]\n",
        "  sat: \"22:00-06:00\"\n  every_day: { start: \"00:00\", end: \"24:00\" }\n",
        "holidays: [2026-12-25, { every_year: \"12-26\" }]\n",
        "exceptions: [{ date: 2026-12-24, hours: \"09:00-12:00\" }, { date: 2026-12-31, hours: [] }]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", GOOD);
    write(dir.path(), "workflows/calendars/shifts.yaml", text);
    let set = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();
    let calendar = &set.calendars["shifts"];
    assert_eq!(calendar.hours["tue"].0.len(), 2);
    assert!(calendar.hours["sat"].0[0].crosses_midnight());
    assert_eq!(calendar.hours["every_day"].0[0].end.minutes, 24 * 60);
    assert_eq!(calendar.holidays[1].month_day(), Some(Ok((12, 26))));
    assert!(calendar.exceptions[1].hours.0.is_empty());
}

#[test]
fn calendar_mistakes_name_the_fix() {
    let text = "calendar: c\ntimezone: Europe/Berln\nhours:\n  mon: \"09:00-09:00\"\n  fun: \"09:00-17:00\"\nholidays: [{ every_year: \"02-30\" }]\n";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/calendars/c.yaml", text),
    ]);
    let all = errors.join("\n");
    assert!(all.contains("unknown time zone `Europe/Berln`"), "{all}");
    assert!(all.contains("start and end at 09:00"), "{all}");
    assert!(all.contains("unknown weekday `fun`"), "{all}");
    assert!(all.contains("invalid yearly holiday `02-30`"), "{all}");
}

#[test]
fn calendar_time_as_number_suggests_quotes() {
    let text = "calendar: c\ntimezone: UTC\nhours:\n  mon: { start: 830, end: 1730 }\n";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/calendars/c.yaml", text),
    ]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/calendars/c.yaml:4:17:"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("number 830: write it in quotes"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("workflows/calendars/c.yaml:4:27:"),
        "{errors:?}"
    );
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let text = "\
process: ticket
title: Ticket
number_prefix: TKT
fields:
  level: { type: enum }
  code: { type: string, required_in: [finished] }
states:
  open: { initial: true }
  waiting: {}
  orphan: {}
  done: { final: true }
transitions:
  - { name: finish, from: open, to: completed, roles: [technician], requires: [resolution] }
  - { name: wait, from: [open, limbo], to: waiting, roles: [] }
  - { name: finish, from: open, to: done, roles: [technician] }
rules:
  on_create: [ticket/missing, ticket/broken]
";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", text),
        ("rules/ticket/broken.rhai", "let x = 1;\nsyntax error\n"),
    ]);
    let expected = [
        "workflows/ticket.yaml:5:3: enum field `level` has no values",
        "workflows/ticket.yaml:6:39: field `code` is required in unknown state `finished`",
        "workflows/ticket.yaml:9:3: state `waiting` has no transition out",
        "workflows/ticket.yaml:10:3: state `orphan` cannot be reached",
        "workflows/ticket.yaml:13:37: transition `finish` leads to unknown state `completed`",
        "workflows/ticket.yaml:13:80: transition `finish` requires undeclared field `resolution`",
        "workflows/ticket.yaml:14:32: transition `wait` starts from unknown state `limbo`",
        "workflows/ticket.yaml:14:53: no role may take transition `wait`",
        "workflows/ticket.yaml:15:13: transition `finish` is declared twice",
        "workflows/ticket.yaml:17:15: rule `ticket/missing` has no script",
        "workflows/ticket.yaml:17:31: rule `ticket/broken` does not compile",
    ];
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "missing `{prefix}` in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn errors_from_several_files_are_all_reported() {
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/broken.yaml", "process: broken\nstates: [\n"),
        (
            "workflows/typo.yaml",
            &GOOD.replace("ticket", "typo").replace("roles:", "rolez:"),
        ),
    ]);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/broken.yaml:"),
        "{errors:?}"
    );
    assert!(errors[0].contains("invalid YAML"), "{errors:?}");
    // The misspelt key is unknown, and the key it should have been is missing.
    assert!(
        errors[1].starts_with("workflows/typo.yaml:11:5:"),
        "{errors:?}"
    );
    assert!(errors[1].contains("missing field `roles`"), "{errors:?}");
    assert!(
        errors[2].starts_with("workflows/typo.yaml:11:43:"),
        "{errors:?}"
    );
    assert!(errors[2].contains("unknown field `rolez`"), "{errors:?}");
}

#[test]
fn file_name_must_match_process() {
    let errors = load_errors(&[("workflows/other.yaml", GOOD)]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("rename the file to ticket.yaml"),
        "{errors:?}"
    );
}

#[test]
fn unknown_transition_role_is_rejected() {
    let errors = load_errors(&[(
        "workflows/ticket.yaml",
        &GOOD.replace("roles: [technician]", "roles: [wizard]"),
    )]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unknown variant `wizard`"), "{errors:?}");
}

#[test]
fn type_errors_and_semantic_errors_are_reported_together() {
    // A misspelt role, an unknown key, an invalid default and an unknown target state
    // (which leaves `done` unreachable): the first two stop serde, yet every problem is
    // reported in one run.
    let text = GOOD
        .replace("roles: [technician]", "roles: [techician]")
        .replace(
            "  code: { type: string, required_in: [done] }",
            "  code: { type: string, required_in: [done], readonly: true }",
        )
        .replace("default: false", "default: 3")
        .replace("to: done", "to: dune");
    let errors = load_errors(&[("workflows/ticket.yaml", &text)]);
    let expected = [
        "workflows/ticket.yaml:5:37: default of `urgent` is invalid",
        "workflows/ticket.yaml:6:56: `fields.code.readonly`: unknown field `readonly`",
        "workflows/ticket.yaml:9:3: state `done` cannot be reached",
        "workflows/ticket.yaml:11:37: transition `finish` leads to unknown state `dune`",
        "workflows/ticket.yaml:11:51: `transitions[0].roles[0]`: unknown variant `techician`",
    ];
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "missing `{prefix}` in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn near_miss_names_get_a_suggestion() {
    let text = GOOD
        .replace("to: done", "to: dnoe")
        .replace("requires: [code]", "requires: [cod]");
    let errors = load_errors(&[("workflows/ticket.yaml", &text)]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown state `dnoe`: did you mean `done`?")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("undeclared field `cod`: did you mean `code`?")),
        "{errors:?}"
    );
    let far = GOOD.replace("to: done", "to: finished");
    let errors = load_errors(&[("workflows/ticket.yaml", &far)]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown state `finished`: use one of `open`, `done`")),
        "{errors:?}"
    );
}

const LINKS: &str = "\
link_types:
  caused_by:
    label: Caused by
    inverse_label: Caused
    from: [ticket]
  related_to: { label: Related to, inverse_label: Related to }
";

#[test]
fn link_types_load_with_their_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", GOOD);
    write(dir.path(), "workflows/links/types.yaml", LINKS);
    write(
        dir.path(),
        "workflows/links/more.yaml",
        "link_types:\n  parent_of: { label: Parent of, inverse_label: Child of, from: ticket, to: [ticket] }\n",
    );
    let set = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();

    let names: Vec<&str> = set.link_types.keys().map(String::as_str).collect();
    assert_eq!(names, ["parent_of", "caused_by", "related_to"]);
    let caused_by = set.link_type("caused_by").unwrap();
    assert_eq!(caused_by.from, ["ticket"]);
    assert!(caused_by.to.is_empty());
    assert_eq!(caused_by.label_for(false), "Caused");
    assert_eq!(set.link_type("parent_of").unwrap().from, ["ticket"]);
    assert!(set.link_type("blocks").is_none());

    write(
        dir.path(),
        "workflows/links/types.yaml",
        &LINKS.replace("inverse_label: Caused\n", "inverse_label: Led to\n"),
    );
    let changed = load_dir(dir.path(), &FileRules(dir.path().to_path_buf())).unwrap();
    assert_ne!(
        set.version, changed.version,
        "a link file is part of the version"
    );
}

#[test]
fn link_type_errors_have_positions() {
    let typo = "\
link_types:
  caused_by:
    label: Caused by
    inverse_label: Caused
    from: [tikcet]
    to: [change]
  blocks:
    label: Blocks
    inverse_lable: Blocked by
";
    let again = "link_types:\n  caused_by: { label: Cause, inverse_label: Effect }\n";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/links/a.yaml", typo),
        ("workflows/links/b.yaml", again),
    ]);
    let expected = [
        "workflows/links/a.yaml:5:12: link type `caused_by` allows unknown process `tikcet` as its source: did you mean `ticket`?",
        "workflows/links/a.yaml:6:10: link type `caused_by` allows unknown process `change` as its target: use one of `ticket`",
        "workflows/links/a.yaml:7:3: link type `blocks` has no `inverse_label`: add the text users see",
        "workflows/links/a.yaml:9:20: `link_types.blocks.inverse_lable`: unknown field `inverse_lable`",
        "workflows/links/b.yaml:2:3: link type `caused_by` is already defined in",
    ];
    for prefix in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "missing `{prefix}` in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expected.len(), "{}", errors.join("\n"));
}

#[test]
fn link_type_names_and_labels_are_checked() {
    let text = "link_types:\n  Caused-By: { label: Caused by, inverse_label: '' }\n";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/links/types.yaml", text),
    ]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/links/types.yaml:2:3: invalid link type name `Caused-By`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(
            "workflows/links/types.yaml:2:49: link type `Caused-By` has no `inverse_label`"
        ),
        "{errors:?}"
    );
}

#[test]
fn link_type_naming_broken_process_is_not_reported() {
    // The definition has its own error; the link type naming its process adds none.
    let errors = load_errors(&[
        ("workflows/ticket.yaml", "process: ticket\nstates: [\n"),
        ("workflows/links/types.yaml", LINKS),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("workflows/ticket.yaml:"),
        "{errors:?}"
    );
}

#[test]
fn shipped_link_types_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let set = load_dir(&root, &FileRules(root.clone())).unwrap();
    for name in [
        "caused_by",
        "duplicate_of",
        "follow_up_of",
        "parent_of",
        "related_to",
    ] {
        assert!(
            set.link_type(name).is_some(),
            "link type `{name}` is not shipped"
        );
    }
    let follow_up = set.link_type("follow_up_of").unwrap();
    assert!(follow_up.allows_source("incident"));
    assert!(follow_up.allows_target("incident"));
    assert_eq!(
        (follow_up.label.as_str(), follow_up.inverse_label.as_str()),
        ("Follow-up of", "Followed up by")
    );
    let caused_by = set.link_type("caused_by").unwrap();
    assert!(
        caused_by.allows_target("change"),
        "caused_by points at any process"
    );
    assert_eq!(
        set.link_type("parent_of").unwrap().label_for(false),
        "Child of"
    );
}

#[test]
fn schedule_actions_are_checked() {
    let schedules = "\
schedules:
  both:
    cron: \"0 8 * * *\"
    timezone: UTC
    open: { process: ticket, title: Check }
    run_rule: { rule: ticket/sweep, process: ticket }
  neither:
    cron: \"0 8 * * *\"
    timezone: UTC
  sweep:
    cron: \"0 8 * * *\"
    timezone: UTC
    run_rule: { rule: ticket/missing, process: ticket, states: [opne] }
  elsewhere:
    cron: \"0 8 * * *\"
    timezone: UTC
    run_rule: { rule: ticket/sweep, process: tikcet }
";
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        ("workflows/schedules/jobs.yaml", schedules),
        (
            "rules/ticket/sweep.rhai",
            "set_field(\"urgent\", true, \"late\");\n",
        ),
    ]);
    let all = errors.join("\n");
    assert_eq!(errors.len(), 5, "{all}");
    assert!(
        errors[0].starts_with("workflows/schedules/jobs.yaml:2:3:")
            && errors[0].contains("keep one of `open` (open a record), `run_rule`"),
        "{all}"
    );
    assert!(
        errors[1].starts_with("workflows/schedules/jobs.yaml:7:3:")
            && errors[1].contains("add `open` (the record each run opens), `run_rule`"),
        "{all}"
    );
    assert!(
        all.contains("jobs.yaml:13:65: `ticket` has no state `opne`: use one of `open`, `done`"),
        "{all}"
    );
    assert!(
        all.contains("rule `ticket/missing` has no script: create"),
        "{all}"
    );
    assert!(
        all.contains("runs its rule over records of unknown process `tikcet`"),
        "{all}"
    );
}

#[test]
fn alert_source_mistakes_name_line_and_fix() {
    let errors = load_errors(&[
        ("workflows/ticket.yaml", GOOD),
        (
            "workflows/alerts/prom.yaml",
            "process: ticket\ntitle: '{label.alertname}'\nfields:\n  code: '{fingerprint}'\n  urgent: maybe\n  colour: red\nresolved:\n  transition: close\nreopen_transition: finish\nroutes:\n  - match: {alertname: Down}\n    process: outage\n",
        ),
    ]);
    let expected = [
        "workflows/alerts/prom.yaml:2:8: unknown placeholder `{label.alertname}`",
        "workflows/alerts/prom.yaml:5:11: invalid value for `urgent`",
        "workflows/alerts/prom.yaml:6:11: `ticket` declares no field `colour`",
        "workflows/alerts/prom.yaml:8:15: `ticket` has no transition `close`",
        "workflows/alerts/prom.yaml:12:14: alert source `prom` opens records of unknown process `outage`",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, start) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(start),
            "{error} does not start with {start}"
        );
    }
}
