//! The parsed message and the values inside it.

use std::fmt;

use chrono::{DateTime, FixedOffset};

/// One inbound message, decoded and ready for the intake to store and act on.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The `Message-ID` without angle brackets, or `None` when the header is missing or empty.
    pub message_id: Option<String>,
    /// Ids from `In-Reply-To`, without angle brackets, in header order.
    pub in_reply_to: Vec<String>,
    /// Ids from `References`, without angle brackets, oldest first as the header lists them.
    pub references: Vec<String>,
    /// The first mailbox of `From`, or `None` when the header is missing or contains no address.
    pub from: Option<Mailbox>,
    /// The `Sender` mailbox, set by some clients when someone sends for another person.
    pub sender: Option<Mailbox>,
    /// The `Reply-To` mailboxes.
    pub reply_to: Vec<Mailbox>,
    /// The `To` mailboxes, group members included.
    pub to: Vec<Mailbox>,
    /// The `Cc` mailboxes, group members included.
    pub cc: Vec<Mailbox>,
    /// The envelope sender that the delivering server recorded in `Return-Path`.
    pub return_path: Option<ReturnPath>,
    /// The decoded `Subject`, or `None` when the header is missing.
    pub subject: Option<String>,
    /// The `Date` with the sender's offset, or `None` when missing or unreadable.
    pub date: Option<DateTime<FixedOffset>>,
    /// Every top-level header field in order, values unfolded and decoded.
    pub headers: Vec<HeaderField>,
    /// The body as plain text with `\n` line ends: the text/plain parts, or the text of the
    /// HTML parts where a message has no plain text. Empty when the message has no body.
    pub text: String,
    /// The HTML body sanitised for display, or `None` when the message has no HTML part or
    /// its HTML was too large or too deeply nested to sanitise (see [`Warning::HtmlFallback`]).
    pub html: Option<String>,
    /// Attachments and inline parts that are not the body, in MIME order.
    pub attachments: Vec<Attachment>,
    /// Messages attached as `message/rfc822`, each parsed in full.
    pub nested: Vec<NestedMessage>,
    /// The machine-readable part of a `multipart/report` (bounce, delivery or read report).
    pub report: Option<Report>,
    /// SHA-256 of the raw bytes as given, lower-case hex.
    pub raw_sha256: String,
    /// Size of the raw bytes as given.
    pub raw_size: usize,
    /// Guesses and repairs made while parsing, in the order they were made.
    pub warnings: Vec<Warning>,
}

impl InboundMessage {
    /// Returns the value of the first top-level header field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value.as_str())
    }

    /// Returns the values of every top-level header field named `name` (any case).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value.as_str())
    }

    /// Returns the key for de-duplication: the `Message-ID`, or an id made from the SHA-256 of
    /// the raw bytes (`sha256-<hex>@generated.invalid`) when the message has none. The same
    /// bytes always give the same key, and any change to them gives another.
    pub fn dedup_key(&self) -> String {
        match &self.message_id {
            Some(id) => id.clone(),
            None => format!("sha256-{}@generated.invalid", self.raw_sha256),
        }
    }

    /// Returns the address a reply should go to as the requester: `From`, else `Sender`, else a
    /// non-null `Return-Path`. `None` means the message names no address to reply to.
    pub fn requester_address(&self) -> Option<&str> {
        if let Some(mailbox) = self.from.as_ref().or(self.sender.as_ref()) {
            return Some(mailbox.address.as_str());
        }
        match &self.return_path {
            Some(ReturnPath::Address(address)) => Some(address.as_str()),
            _ => None,
        }
    }
}

/// An address with its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The decoded display name, if the header gave one.
    pub name: Option<String>,
    /// The address as written (`local@domain`), never empty.
    pub address: String,
}

/// The value of `Return-Path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnPath {
    /// `<>`: the null reverse-path of bounces and other automatic mail. RFC 5321 section
    /// 4.5.5 forbids replying to it.
    Null,
    /// An envelope sender address, without angle brackets.
    Address(String),
}

/// One header field with its unfolded, decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as written.
    pub name: String,
    /// The value with folding removed and RFC 2047 encoded words decoded.
    pub value: String,
}

/// A MIME part that is not part of the body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The MIME part number (`1`, `2.1`, ...), as IMAP numbers sections.
    pub part: String,
    /// The decoded file name with any directory part removed, if the part has one.
    pub filename: Option<String>,
    /// The lower-case media type, such as `application/pdf`.
    pub content_type: String,
    /// Size of the decoded content in bytes.
    pub size: usize,
    /// SHA-256 of the decoded content, lower-case hex.
    pub sha256: String,
    /// The `Content-ID` without angle brackets; HTML refers to it as `cid:<id>`.
    pub content_id: Option<String>,
    /// Whether the part is meant to be shown in the body (`Content-Disposition: inline`, or no
    /// disposition and a `Content-ID`) rather than offered as a download.
    pub inline: bool,
    /// The decoded content.
    pub data: Vec<u8>,
    /// The files inside an Outlook TNEF attachment (`winmail.dat`), or `None` when the part
    /// is not TNEF. An empty list means TNEF that could not be read, and a warning gives the reason.
    pub tnef: Option<Vec<TnefFile>>,
}

/// A file carried inside a TNEF attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TnefFile {
    /// The file name: the long name when TNEF gives one, else the 8.3 title.
    pub filename: Option<String>,
    /// Size of the content in bytes.
    pub size: usize,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The content.
    pub data: Vec<u8>,
}

/// A `message/rfc822` part (a forwarded or bounced message), parsed like the outer one.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedMessage {
    /// The MIME part number of the `message/rfc822` part.
    pub part: String,
    /// The nested message; its `raw_sha256` and `raw_size` describe the nested bytes.
    pub message: Box<InboundMessage>,
    /// The raw bytes of the nested message.
    pub raw: Vec<u8>,
}

/// The machine-readable part of a `multipart/report` message (RFC 6522).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The `report-type` parameter, lower case: `delivery-status` for bounces and delivery
    /// notifications, `disposition-notification` for read receipts.
    pub report_type: String,
    /// The `Message-ID` of the message the report is about, from the returned headers or
    /// message, without angle brackets.
    pub original_message_id: Option<String>,
    /// Per-recipient results of a delivery-status report.
    pub recipients: Vec<RecipientStatus>,
}

/// The delivery result for one recipient in a `message/delivery-status` part (RFC 3464).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientStatus {
    /// The address from `Final-Recipient`, without its address type (`rfc822;`).
    pub final_recipient: Option<String>,
    /// `Action`, lower case: `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: Option<String>,
    /// `Status`, such as `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code` as written.
    pub diagnostic: Option<String>,
}

/// Something the parser had to guess or repair. The message is still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Text with bytes above ASCII had no charset; `used` is the one detected.
    CharsetMissing { context: String, used: String },
    /// The charset label is unknown to the converter; `used` is the one detected.
    CharsetUnknown {
        context: String,
        label: String,
        used: String,
    },
    /// The bytes do not fit the declared charset but fit `used`.
    CharsetMismatch {
        context: String,
        declared: String,
        used: String,
    },
    /// The bytes are invalid in `charset`; the invalid sequences became U+FFFD.
    MalformedText { context: String, charset: String },
    /// The base64 or quoted-printable content of a part is damaged; what could be decoded
    /// was kept.
    DamagedTransferEncoding { part: String, encoding: String },
    /// The MIME structure is broken: a missing boundary, no parts, or no closing delimiter.
    BrokenMultipart { part: String, detail: String },
    /// A header needed for threading or replies is missing.
    MissingHeader { name: String },
    /// An address header contains no usable address.
    InvalidAddress { header: String, value: String },
    /// The `Date` header cannot be read.
    InvalidDate { value: String },
    /// HTML was too large or too deeply nested for the full converter and sanitiser, so its
    /// text was extracted by a simple linear scan and no sanitised HTML is offered.
    HtmlFallback { part: String, reason: String },
    /// A TNEF attachment could not be read; it is kept as one opaque attachment.
    UnreadableTnef { part: String, reason: String },
    /// A `message/rfc822` part could not be parsed or is nested too deeply; it is kept as
    /// an attachment.
    UnreadableNestedMessage { part: String, reason: String },
    /// An attachment file name held a directory part or control characters, which were
    /// removed.
    FilenameChanged {
        part: String,
        original: String,
        used: String,
    },
    /// The input started with an mbox `From ` line, which was skipped.
    MboxLineSkipped,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::CharsetMissing { context, used } => {
                write!(f, "{context}: no charset declared, decoded as {used}")
            }
            Warning::CharsetUnknown {
                context,
                label,
                used,
            } => write!(f, "{context}: unknown charset {label:?}, decoded as {used}"),
            Warning::CharsetMismatch {
                context,
                declared,
                used,
            } => write!(
                f,
                "{context}: declared charset {declared:?} does not match content, decoded as {used}"
            ),
            Warning::MalformedText { context, charset } => write!(
                f,
                "{context}: invalid {charset} byte sequences replaced with U+FFFD"
            ),
            Warning::DamagedTransferEncoding { part, encoding } => write!(
                f,
                "part {part}: damaged {encoding} content, decoded as far as possible"
            ),
            Warning::BrokenMultipart { part, detail } => {
                write!(f, "part {part}: broken multipart: {detail}")
            }
            Warning::MissingHeader { name } => write!(f, "missing {name} header"),
            Warning::InvalidAddress { header, value } => {
                write!(f, "{header} header holds no usable address: {value:?}")
            }
            Warning::InvalidDate { value } => write!(f, "invalid Date header: {value:?}"),
            Warning::HtmlFallback { part, reason } => write!(
                f,
                "part {part}: HTML {reason}; text extracted by the simple scanner, no HTML view"
            ),
            Warning::UnreadableTnef { part, reason } => write!(
                f,
                "part {part}: TNEF attachment not readable ({reason}), kept as one file"
            ),
            Warning::UnreadableNestedMessage { part, reason } => write!(
                f,
                "part {part}: attached message not parsed ({reason}), kept as a file"
            ),
            Warning::FilenameChanged {
                part,
                original,
                used,
            } => write!(
                f,
                "part {part}: attachment name {original:?} changed to {used:?}"
            ),
            Warning::MboxLineSkipped => write!(f, "skipped a leading mbox \"From \" line"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> InboundMessage {
        InboundMessage {
            message_id: None,
            in_reply_to: Vec::new(),
            references: Vec::new(),
            from: None,
            sender: None,
            reply_to: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            return_path: None,
            subject: None,
            date: None,
            headers: vec![
                HeaderField {
                    name: "X-Test".into(),
                    value: "one".into(),
                },
                HeaderField {
                    name: "x-test".into(),
                    value: "two".into(),
                },
            ],
            text: String::new(),
            html: None,
            attachments: Vec::new(),
            nested: Vec::new(),
            report: None,
            raw_sha256: "ab".repeat(32),
            raw_size: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn header_lookup_ignores_case() {
        let message = message();
        assert_eq!(message.header("X-TEST"), Some("one"));
        assert_eq!(message.header_values("x-test").count(), 2);
        assert_eq!(message.header("Missing"), None);
    }

    #[test]
    fn dedup_key_without_message_id() {
        let mut message = message();
        assert_eq!(
            message.dedup_key(),
            format!("sha256-{}@generated.invalid", "ab".repeat(32))
        );
        message.message_id = Some("id@example.org".into());
        assert_eq!(message.dedup_key(), "id@example.org");
    }

    #[test]
    fn requester_falls_back_to_return_path() {
        let mut message = message();
        assert_eq!(message.requester_address(), None);
        message.return_path = Some(ReturnPath::Null);
        assert_eq!(message.requester_address(), None);
        message.return_path = Some(ReturnPath::Address("bounce@example.org".into()));
        assert_eq!(message.requester_address(), Some("bounce@example.org"));
        message.sender = Some(Mailbox {
            name: None,
            address: "sender@example.org".into(),
        });
        assert_eq!(message.requester_address(), Some("sender@example.org"));
    }
}
