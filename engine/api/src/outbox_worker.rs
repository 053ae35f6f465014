//! The worker that sends queued notifications: it claims due outbox rows with a lease,
//! sends each over SMTP, and marks it sent with an `email_sent` journal entry, or keeps it
//! queued for a later attempt. A temporary failure (the server is down, or replies with 4xx)
//! waits one minute, doubling with each attempt up to an hour, so an outage delays mail
//! and loses none. A permanent rejection (5xx) or an invalid address ends the row as
//! `failed` with the error.

use chrono::{DateTime, TimeDelta, Utc};
use tend_domain::JournalEvent;
use tend_mail::outbound::{OutgoingMail, SMTP_TIMEOUT, SendError, SmtpSender};
use tend_store::outbox::{self, OutboxMail};

use crate::commands::Commands;
use crate::error::ApiError;
use crate::outbound::NOTIFY_ACTOR;

/// Rows one pass claims and sends one after the other.
const BATCH: u64 = 5;

/// First wait after a temporary failure; it doubles with each attempt.
const FIRST_RETRY: TimeDelta = TimeDelta::minutes(1);

/// Maximum wait between attempts.
const MAX_RETRY: TimeDelta = TimeDelta::hours(1);

/// Returns the wait before the next attempt after `attempts` failed ones: 1 minute,
/// doubling up to 1 hour.
pub fn retry_delay(attempts: i64) -> TimeDelta {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let delay = FIRST_RETRY * 2_i32.pow(doublings);
    delay.min(MAX_RETRY)
}

/// The sender of one node.
#[derive(Clone)]
pub struct OutboxWorker {
    commands: Commands,
    sender: SmtpSender,
    owner: String,
    loop_instance: String,
}

impl OutboxWorker {
    pub fn new(commands: Commands, sender: SmtpSender, owner: impl Into<String>) -> Self {
        let loop_instance = commands.outbound.loop_instance.clone();
        OutboxWorker {
            commands,
            sender,
            owner: owner.into(),
            loop_instance,
        }
    }

    /// Claims the rows due at `now` and sends them. Returns how many were sent.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let owner = self.owner.clone();
        // The lease covers every send of the batch at its timeout, and a minute more.
        let lease = SMTP_TIMEOUT * (BATCH as u32) + std::time::Duration::from_secs(60);
        let lease_until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::minutes(10));
        let claimed = self
            .commands
            .store
            .write(move |tx| {
                Box::pin(
                    async move { outbox::claim_outbox(tx, &owner, now, lease_until, BATCH).await },
                )
            })
            .await?;
        let mut sent = 0;
        for mail in claimed {
            if self.deliver(mail).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends one claimed row and stores the outcome. Returns whether it was sent.
    async fn deliver(&self, mail: OutboxMail) -> Result<bool, ApiError> {
        let outgoing = OutgoingMail {
            from_address: mail.from_address.clone(),
            from_name: mail.from_name.clone(),
            reply_to: mail.reply_to.clone(),
            to: mail.recipient.clone(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            message_id: mail.message_id.clone(),
            in_reply_to: mail.in_reply_to.clone(),
            references: mail.references.clone(),
            auto_submitted: mail
                .kind
                .is_automatic()
                .then(|| mail.kind.as_str().to_owned()),
            loop_instance: self.loop_instance.clone(),
        };
        let result = self.sender.send(&outgoing).await;
        let owner = self.owner.clone();
        let id = mail.id;
        match result {
            Ok(reply) => {
                let at = Utc::now();
                let stored = self
                    .commands
                    .store
                    .write(move |tx| {
                        Box::pin(async move {
                            let Some(stored) = outbox::mark_outbox_sent(tx, id, &owner, at).await?
                            else {
                                return Ok(false);
                            };
                            if let Some(record_id) = stored.record_id {
                                let event = JournalEvent::EmailSent {
                                    outbox: stored.id,
                                    message_id: stored.message_id.clone(),
                                    to: stored.recipient.clone(),
                                    attempts: stored.attempts,
                                };
                                tend_store::append_journal(
                                    tx,
                                    record_id,
                                    NOTIFY_ACTOR,
                                    at,
                                    &[event],
                                )
                                .await?;
                            }
                            Ok(true)
                        })
                    })
                    .await?;
                if stored {
                    tracing::info!(
                        outbox = id,
                        record.number = mail.record_number,
                        to = mail.recipient,
                        attempt = mail.attempts,
                        reply,
                        "notification sent"
                    );
                } else {
                    tracing::warn!(
                        outbox = id,
                        "a notification was sent after its lease ran out; another node may send it again"
                    );
                }
                Ok(stored)
            }
            Err(error) => {
                let retry_at = error
                    .is_temporary()
                    .then(|| Utc::now() + retry_delay(mail.attempts));
                let text = error.to_string();
                self.commands
                    .store
                    .write(move |tx| {
                        Box::pin(async move {
                            outbox::mark_outbox_failed(tx, id, &owner, &text, retry_at).await
                        })
                    })
                    .await?;
                match (&error, retry_at) {
                    (SendError::Temporary(_), Some(at)) => {
                        tracing::warn!(outbox = id, to = mail.recipient, attempt = mail.attempts, %error, retry_at = %at, "sending a notification failed; it stays queued")
                    }
                    _ => {
                        tracing::error!(outbox = id, to = mail.recipient, %error, "a notification was rejected for good and is marked failed; check the recipient address")
                    }
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_an_hour() {
        let minutes: Vec<i64> = (1..=9)
            .map(|attempt| retry_delay(attempt).num_minutes())
            .collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(1_000).num_minutes(), 60);
    }
}
