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
    /// Language of the notifications about this mailbox's records, such as `fr`, for
    /// recipients who set none of their own.
    #[serde(default)]
    pub locale: Option<String>,
    /// An IMAP folder that `tend serve` polls for this mailbox's messages.
    #[serde(default)]
    pub imap: Option<ImapSource>,
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

/// Connection settings with which `tend serve` fetches the mailbox's messages over IMAP.
/// The password is never written here: it comes from an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSource {
    pub host: String,
    /// 993 with `security: tls`, else 143, when left out.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: ImapSecurity,
    pub username: String,
    /// Name of the environment variable that contains the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File whose content (without the final line break) is the password; a relative
    /// path is taken from the definitions directory.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Accepted only to report it: a password written in the definitions would be in
    /// every copy and history of them.
    #[serde(default, skip_serializing)]
    pub password: Option<serde_norway::Value>,
    /// PEM file of a certificate authority trusted besides the public ones, for a server
    /// with a private certificate; a relative path is taken from the definitions directory.
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default = "default_imap_folder")]
    pub folder: String,
    #[serde(default)]
    pub processed: Processed,
    /// Wait with IMAP IDLE between passes when the server offers it.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Time between passes without IDLE, and the longest wait for a new message with it.
    #[serde(default = "default_poll_every")]
    pub poll_every: Seconds,
}

impl ImapSource {
    /// Returns the port, or the standard one of the security: 993 for `tls`, else 143.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            ImapSecurity::Tls => 993,
            ImapSecurity::None | ImapSecurity::Starttls => 143,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapSecurity {
    /// No encryption: only for a server on the same host.
    None,
    /// A plain connection upgraded with STARTTLS before the login.
    Starttls,
    /// TLS from the first byte (IMAPS).
    #[default]
    Tls,
}

/// Action taken on a message after its transaction committed, so that the next pass
/// skips it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProcessedKeys", into = "ProcessedKeys")]
pub enum Processed {
    /// Move it to this folder, which is created when missing.
    MoveTo(String),
    /// Set this keyword on it and leave it in place, for an account that may not
    /// create or move to folders.
    Flag(String),
}

/// The YAML form of [`Processed`]: a map with one of the two keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessedKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    move_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
}

impl TryFrom<ProcessedKeys> for Processed {
    type Error = String;

    fn try_from(keys: ProcessedKeys) -> Result<Self, Self::Error> {
        match (keys.move_to, keys.flag) {
            (Some(folder), None) => Ok(Processed::MoveTo(folder)),
            (None, Some(keyword)) => Ok(Processed::Flag(keyword)),
            (Some(_), Some(_)) => Err("give either `move_to` or `flag`, not both".to_owned()),
            (None, None) => Err(
                "say what is done to a processed message: `{ move_to: FOLDER }` or `{ flag: KEYWORD }`"
                    .to_owned(),
            ),
        }
    }
}

impl From<Processed> for ProcessedKeys {
    fn from(processed: Processed) -> Self {
        match processed {
            Processed::MoveTo(folder) => ProcessedKeys {
                move_to: Some(folder),
                flag: None,
            },
            Processed::Flag(keyword) => ProcessedKeys {
                move_to: None,
                flag: Some(keyword),
            },
        }
    }
}

impl Default for Processed {
    fn default() -> Self {
        Processed::MoveTo("Processed".to_owned())
    }
}

/// A length of time in seconds, written as a number and a unit: `s`, `m` or `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl Seconds {
    pub fn parse(text: &str) -> Result<Seconds, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "invalid length of time `{text}`: write a number and a unit s, m or h, e.g. 60s"
            )
        };
        let unit = text.chars().last().ok_or_else(invalid)?;
        let count: u64 = text[..text.len() - unit.len_utf8()]
            .trim()
            .parse()
            .map_err(|_| invalid())?;
        let per_unit = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(invalid()),
        };
        if count == 0 || count * per_unit > 24 * 3600 {
            return Err(format!("{}: use from 1s to 24h", invalid()));
        }
        Ok(Seconds(count * per_unit))
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}s", self.0))
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Seconds::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_imap_folder() -> String {
    "INBOX".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_poll_every() -> Seconds {
    Seconds(60)
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
        if let Some(imap) = &self.imap {
            problems.extend(imap.problems());
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

impl ImapSource {
    /// Problems of the `imap:` section, as (path, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push((format!("imap.{path}"), message));
        };
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            problem(
                "host",
                format!(
                    "invalid host `{}`: give the IMAP server's host name or IP address, such as imap.example.com",
                    self.host
                ),
            );
        }
        if self.port == Some(0) {
            problem(
                "port",
                "port 0 is not a port: give the IMAP server's port, such as 993 for TLS or 143 for STARTTLS".to_owned(),
            );
        }
        if self.username.trim().is_empty() {
            problem(
                "username",
                "the username is empty: give the login of the IMAP account, often its address"
                    .to_owned(),
            );
        }
        if self.password.is_some() {
            problem(
                "password",
                "a password must not be written in the definitions, which are copied and kept in version control: remove it and name an environment variable in `password_env` or a file in `password_file`".to_owned(),
            );
        }
        match (&self.password_env, &self.password_file) {
            (None, None) => problem(
                "password_env",
                "the IMAP password is missing: name the environment variable that contains it in `password_env`, or a file in `password_file`".to_owned(),
            ),
            (Some(_), Some(_)) => problem(
                "password_file",
                "both `password_env` and `password_file` are given: keep one of them".to_owned(),
            ),
            (Some(name), None) => {
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    problem(
                        "password_env",
                        format!("invalid environment variable name `{name}`: use letters, digits and underscores, such as TEND_SUPPORT_IMAP_PASSWORD"),
                    );
                }
            }
            (None, Some(file)) => {
                if file.trim().is_empty() {
                    problem(
                        "password_file",
                        "the password file is empty: give the path of the file that contains the password".to_owned(),
                    );
                }
            }
        }
        if self
            .ca_file
            .as_deref()
            .is_some_and(|file| file.trim().is_empty())
        {
            problem(
                "ca_file",
                "the CA file is empty: give the path of a PEM file, or leave `ca_file` out to trust the public certificate authorities".to_owned(),
            );
        }
        if !is_mailbox_name(&self.folder) {
            problem(
                "folder",
                format!(
                    "invalid folder `{}`: give the name of an IMAP folder, such as INBOX",
                    self.folder
                ),
            );
        }
        match &self.processed {
            Processed::MoveTo(folder) => {
                if !is_mailbox_name(folder) {
                    problem(
                        "processed.move_to",
                        format!(
                            "invalid folder `{folder}`: give the name of an IMAP folder, such as Processed"
                        ),
                    );
                } else if folder.eq_ignore_ascii_case(&self.folder) {
                    problem(
                        "processed.move_to",
                        format!(
                            "`{folder}` is the folder that is polled, so every message would be taken again: move processed messages to another folder"
                        ),
                    );
                }
            }
            Processed::Flag(keyword) => {
                // An IMAP keyword is an atom: no spaces, brackets, quotes, wildcards or
                // backslash, so it cannot be a system flag such as \Seen.
                let valid = !keyword.is_empty()
                    && keyword
                        .chars()
                        .all(|c| c.is_ascii_graphic() && !"(){%*\"\\]".contains(c));
                if !valid {
                    problem(
                        "processed.flag",
                        format!(
                            "invalid keyword `{keyword}`: use letters, digits and `$_-.`, such as TendProcessed"
                        ),
                    );
                }
            }
        }
        problems
    }
}

/// Checks that `name` is a non-empty IMAP mailbox name without control characters,
/// quotes or backslashes, which async-imap would have to escape.
fn is_mailbox_name(name: &str) -> bool {
    !name.trim().is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
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

    const IMAP_BASE: &str = "addresses: [desk@example.com]\nprocess: incident\n";

    /// Parses a mailbox with the `imap:` lines given, as the loader does, and returns the
    /// messages of the syntax and type errors with their positions.
    fn imap_parse_errors(imap: &str) -> Vec<String> {
        let text = format!("{IMAP_BASE}imap:\n{imap}");
        match crate::load::parse_yaml::<MailboxFile>(std::path::Path::new("desk.yaml"), &text) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
        }
    }

    fn imap_problems(imap: &str) -> Vec<(String, String)> {
        file(&format!("{IMAP_BASE}imap:\n{imap}")).problems()
    }

    #[test]
    fn imap_defaults_fill_in() {
        let mailbox = file(&format!(
            "{IMAP_BASE}imap:\n  host: imap.example.com\n  username: desk@example.com\n  password_env: DESK_PASSWORD\n"
        ));
        assert!(mailbox.problems().is_empty(), "{:?}", mailbox.problems());
        let imap = mailbox.imap.expect("the imap section parses");
        assert_eq!(imap.security, ImapSecurity::Tls);
        assert_eq!(imap.port(), 993);
        assert_eq!(imap.folder, "INBOX");
        assert_eq!(imap.processed, Processed::MoveTo("Processed".into()));
        assert!(imap.idle);
        assert_eq!(imap.poll_every, Seconds(60));
    }

    #[test]
    fn imap_full_section_parses() {
        let mailbox = file(&format!(
            "{IMAP_BASE}imap:\n  host: 127.0.0.1\n  port: 1143\n  security: starttls\n  username: desk@example.com\n  password_file: secrets/desk\n  ca_file: /etc/ssl/private-ca.pem\n  folder: Support\n  processed: {{ flag: TendDone }}\n  idle: false\n  poll_every: 2m\n"
        ));
        assert!(mailbox.problems().is_empty(), "{:?}", mailbox.problems());
        let imap = mailbox.imap.expect("the imap section parses");
        assert_eq!(imap.port(), 1143);
        assert_eq!(imap.security, ImapSecurity::Starttls);
        assert_eq!(imap.processed, Processed::Flag("TendDone".into()));
        assert_eq!(imap.poll_every, Seconds(120));
        assert!(!imap.idle);
    }

    #[test]
    fn imap_missing_host_names_line() {
        let errors = imap_parse_errors("  username: desk@example.com\n  password_env: DESK\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("desk.yaml:3:"), "{errors:?}");
        assert!(errors[0].contains("missing field `host`"), "{errors:?}");
    }

    #[test]
    fn imap_unknown_security_lists_choices() {
        let errors = imap_parse_errors(
            "  host: imap.example.com\n  security: ssl\n  username: desk\n  password_env: DESK\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("desk.yaml:5:"), "{errors:?}");
        assert!(errors[0].contains("`ssl`"), "{errors:?}");
        assert!(errors[0].contains("none"), "{errors:?}");
        assert!(errors[0].contains("starttls"), "{errors:?}");
    }

    #[test]
    fn imap_processed_needs_one_key() {
        let base = "  host: imap.example.com\n  username: desk\n  password_env: DESK\n";
        let both = imap_parse_errors(&format!(
            "{base}  processed: {{ move_to: Done, flag: Done }}\n"
        ));
        assert_eq!(both.len(), 1, "{both:?}");
        assert!(both[0].contains("not both"), "{both:?}");
        let neither = imap_parse_errors(&format!("{base}  processed: {{}}\n"));
        assert_eq!(neither.len(), 1, "{neither:?}");
        assert!(neither[0].contains("move_to: FOLDER"), "{neither:?}");
    }

    #[test]
    fn imap_inline_password_rejected() {
        let problems =
            imap_problems("  host: imap.example.com\n  username: desk\n  password: hunter2\n");
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, ["imap.password", "imap.password_env"]);
        assert!(problems[0].1.contains("password_env"), "{problems:?}");
        assert!(!problems[0].1.contains("hunter2"), "{problems:?}");
    }

    #[test]
    fn imap_problems_name_the_path() {
        let problems = imap_problems(
            "  host: ' '\n  port: 0\n  username: ''\n  password_env: 9X\n  folder: INBOX\n  processed: { move_to: inbox }\n",
        );
        let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "imap.host",
                "imap.port",
                "imap.username",
                "imap.password_env",
                "imap.processed.move_to"
            ]
        );
        let both = imap_problems(
            "  host: h.example\n  username: u\n  password_env: A\n  password_file: f\n  processed: { flag: '\\\\Seen' }\n",
        );
        let paths: Vec<&str> = both.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, ["imap.password_file", "imap.processed.flag"]);
    }

    #[test]
    fn poll_every_parses_units() {
        assert_eq!(Seconds::parse("45s"), Ok(Seconds(45)));
        assert_eq!(Seconds::parse("5m"), Ok(Seconds(300)));
        assert_eq!(Seconds::parse("1h"), Ok(Seconds(3600)));
        assert!(Seconds::parse("0s").is_err());
        assert!(Seconds::parse("2d").is_err());
        assert!(Seconds::parse("25h").is_err());
        assert!(Seconds::parse("s").is_err());
    }
}
