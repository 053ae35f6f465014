//! Tend's mail channel. The inbound half turns one raw RFC 5322 / MIME message into an
//! [`InboundMessage`] that the intake can store, thread and act on; it is pure: no IO, no
//! clock, no database. The [`outbound`] half builds notifications and sends them over
//! SMTP.
//!
//! # What is parsed
//!
//! [`parse`] reads:
//!
//! * the top-level headers: ids, addresses, subject, date, and every field decoded;
//! * the body as plain text and as sanitised HTML;
//! * the attachments with their decoded file names, sizes and SHA-256 sums, and the files
//!   inside Outlook TNEF containers;
//! * attached `message/rfc822` messages, parsed in full up to three levels deep;
//! * the report part of bounces and other `multipart/report` messages.
//!
//! mail-parser 0.11 finds the MIME structure. The text of headers and parts is decoded here from the raw bytes, so the
//! fallbacks below apply everywhere.
//!
//! Only input that is not a message is an error ([`ParseError`]): empty input, or input
//! whose first line is not a header field. A message without `From`, `Message-ID`, `Date`
//! or body still parses; what is missing or had to be repaired is listed in
//! [`InboundMessage::warnings`].
//!
//! # Fallbacks
//!
//! * Charsets: the declared charset is used when `encoding_rs` or mail-parser supports it
//!   and the bytes fit.
//!   Other text is decoded by detection: text without a charset, with an unknown label, or
//!   with bytes that cannot be in the declared charset (UTF-8 labelled ISO-2022-JP, Latin-1
//!   labelled UTF-8). Detection picks UTF-8 if valid, ISO-2022-JP for 7-bit bytes with its
//!   escape sequences, else what `chardetng` guesses (windows-1252 at worst). A warning
//!   names the label.
//! * Encoded words (RFC 2047): adjacent words with the same charset and encoding are joined
//!   as bytes before decoding, so a character split across two words survives. Words are
//!   also decoded inside quoted file names, which Outlook sends.
//! * File names: RFC 2231 parameters (continuations, charset, percent-encoding), RFC 2047
//!   words and raw 8-bit names are decoded; directory parts and control characters are
//!   removed.
//! * Transfer encodings: damaged base64 or quoted-printable is decoded as far as it goes.
//! * HTML: over 2 MiB or nested more than 1000 elements deep, HTML skips the DOM-based
//!   converters (whose time grows with the square of the depth) and its text is extracted
//!   by a linear scan; no HTML view is offered then.
//! * De-duplication: [`InboundMessage::dedup_key`] falls back to the SHA-256 of the raw
//!   bytes when there is no `Message-ID`.
//!
//! # Robots and threading
//!
//! [`robot`] and [`robot_reasons`] tell machine-made mail (bounces, auto-replies, lists,
//! Tend's own mail) from mail by people; the [`robots`] module lists the rules. The
//! [`thread`] module finds record numbers in subjects, strips reply prefixes and reads
//! plus-address tokens.

mod attachments;
mod body;
mod charset;
mod fields;
mod headers;
mod html;
mod message;
pub mod outbound;
mod params;
mod parse;
mod report;
pub mod robots;
pub mod thread;
mod tnef;
mod transfer;

pub use message::{
    Attachment, HeaderField, InboundMessage, Mailbox, NestedMessage, RecipientStatus, Report,
    ReturnPath, TnefFile, Warning,
};
pub use parse::{MAX_MESSAGE_BYTES, parse};
pub use robots::{LoopMarker, RobotReason, replies_to_automatic, robot, robot_reasons};
pub use thread::{parent_candidates, reply_token, strip_reply_prefixes, subject_tags};

/// Error for input that cannot be parsed as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "the input is empty or only white space: pass the raw bytes of one message, header first"
    )]
    Empty,
    #[error(
        "the input is {size} bytes, over the limit of {max} bytes: store it as a file and reject it, since no mail is that large"
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "the input does not start with a header field (first line: \"{first_line}\"): pass a raw RFC 5322 message whose first line is a field such as \"From: ...\""
    )]
    NoHeader { first_line: String },
    #[error(
        "the header has no standard message field (found only: {found}): pass a raw RFC 5322 message with From, To, Subject, Date or similar fields"
    )]
    NoMessageField { found: String },
    #[error(
        "the MIME parser failed on this input ({detail}): keep the raw message and report it as a bug"
    )]
    ParserFailure { detail: String },
}
