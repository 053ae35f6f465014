//! What the command line prints: help texts, log output of one-shot commands and of the
//! server, the `validate` summary, and how `replay-log` reports a rejected history.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tend_test_support::tend_store::RecordFilter;
use tend_test_support::{
    Backend, TestDatabase, TestServer, backend_tests, load_definitions, repo_root, run_tend,
};
use tend_tests::fixture;

backend_tests!(replay_rejection_names_the_record);

/// Returns the entry names of the `Commands:` section of a help text, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Returns the argument and option entries of a help text that have no help line.
fn entries_without_help(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    let mut in_section = false;
    for (index, line) in lines.iter().enumerate() {
        if *line == "Arguments:" || *line == "Options:" {
            in_section = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_section = false;
            continue;
        }
        let entry = line.trim();
        let is_entry = in_section
            && line.len() - line.trim_start().len() <= 6
            && entry.starts_with(['-', '<', '[']);
        if !is_entry {
            continue;
        }
        // Clap separates the name from its help by two spaces, or puts the help on the
        // next, deeper indented line. Text in brackets is a default or an environment
        // variable, not help.
        let help_on_same_line = entry
            .split_once("  ")
            .is_some_and(|(_, help)| !help.trim_start().starts_with('['));
        let help_on_next_line = lines.get(index + 1).is_some_and(|next| {
            let indent = next.len() - next.trim_start().len();
            !next.trim().is_empty() && indent > line.len() - line.trim_start().len() + 2
        });
        if !help_on_same_line && !help_on_next_line {
            missing.push(entry.to_owned());
        }
    }
    missing
}

#[tokio::test]
async fn help_describes_every_argument() -> anyhow::Result<()> {
    let top = run_tend(["--help"], None).await?.expect_success()?;
    assert_eq!(
        top.stdout.lines().next(),
        Some("Tend: IT service management processes as code"),
        "{top}"
    );

    let mut pending: Vec<Vec<String>> = subcommands(&top.stdout)
        .into_iter()
        .map(|name| vec![name])
        .collect();
    assert!(pending.len() >= 5, "too few commands:\n{top}");
    let mut checked = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args = vec!["help".to_owned()];
        args.extend(path.iter().cloned());
        let output = run_tend(&args, None).await?.expect_success()?;
        let first = output.stdout.lines().next().unwrap_or_default();
        assert!(
            !first.trim().is_empty() && !first.starts_with("Usage:"),
            "`tend {}` has no description:\n{output}",
            path.join(" ")
        );
        let missing = entries_without_help(&output.stdout);
        assert!(
            missing.is_empty(),
            "`tend {}` lacks help for {missing:?}:\n{output}",
            path.join(" ")
        );
        for name in subcommands(&output.stdout) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        checked.push(path.join(" "));
    }
    for expected in [
        "user add",
        "user list",
        "user set-password",
        "user disable",
        "user enable",
    ] {
        assert!(
            checked.iter().any(|path| path == expected),
            "`tend {expected}` was not found in the help; checked {checked:?}"
        );
    }
    Ok(())
}

fn count(number: usize, singular: &str, plural: &str) -> String {
    if number == 1 {
        format!("1 {singular}")
    } else {
        format!("{number} {plural}")
    }
}

#[tokio::test]
async fn validate_counts_in_singular_and_plural() -> anyhow::Result<()> {
    let (set, _) = load_definitions()?;
    let output = run_tend(["validate".into(), repo_root().into_os_string()], None)
        .await?
        .expect_success()?;
    let expected = format!(
        "ok: {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} and {} in ",
        count(
            set.definitions.len(),
            "process definition",
            "process definitions"
        ),
        count(set.calendars.len(), "calendar", "calendars"),
        count(set.link_types.len(), "link type", "link types"),
        count(set.groups.len(), "group", "groups"),
        count(set.catalog.len(), "catalog item", "catalog items"),
        count(set.freeze_windows.len(), "freeze window", "freeze windows"),
        count(set.schedules.len(), "schedule", "schedules"),
        count(set.sla_policies.len(), "SLA policy", "SLA policies"),
        count(set.mailboxes.len(), "mailbox", "mailboxes"),
        count(set.alert_sources.len(), "alert source", "alert sources"),
        count(set.cmdb.classes.len(), "CI class", "CI classes"),
        count(
            set.cmdb.relationship_types.len(),
            "relationship type",
            "relationship types"
        ),
    );
    assert!(
        output.stdout.starts_with(&expected),
        "expected `{expected}`:\n{output}"
    );
    assert!(output.stderr.is_empty(), "validate logged:\n{output}");
    let note = output
        .stdout
        .lines()
        .find(|line| line.starts_with("note: no impact-carrying relationship type names"));
    assert!(
        note.is_some_and(|line| line.ends_with("software_package, software_licence")),
        "the CI classes without impact are not listed:\n{output}"
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Returns the first rule script under `rules` (in path order) that has test cases.
fn rule_with_tests(rules: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(rules)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if let Some(found) = rule_with_tests(&path)? {
                return Ok(Some(found));
            }
        } else if path.extension().is_some_and(|ext| ext == "rhai")
            && path.with_extension("tests.yaml").is_file()
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

#[tokio::test]
async fn test_rules_reports_failures_once() -> anyhow::Result<()> {
    let copy = tempfile::tempdir()?;
    for dir in ["workflows", "rules"] {
        copy_dir(&repo_root().join(dir), &copy.path().join(dir))?;
    }
    let script = rule_with_tests(&copy.path().join("rules"))?
        .expect("the repository has a rule with test cases");
    let text = std::fs::read_to_string(&script)?;
    std::fs::write(
        &script,
        format!("throw \"broken on purpose by the test\";\n{text}"),
    )?;

    let output = run_tend(
        ["test-rules".into(), copy.path().as_os_str().to_owned()],
        None,
    )
    .await?;
    assert_eq!(output.code(), Some(1), "{output}");
    assert!(
        output.stdout.contains("FAIL ") && output.stdout.contains("broken on purpose"),
        "the report does not list the failure:\n{output}"
    );
    assert!(
        !output.stderr.contains("broken on purpose"),
        "the failure is logged besides the report:\n{output}"
    );
    assert!(
        !output.stderr.contains('\u{1b}'),
        "standard error is a pipe but carries colour codes:\n{output}"
    );
    Ok(())
}

#[tokio::test]
async fn server_log_has_no_colour_codes() -> anyhow::Result<()> {
    let server = TestServer::binary(Backend::Sqlite).await?;
    let log = server.log();
    assert!(log.contains("tend is serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "the log file carries colour codes:\n{log}"
    );
    Ok(())
}

async fn replay_rejection_names_the_record(backend: Backend) -> anyhow::Result<()> {
    let database = TestDatabase::create(backend).await?;
    let text = std::fs::read_to_string(fixture("incident-event-log.csv"))?;
    let broken = text.replace(",Awaiting User Info,", ",Suspended,");
    assert_ne!(broken, text, "the fixture has an Awaiting User Info row");
    let log = database.data_dir().join("broken-event-log.csv");
    std::fs::write(&log, broken)?;

    let mut args: Vec<OsString> = vec![
        "replay-log".into(),
        log.into(),
        "--definitions".into(),
        repo_root().into(),
    ];
    args.extend(database.store_args());
    let output = run_tend(args, None).await?;
    assert_eq!(output.code(), Some(1), "{output}");

    let lines: Vec<&str> = output.stdout.lines().collect();
    let rejected = lines
        .iter()
        .position(|line| line.starts_with("  rejected INC0000062: "))
        .unwrap_or_else(|| panic!("INC0000062 is not rejected:\n{output}"));
    let detail = lines.get(rejected + 1).copied().unwrap_or_default();
    let named = detail
        .strip_prefix("    the partial history is Tend record ")
        .unwrap_or_else(|| panic!("the rejection names no record:\n{output}"));
    let (number, state) = named
        .split_once(", left in state ")
        .unwrap_or_else(|| panic!("the rejection names no state: {detail}"));
    let state = state.trim_matches('`');

    let store = database.connect().await?;
    let record = store
        .get_record(number)
        .await?
        .unwrap_or_else(|| panic!("record {number} does not exist"));
    assert!(
        record.title.contains("INC0000062"),
        "{number} is not the replay of INC0000062: {}",
        record.title
    );
    assert_eq!(record.state, state, "state of {number}");
    let page = store
        .list_records(&RecordFilter {
            q: Some("INC0000062".to_owned()),
            ..RecordFilter::default()
        })
        .await?;
    assert_eq!(page.records.len(), 1, "records mentioning INC0000062");
    Ok(())
}
