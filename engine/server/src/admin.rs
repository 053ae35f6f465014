//! Administrative commands: validation, rule tests, users, tokens and the audit trail.

use std::io::BufRead;
use std::process::ExitCode;

use tend_domain::Role;

use crate::cli::{AuditCommand, DirArgs, GraphArgs, TokenCommand, UserCommand};
use crate::setup::open_store;

pub fn graph(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let (set, _) = crate::setup::load_definitions(&args.definitions.definitions)?;
    let Some(definition) = set.get(&args.process) else {
        let known: Vec<&str> = set.definitions.keys().map(String::as_str).collect();
        anyhow::bail!(
            "unknown process `{}`: use one of {}",
            args.process,
            known.join(", ")
        );
    };
    print!("{}", tend_workflow::graph::mermaid(definition));
    Ok(ExitCode::SUCCESS)
}

pub fn validate(args: DirArgs) -> anyhow::Result<ExitCode> {
    let host = tend_scripting::RuleHost::new(&args.dir);
    match tend_workflow::load_dir(&args.dir, &host) {
        Ok(set) => {
            let problems = tend_api::calendars::schedule_problems(&set);
            if !problems.is_empty() {
                for problem in problems {
                    println!("{problem}");
                }
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "ok: {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} and {} in {} are valid (version {})",
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
                args.dir.display(),
                set.version
            );
            // A class that no impact-carrying type names is invisible to impact analysis
            // unless people relate it with a type open to every class.
            let blind = set.cmdb.classes_without_impact();
            if !blind.is_empty() {
                println!(
                    "note: no impact-carrying relationship type names these CI classes, so impact analysis reaches them only over types open to every class: {}",
                    blind.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            print!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn test_rules(args: DirArgs) -> anyhow::Result<ExitCode> {
    let host = tend_scripting::RuleHost::new(&args.dir);
    let report = tend_scripting::run_rule_tests(&args.dir, &host);
    let text = report.to_string();
    println!("{}", text.trim_end());
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Formats `number` with the singular or plural noun, as in "1 calendar" or "2 calendars".
fn count(number: usize, singular: &str, plural: &str) -> String {
    if number == 1 {
        format!("1 {singular}")
    } else {
        format!("{number} {plural}")
    }
}

/// Shortest password `tend user add` and `tend user set-password` accept, in characters.
const MIN_PASSWORD_CHARS: usize = 8;

pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            name,
            roles,
            email,
            password_stdin: _,
            store,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()?;
            let password = read_password()?;
            let store = open_store(&store.url()).await?;
            store
                .add_user(&name, email.as_deref(), &roles, &password)
                .await?;
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            println!("added user `{name}` with roles {}", roles.join(", "));
        }
        UserCommand::List { store } => {
            let store = open_store(&store.url()).await?;
            print_users(&store.list_users().await?);
        }
        UserCommand::SetPassword {
            name,
            password_stdin: _,
            store,
        } => {
            let password = read_password()?;
            let store = open_store(&store.url()).await?;
            store
                .set_password(&name, &password)
                .await
                .map_err(|error| user_error(error, &name))?;
            println!("set a new password for user `{name}`");
        }
        UserCommand::Disable { name, store } => {
            let store = open_store(&store.url()).await?;
            store
                .set_user_active(&name, false)
                .await
                .map_err(|error| user_error(error, &name))?;
            // The API server caches a checked token for 10 seconds (TOKEN_CACHE_TTL in
            // tend-api's auth module).
            println!(
                "disabled user `{name}`: login, sessions and API tokens are refused \
                 (API tokens within 10 seconds on a running server)"
            );
        }
        UserCommand::Enable { name, store } => {
            let store = open_store(&store.url()).await?;
            store
                .set_user_active(&name, true)
                .await
                .map_err(|error| user_error(error, &name))?;
            println!("enabled user `{name}`");
        }
        UserCommand::Notifications {
            name,
            locale,
            own_changes,
            store,
        } => {
            if locale.is_none() && own_changes.is_none() {
                anyhow::bail!(
                    "nothing to change: give --locale LANGUAGE (or `default`) and/or --own-changes true|false"
                );
            }
            let store = open_store(&store.url()).await?;
            if let Some(locale) = locale {
                let locale = locale.trim().to_owned();
                let valid = !locale.is_empty()
                    && locale.len() <= 35
                    && locale
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !valid {
                    anyhow::bail!(
                        "invalid locale `{locale}`: give a language tag such as fr or de-CH, or `default`"
                    );
                }
                let value = (locale != "default").then_some(locale);
                store
                    .set_user_locale(&name, value.clone())
                    .await
                    .map_err(|error| user_error(error, &name))?;
                println!(
                    "user `{name}` gets notifications in {}",
                    value.as_deref().unwrap_or("the mailbox's language")
                );
            }
            if let Some(enabled) = own_changes {
                store
                    .set_notify_own_changes(&name, enabled)
                    .await
                    .map_err(|error| user_error(error, &name))?;
                println!(
                    "user `{name}` {} notifications about their own changes",
                    if enabled { "gets" } else { "does not get" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a password from the first line of standard input and checks its length.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line)?;
    if read == 0 {
        anyhow::bail!(
            "standard input is empty: pipe the password in, as in `echo PASSWORD | tend user ...`"
        );
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!(
            "the password is shorter than {MIN_PASSWORD_CHARS} characters: choose a longer one"
        );
    }
    Ok(password.to_owned())
}

/// Adds the way to find existing names to a "user not found" error.
fn user_error(error: tend_store::Error, name: &str) -> anyhow::Error {
    match error {
        tend_store::Error::NotFound { what: "user", .. } => {
            anyhow::anyhow!("user `{name}` was not found: `tend user list` shows every user")
        }
        other => other.into(),
    }
}

fn print_users(users: &[tend_store::User]) {
    if users.is_empty() {
        println!(
            "no users: `tend serve` creates `admin` on its first start, or use `tend user add`"
        );
        return;
    }
    let header = ["NAME", "ROLES", "EMAIL", "ACTIVE"];
    let rows: Vec<[String; 4]> = users
        .iter()
        .map(|user| {
            let roles: Vec<&str> = user.roles.iter().map(|role| role.as_str()).collect();
            [
                user.name.clone(),
                roles.join(","),
                user.email.clone().unwrap_or_else(|| "-".to_owned()),
                if user.active { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
}

pub async fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, label, store } => {
            let store = open_store(&store.url()).await?;
            let secret = store.create_token(&name, &label).await?;
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { store } => {
            let store = open_store(&store.url()).await?;
            let report = store.verify_audit().await?;
            let against = match report.checkpoint_id {
                Some(id) => format!("checkpoint {id}"),
                None => "no checkpoint yet".to_owned(),
            };
            println!(
                "checked {} records and {} journal entries against {against}",
                report.records_checked, report.entries_checked
            );
            for problem in &report.problems {
                println!("  {problem}");
            }
            if report.is_clean() {
                println!("ok: every journal chain is intact");
            } else {
                println!("{} problems found", report.problems.len());
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Checkpoint { store } => {
            let store = open_store(&store.url()).await?;
            store.checkpoint().await?;
            println!("checkpoint written");
            Ok(ExitCode::SUCCESS)
        }
    }
}
