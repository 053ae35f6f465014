//! Mailboxes (`workflows/mailboxes/NAME.yaml`): the addresses Tend receives mail for, the
//! records new messages open, how replies are threaded, and the limits that keep mail
//! loops and oversized files out. One mailbox per file; the file name is its name.

use serde::{Deserialize, Serialize};
use tend_domain::Fields;

use crate::model::Span;

/// Size of a message accepted when a mailbox names none: 25 MiB.
pub const DEFAULT_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;
/// Size of one attachment stored when a mailbox names none: 10 MiB.
pub const DEFAULT_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Total size of the attachments of one message stored when a mailbox names none: 20 MiB.
pub const DEFAULT_ATTACHMENTS_BYTES: u64 = 20 * 1024 * 1024;

/// One file of `workflows/mailboxes/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxFile {
    #[serde(default)]
    pub label: Option<String>,
    /// The addresses this mailbox receives for, such as `support@example.com`.
    pub addresses: Vec<String>,
    /// Process of the records that new messages open.
    pub process: String,
    /// Field values of the records that new messages open, applied as the channel's
    /// values (a requester could not set them by hand), before the process's rules run.
    #[serde(default)]
    pub fields: Fields,
    /// Number prefixes of the subject tags that thread a reply (`[INC0000042]`); the
    /// process's own prefix when left out.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether a reply sent to a plus address of the mailbox, such as
    /// `support+INC0000042@example.com`, threads into the record it names when neither its
    /// references nor a subject tag do. Notifications then carry that address as their
    /// `Reply-To`. The token is the record number; a sender who is a stranger to the record
    /// is still handled by `strangers`.
    #[serde(default)]
    pub reply_tokens: bool,
    /// Policy for a message whose subject tag or references name a record of which its
    /// sender is not the requester, a watcher or staff.
    #[serde(default)]
    pub strangers: StrangerPolicy,
    /// Link type from a stranger's new record to the record its subject named.
    #[serde(default = "default_stranger_link")]
    pub stranger_link: String,
    /// Policy for a message from an address that belongs to no user.
    #[serde(default)]
    pub unknown_senders: UnknownSenders,
    /// A rule run with the `on_email` hook before a new message opens its record: it may
    /// set fields, choose another process with `open_record`, or refuse the message with
    /// `deny`.
    #[serde(default)]
    pub on_email: Option<String>,
    #[serde(default)]
    pub limits: MailLimits,
    /// At most this many messages from one sender are processed within the window; the
    /// rest are quarantined. Stops two help desks that answer each other.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: RateLimit,
    /// Sender identity of the notifications about this mailbox's records; the mailbox's
    /// first address when left out.
    #[serde(default)]
    pub from: Option<Sender>,
    /// At most this many automatic notifications (acknowledgements and other
    /// `Auto-Submitted` mail) go to one address within the window; the rest are kept as
    /// suppressed. Stops a loop with a robot that replies without the usual headers.
    #[serde(default = "default_notify_limit")]
    pub notify_limit: RateLimit,
}

/// The sender of notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// The `From` address, such as `support@example.com`.
    pub address: String,
    /// The display name in `From`, such as `Service desk`.
    #[serde(default)]
    pub name: Option<String>,
    /// The `Reply-To` address, when replies should go elsewhere than `address`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The domain of the Message-IDs of sent mail; the domain of `address` when left out.
    #[serde(default)]
    pub message_id_domain: Option<String>,
}

impl Mailbox {
    /// Returns the sender of this mailbox's notifications: `from`, else its first address
    /// with its label as the name.
    pub fn sender(&self) -> Sender {
        self.file.from.clone().unwrap_or_else(|| Sender {
            address: self.file.addresses.first().cloned().unwrap_or_default(),
            name: self.file.label.clone(),
            reply_to: None,
            message_id_domain: None,
        })
    }
}

impl Sender {
    /// Returns the domain of Message-IDs: `message_id_domain`, else the domain of
    /// `address`.
    pub fn domain(&self) -> String {
        self.message_id_domain.clone().unwrap_or_else(|| {
            self.address
                .rsplit_once('@')
                .map_or_else(|| "localhost".to_owned(), |(_, domain)| domain.to_owned())
        })
    }
}

/// A mailbox with its name.
#[derive(Debug, Clone, PartialEq)]
pub struct Mailbox {
    pub name: String,
    pub file: MailboxFile,
}

impl Mailbox {
    /// Returns the number prefixes whose subject tags this mailbox threads.
    pub fn tag_prefixes<'a>(&'a self, process_prefix: &'a str) -> Vec<&'a str> {
        if self.file.tags.is_empty() {
            vec![process_prefix]
        } else {
            self.file.tags.iter().map(String::as_str).collect()
        }
    }

    /// Checks whether `address` is one of the mailbox's own addresses (without case).
    pub fn owns(&self, address: &str) -> bool {
        self.file
            .addresses
            .iter()
            .any(|own| own.eq_ignore_ascii_case(address.trim()))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrangerPolicy {
    /// Open a new record for the stranger, linked to the record named.
    #[default]
    NewRecord,
    /// Refuse the message; the record named gets a journal entry.
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSenders {
    /// Create a requester account named after the address.
    #[default]
    CreateRequester,
    /// Refuse the message.
    Reject,
}

/// Size limits, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailLimits {
    /// Largest raw message accepted over HTTP; the MTA enforces its own limit for pipes.
    #[serde(default = "default_message_bytes")]
    pub message_bytes: u64,
    /// Largest attachment stored; larger ones are listed with the reason and not stored.
    #[serde(default = "default_attachment_bytes")]
    pub attachment_bytes: u64,
    /// Largest total of the attachments of one message stored; the files past it are
    /// listed with the reason and not stored.
    #[serde(default = "default_attachments_bytes")]
    pub attachments_bytes: u64,
}

impl Default for MailLimits {
    fn default() -> Self {
        MailLimits {
            message_bytes: DEFAULT_MESSAGE_BYTES,
            attachment_bytes: DEFAULT_ATTACHMENT_BYTES,
            attachments_bytes: DEFAULT_ATTACHMENTS_BYTES,
        }
    }
}

/// At most `messages` messages per sender within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub messages: u32,
    pub within: Span,
}

fn default_rate_limit() -> RateLimit {
    RateLimit {
        messages: 20,
        within: Span { minutes: 10 },
    }
}

fn default_notify_limit() -> RateLimit {
    RateLimit {
        messages: 3,
        within: Span { minutes: 60 },
    }
}

fn default_stranger_link() -> String {
    "related_to".to_owned()
}

fn default_message_bytes() -> u64 {
    DEFAULT_MESSAGE_BYTES
}

fn default_attachment_bytes() -> u64 {
    DEFAULT_ATTACHMENT_BYTES
}

fn default_attachments_bytes() -> u64 {
    DEFAULT_ATTACHMENTS_BYTES
}

impl MailboxFile {
    /// Problems that need no other file, as (path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.addresses.is_empty() {
            problems.push((
                "addresses".to_owned(),
                "the mailbox receives for no address: list its addresses, such as support@example.com".to_owned(),
            ));
        }
        for (position, address) in self.addresses.iter().enumerate() {
            if !is_address(address) {
                problems.push((
                    format!("addresses[{position}]"),
                    format!(
                        "`{address}` is not an email address: write it as local@domain.example"
                    ),
                ));
            }
        }
        for (position, tag) in self.tags.iter().enumerate() {
            if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
                problems.push((
                    format!("tags[{position}]"),
                    format!("invalid tag prefix `{tag}`: use the letters of a process's number prefix, such as INC"),
                ));
            }
        }
        let limits = [
            ("message_bytes", self.limits.message_bytes),
            ("attachment_bytes", self.limits.attachment_bytes),
            ("attachments_bytes", self.limits.attachments_bytes),
        ];
        for (name, value) in limits {
            if value == 0 {
                problems.push((
                    format!("limits.{name}"),
                    format!("`{name}` is 0, so nothing would be accepted: give a size in bytes, such as 10485760 for 10 MiB"),
                ));
            }
        }
        if self.rate_limit.messages == 0 {
            problems.push((
                "rate_limit.messages".to_owned(),
                "`messages` is 0, so every message would be quarantined: allow at least 1"
                    .to_owned(),
            ));
        }
        if let Some(from) = &self.from {
            let addresses = [
                ("from.address", Some(&from.address)),
                ("from.reply_to", from.reply_to.as_ref()),
            ];
            for (path, address) in addresses {
                if let Some(address) = address
                    && !is_address(address)
                {
                    problems.push((
                        path.to_owned(),
                        format!(
                            "`{address}` is not an email address: write it as local@domain.example"
                        ),
                    ));
                }
            }
        }
        if self.notify_limit.messages == 0 || self.notify_limit.within.minutes <= 0 {
            problems.push((
                "notify_limit".to_owned(),
                "`notify_limit` needs at least 1 message within a positive length of time, such as { messages: 3, within: 1h }".to_owned(),
            ));
        }
        if self.rate_limit.within.minutes <= 0 {
            problems.push((
                "rate_limit.within".to_owned(),
                "`within` must be a positive length of time, such as 10m".to_owned(),
            ));
        }
        problems
    }
}

/// Checks the form `local@domain.example`, without whitespace.
fn is_address(address: &str) -> bool {
    address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(yaml: &str) -> MailboxFile {
        serde_norway::from_str(yaml).expect("the test mailbox parses")
    }

    #[test]
    fn defaults_fill_in() {
        let mailbox = file("addresses: [desk@example.com]\nprocess: incident\n");
        assert_eq!(mailbox.strangers, StrangerPolicy::NewRecord);
        assert_eq!(mailbox.unknown_senders, UnknownSenders::CreateRequester);
        assert_eq!(mailbox.limits, MailLimits::default());
        assert_eq!(mailbox.rate_limit.messages, 20);
        assert_eq!(mailbox.rate_limit.within.minutes, 10);
        assert_eq!(mailbox.stranger_link, "related_to");
        assert!(mailbox.problems().is_empty());
        let named = Mailbox {
            name: "desk".into(),
            file: mailbox,
        };
        assert_eq!(named.tag_prefixes("INC"), ["INC"]);
        assert!(named.owns(" Desk@Example.com"));
        assert!(!named.owns("other@example.com"));
    }

    #[test]
    fn problems_name_the_path() {
        let mailbox = file(
            "addresses: [desk, ok@example.com]\nprocess: incident\ntags: [IN-C]\nlimits: { attachment_bytes: 0 }\nrate_limit: { messages: 0, within: 1m }\n",
        );
        let paths: Vec<String> = mailbox
            .problems()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            paths,
            [
                "addresses[0]",
                "tags[0]",
                "limits.attachment_bytes",
                "rate_limit.messages"
            ]
        );
    }
}
