//! Inbound mail on the command line: `tend mail-gateway`, which an MTA's pipe runs once per
//! message, and `tend mail quarantine` and `tend mail retry` for the messages kept aside.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tend_api::Commands;
use tend_api::mail_intake::{IntakeOutcome, keep_mail};
use tend_store::mail::MailStatus;

use crate::cli::{MailCommand, MailGatewayArgs};
use crate::setup::{open_engine, open_store, redact};

/// sysexits.h: the input data was incorrect; the MTA bounces the message to its sender
/// with what the gateway wrote on standard error.
const EX_DATAERR: u8 = 65;
/// sysexits.h: the input could not be read.
const EX_IOERR: u8 = 74;
/// sysexits.h: a temporary failure; the MTA keeps the message and tries again later.
const EX_TEMPFAIL: u8 = 75;

/// Reads one message on standard input and hands it to the intake. The exit code is for
/// the MTA: 0 once the message is stored (whatever became of it), and 65 when the mailbox
/// rejects it for good (over its size limit, or rejected by its policy or rule). Then the
/// reason is on standard error for the bounce. 75 means it could not be stored, and 74
/// that standard input could not be read. A message that does not parse is stored and
/// quarantined, never rejected.
pub async fn gateway(args: MailGatewayArgs) -> anyhow::Result<ExitCode> {
    let mut raw = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut raw) {
        eprintln!("tend mail-gateway: cannot read the message on standard input: {error}");
        return Ok(ExitCode::from(EX_IOERR));
    }
    if let Some(server) = &args.url {
        return Ok(deliver_over_http(&args, server, raw).await);
    }
    let url = args.store.url();
    let wait = Duration::from_secs(args.connect_timeout);
    let store = match tokio::time::timeout(wait, open_store(&url)).await {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => {
            eprintln!(
                "tend mail-gateway: {error:#}; the message was not stored and the MTA should deliver it again later"
            );
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
        Err(_) => {
            eprintln!(
                "tend mail-gateway: the database at {} did not answer within {} seconds; the message was not stored and the MTA should deliver it again later",
                redact(&url),
                wait.as_secs()
            );
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let outcome = match open_engine(store.clone(), &args.definitions.definitions).await {
        Ok(engine) => {
            let limit = engine
                .current()
                .set
                .mailboxes
                .get(&args.mailbox)
                .map(|mailbox| mailbox.file.limits.message_bytes);
            if let Some(limit) = limit.filter(|limit| raw.len() as u64 > *limit) {
                eprintln!(
                    "tend mail-gateway: the message is {} bytes and mailbox `{}` takes at most {limit} bytes; send the files by another way or ask the service desk to raise limits.message_bytes",
                    raw.len(),
                    args.mailbox
                );
                return Ok(ExitCode::from(EX_DATAERR));
            }
            let commands = Commands::new(store, Arc::new(engine));
            commands.take_mail(&args.mailbox, "gateway", raw).await
        }
        Err(error) => {
            let reason = format!(
                "the definitions did not load, so the message waits for `tend mail retry`: {error:#}"
            );
            eprintln!("tend mail-gateway: {reason}");
            keep_mail(&store, &args.mailbox, "gateway", raw, &reason).await
        }
    };
    match outcome {
        Ok(outcome) if outcome.status == MailStatus::Rejected => {
            println!("{}", describe(&outcome));
            eprintln!(
                "tend mail-gateway: mailbox `{}` rejected the message: {}",
                args.mailbox,
                one_line(outcome.reason.as_deref().unwrap_or("no reason given"))
            );
            Ok(ExitCode::from(EX_DATAERR))
        }
        Ok(outcome) => {
            println!("{}", describe(&outcome));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!(
                "tend mail-gateway: the message could not be stored ({error}); the MTA should deliver it again later"
            );
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}

/// Hands the message to a running server with `POST /api/v1/mail/inbound/{mailbox}` and
/// turns the response into the exit code the MTA expects, as [`gateway`] does for the
/// database: 0 stored, 65 rejected for good, 75 try again later.
async fn deliver_over_http(args: &MailGatewayArgs, server: &str, raw: Vec<u8>) -> ExitCode {
    let token = match gateway_token(args) {
        Ok(token) => token,
        Err(reason) => {
            eprintln!(
                "tend mail-gateway: {reason}; the MTA should deliver the message again later"
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let endpoint = format!(
        "{}/api/v1/mail/inbound/{}",
        server.trim_end_matches('/'),
        args.mailbox
    );
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(args.connect_timeout))
        .timeout(Duration::from_secs(args.connect_timeout.max(1) * 4))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("tend mail-gateway: cannot set up the HTTP client: {error}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let sent = client
        .post(&endpoint)
        .bearer_auth(token.trim())
        .header(reqwest::header::CONTENT_TYPE, "message/rfc822")
        .body(raw)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            eprintln!(
                "tend mail-gateway: {endpoint} did not answer ({error}); the message was not stored and the MTA should deliver it again later"
            );
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let reason = body["error"]["message"]
        .as_str()
        .or_else(|| body["reason"].as_str())
        .unwrap_or("no reason given")
        .to_owned();
    match status.as_u16() {
        200 | 201 if body["status"] == "rejected" => {
            eprintln!(
                "tend mail-gateway: mailbox `{}` rejected the message: {}",
                args.mailbox,
                one_line(&reason)
            );
            ExitCode::from(EX_DATAERR)
        }
        200 | 201 => match serde_json::from_value::<IntakeOutcome>(body.clone()) {
            Ok(outcome) => {
                println!("{}", describe(&outcome));
                ExitCode::SUCCESS
            }
            Err(_) => {
                println!("stored: {body}");
                ExitCode::SUCCESS
            }
        },
        413 => {
            eprintln!("tend mail-gateway: {}", one_line(&reason));
            ExitCode::from(EX_DATAERR)
        }
        401 | 403 => {
            eprintln!(
                "tend mail-gateway: {endpoint} refused the token ({status}: {}); give the token of a user with the mail_gateway role. The MTA should deliver the message again later",
                one_line(&reason)
            );
            ExitCode::from(EX_TEMPFAIL)
        }
        _ => {
            eprintln!(
                "tend mail-gateway: {endpoint} answered {status}: {}; the MTA should deliver the message again later",
                one_line(&reason)
            );
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}

/// Reads the gateway's API token from --token-file or TEND_MAIL_TOKEN.
fn gateway_token(args: &MailGatewayArgs) -> Result<String, String> {
    if let Some(path) = &args.token_file {
        return std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read the token file {}: {error}", path.display()));
    }
    std::env::var("TEND_MAIL_TOKEN").map_err(|_| {
        "--url needs the API token of a mail_gateway user: pass --token-file PATH or set TEND_MAIL_TOKEN".to_owned()
    })
}

pub async fn run(command: MailCommand) -> anyhow::Result<ExitCode> {
    match command {
        MailCommand::Quarantine { limit, store } => {
            let store = open_store(&store.url()).await?;
            let messages = store.quarantined_mail(limit).await?;
            if messages.is_empty() {
                println!("no quarantined messages");
            }
            for message in messages {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    message.id,
                    message
                        .received_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    message.status,
                    message.from_address.as_deref().unwrap_or("-"),
                    one_line(message.subject.as_deref().unwrap_or("-")),
                    one_line(message.reason.as_deref().unwrap_or("-")),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MailCommand::Poll(args) => crate::imap::poll(args).await,
        MailCommand::Retry {
            id,
            store,
            definitions,
        } => {
            let commands = crate::setup::commands(&store, &definitions).await?;
            let outcome = commands
                .retry_mail(id)
                .await
                .map_err(|error| anyhow::anyhow!("message {id} was not retried: {error}"))?;
            println!("{}", describe(&outcome));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Describes the outcome of a message on one line.
pub(crate) fn describe(outcome: &IntakeOutcome) -> String {
    let mut line = format!("message {}: {}", outcome.mail, outcome.status);
    if outcome.duplicate {
        line.push_str(" (delivered before; nothing done)");
    }
    if let Some(record) = &outcome.record {
        line.push_str(&format!(
            ", {} {record}",
            outcome.effect.as_deref().unwrap_or("reached")
        ));
    }
    if let Some(reason) = &outcome.reason {
        line.push_str(&format!(": {}", one_line(reason)));
    }
    line
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
