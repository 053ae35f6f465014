//! IMAP intake: the pollers `tend serve` runs, one per mailbox with an `imap:` section, and
//! `tend mail poll`. Each pass fetches the folder's unprocessed messages, hands each one
//! to `Commands::take_mail` and marks it processed only after that returned. A crash
//! between the fetch and the commit therefore leaves the message in the folder. After a
//! crash between the commit and the move, the next pass delivers it again, and the intake
//! finds it stored and does nothing.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tend_api::Commands;
use tend_api::mail_intake::IntakeOutcome;
use tend_imap::{AfterProcessing, Connection, Security, Settings};
use tend_store::mail::MailStatus;
use tend_workflow::mailbox::{ImapSecurity, ImapSource, Processed};

use crate::cli::MailPollArgs;

/// First wait before reconnecting after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Maximum wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Outcome of one message of a pass.
#[derive(Debug)]
pub enum Handled {
    /// The intake stored it; it was then moved or flagged.
    Taken(IntakeOutcome),
    /// An earlier delivery of it is stored but still being processed (or was cut off by
    /// a stopped server), so it stays in the folder until that finishes or goes stale.
    Waiting(IntakeOutcome),
    /// The intake failed; the message stays in the folder for the next pass.
    Failed(String),
    /// Another client removed it between the search and the fetch.
    Gone,
}

/// Reads the mailbox's IMAP settings with the password from its environment variable
/// or file. A relative `password_file` or `ca_file` is taken from `definitions`.
pub fn settings(
    mailbox: &str,
    source: &ImapSource,
    definitions: &Path,
) -> Result<Settings, String> {
    let password = match (&source.password_env, &source.password_file) {
        (Some(name), _) => std::env::var(name).map_err(|_| {
            format!("mailbox `{mailbox}`: the environment variable `{name}` named by imap.password_env is not set: set it to the IMAP password")
        })?,
        (None, Some(file)) => {
            let path = definitions.join(file);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                format!("mailbox `{mailbox}`: cannot read the password file {} named by imap.password_file: {error}", path.display())
            })?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, None) => {
            return Err(format!(
                "mailbox `{mailbox}`: the IMAP password is missing: set imap.password_env or imap.password_file"
            ));
        }
    };
    Ok(Settings {
        host: source.host.clone(),
        port: source.port(),
        security: match source.security {
            ImapSecurity::None => Security::None,
            ImapSecurity::Starttls => Security::Starttls,
            ImapSecurity::Tls => Security::Tls,
        },
        username: source.username.clone(),
        password,
        ca_file: source.ca_file.as_ref().map(|file| definitions.join(file)),
        folder: source.folder.clone(),
        after_processing: match &source.processed {
            Processed::MoveTo(folder) => AfterProcessing::MoveTo(folder.clone()),
            Processed::Flag(keyword) => AfterProcessing::Flag(keyword.clone()),
        },
    })
}

/// Describes an IMAP failure with the mailbox and the setting that most likely needs a
/// change.
pub fn explain(mailbox: &str, settings: &Settings, error: &tend_imap::Error) -> String {
    let hint = match error {
        tend_imap::Error::Connect { .. } => {
            "check imap.host and imap.port, and that the server runs".to_owned()
        }
        tend_imap::Error::Tls { .. } => {
            "check imap.security, and imap.ca_file for a server with a private certificate"
                .to_owned()
        }
        tend_imap::Error::CaFile { .. } => "fix imap.ca_file".to_owned(),
        tend_imap::Error::Starttls(_) => {
            "check imap.security and imap.port: this port may not offer STARTTLS".to_owned()
        }
        tend_imap::Error::Login { .. } => {
            "check imap.username and the password in imap.password_env or imap.password_file"
                .to_owned()
        }
        tend_imap::Error::Folder { .. } => {
            "check imap.folder and imap.processed, and the account's rights on them".to_owned()
        }
        tend_imap::Error::Command { .. }
            if matches!(settings.after_processing, AfterProcessing::MoveTo(_)) =>
        {
            "if the account may not move messages, set imap.processed to { flag: KEYWORD }"
                .to_owned()
        }
        tend_imap::Error::Command { .. } | tend_imap::Error::Protocol(_) => {
            "the connection is opened again".to_owned()
        }
    };
    format!(
        "mailbox `{mailbox}` (IMAP user {} at {}:{}): {error}; {hint}",
        settings.username, settings.host, settings.port
    )
}

/// Takes every unprocessed message of the folder once, oldest first. A message the
/// intake failed on stays in place and does not stop the others. An IMAP failure ends
/// the pass, and `handled` keeps the messages handled before it.
pub async fn pass(
    commands: &Commands,
    mailbox: &str,
    connection: &mut Connection,
    handled: &mut Vec<(u32, Handled)>,
) -> Result<(), tend_imap::Error> {
    for uid in connection.unprocessed().await? {
        let Some(raw) = connection.fetch(uid).await? else {
            handled.push((uid, Handled::Gone));
            continue;
        };
        match commands.take_mail(mailbox, "imap", raw).await {
            Ok(outcome) if outcome.duplicate && outcome.status == MailStatus::Received => {
                tracing::debug!(
                    mailbox,
                    imap.uid = uid,
                    mail = outcome.mail,
                    "message is still being processed; left in the folder"
                );
                handled.push((uid, Handled::Waiting(outcome)));
            }
            Ok(outcome) => {
                connection.mark_processed(uid).await?;
                tracing::info!(
                    mailbox,
                    imap.uid = uid,
                    mail = outcome.mail,
                    status = %outcome.status,
                    duplicate = outcome.duplicate,
                    record = outcome.record.as_deref().unwrap_or("-"),
                    "message taken over IMAP"
                );
                handled.push((uid, Handled::Taken(outcome)));
            }
            Err(error) => {
                tracing::error!(mailbox, imap.uid = uid, %error, "the intake failed; the message stays in the folder for the next pass");
                handled.push((uid, Handled::Failed(error.to_string())));
            }
        }
    }
    Ok(())
}

/// Runs the poller of one mailbox until the server stops: connect, take the unprocessed
/// messages, wait for new ones (IDLE, or `poll_every`), and again. Failures are logged
/// and the connection opened again after a backoff that doubles up to five minutes. The
/// settings are read from the current definitions at every connection.
pub async fn run_poller(commands: Commands, mailbox: String, definitions: std::path::PathBuf) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let source = commands
            .engine
            .current()
            .set
            .mailboxes
            .get(&mailbox)
            .and_then(|found| found.file.imap.clone());
        let Some(source) = source else {
            tracing::warn!(
                mailbox,
                "the mailbox has no imap section any more; its poller stops until the next start"
            );
            return;
        };
        match settings(&mailbox, &source, &definitions) {
            Ok(settings) => {
                let poll_every = Duration::from_secs(source.poll_every.0);
                let idle = source.idle;
                let Err(error) = serve_connection(
                    &commands,
                    &mailbox,
                    &settings,
                    idle,
                    poll_every,
                    &mut backoff,
                )
                .await;
                tracing::error!(
                    mailbox,
                    retry_in_seconds = backoff.as_secs(),
                    "{}",
                    explain(&mailbox, &settings, &error)
                );
            }
            Err(message) => {
                tracing::error!(mailbox, retry_in_seconds = backoff.as_secs(), "{message}")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Takes messages over one connection until it fails. Resets `backoff` after each
/// complete pass.
async fn serve_connection(
    commands: &Commands,
    mailbox: &str,
    settings: &Settings,
    idle: bool,
    poll_every: Duration,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, tend_imap::Error> {
    let mut connection = Connection::open(settings).await?;
    let use_idle = idle && connection.supports_idle();
    tracing::info!(
        mailbox,
        host = %settings.host,
        port = settings.port,
        folder = %settings.folder,
        idle = use_idle,
        "IMAP poller connected"
    );
    loop {
        let mut handled = Vec::new();
        pass(commands, mailbox, &mut connection, &mut handled).await?;
        // Reset only after a whole pass, so that a failure in every pass (such as a
        // rejected move) keeps backing off instead of reconnecting every second.
        *backoff = FIRST_BACKOFF;
        // New mail reported during the pass does not wake a later IDLE: pass again.
        if connection.drain_new_mail_reports() {
            continue;
        }
        if use_idle {
            let (returned, wake) = connection.wait_for_mail(poll_every).await?;
            connection = returned;
            tracing::debug!(mailbox, ?wake, "IMAP wait ended");
        } else {
            tokio::time::sleep(poll_every).await;
            // A NOOP shows a lost connection before the next pass relies on it.
            connection.noop().await?;
        }
    }
}

/// `tend mail poll`: one pass (with `--once`) or the poller of `tend serve` in the
/// foreground, for one mailbox.
pub async fn poll(args: MailPollArgs) -> anyhow::Result<ExitCode> {
    let commands = crate::setup::commands(&args.store, &args.definitions).await?;
    let source = {
        let set = commands.engine.definitions();
        let Some(found) = set.mailboxes.get(&args.mailbox) else {
            let names: Vec<&str> = set.mailboxes.keys().map(String::as_str).collect();
            anyhow::bail!(
                "no mailbox `{}` in {}/workflows/mailboxes: choose one of {}",
                args.mailbox,
                args.definitions.definitions.display(),
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            );
        };
        let Some(source) = found.file.imap.clone() else {
            anyhow::bail!(
                "mailbox `{}` has no imap section: add one to workflows/mailboxes/{}.yaml (see docs/email.md)",
                args.mailbox,
                args.mailbox
            );
        };
        source
    };
    if !args.once {
        run_poller(commands, args.mailbox, args.definitions.definitions.clone()).await;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = settings(&args.mailbox, &source, &args.definitions.definitions)
        .map_err(anyhow::Error::msg)?;
    let mut connection = Connection::open(&settings)
        .await
        .map_err(|error| anyhow::anyhow!(explain(&args.mailbox, &settings, &error)))?;
    let mut handled = Vec::new();
    let result = pass(&commands, &args.mailbox, &mut connection, &mut handled).await;
    for (uid, what) in &handled {
        println!("uid {uid}: {}", describe(what));
    }
    if handled.is_empty() && result.is_ok() {
        println!("no unprocessed messages in `{}`", settings.folder);
    }
    connection.logout().await;
    result.map_err(|error| anyhow::anyhow!(explain(&args.mailbox, &settings, &error)))?;
    let failed = handled
        .iter()
        .any(|(_, what)| matches!(what, Handled::Failed(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(handled: &Handled) -> String {
    match handled {
        Handled::Taken(outcome) => format!("{}; marked processed", crate::mail::describe(outcome)),
        Handled::Waiting(outcome) => format!(
            "{}; an earlier delivery is still being processed, so it stays in the folder",
            crate::mail::describe(outcome)
        ),
        Handled::Failed(error) => format!("the intake failed, so it stays in the folder: {error}"),
        Handled::Gone => "removed by another client before it was fetched".to_owned(),
    }
}
