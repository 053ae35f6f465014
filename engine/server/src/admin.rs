//! Administrative commands: validation, rule tests, users, tokens and the audit trail.

use std::io::BufRead;
use std::process::ExitCode;

use tend_domain::Role;

use crate::cli::{AuditCommand, DirArgs, TokenCommand, UserCommand};
use crate::setup::open_store;

pub fn validate(args: DirArgs) -> anyhow::Result<ExitCode> {
    let host = tend_scripting::RuleHost::new(&args.dir);
    match tend_workflow::load_dir(&args.dir, &host) {
        Ok(set) => {
            println!(
                "ok: {} process definitions and {} calendars in {} are valid (version {})",
                set.definitions.len(),
                set.calendars.len(),
                args.dir.display(),
                set.version
            );
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
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 8 {
                anyhow::bail!("the password is shorter than 8 characters: choose a longer one");
            }
            let store = open_store(&store.url()).await?;
            store
                .add_user(&name, email.as_deref(), &roles, password)
                .await?;
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            println!("added user `{name}` with roles {}", roles.join(", "));
            Ok(ExitCode::SUCCESS)
        }
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
