//! The top-level header fields of a message: ids, addresses, subject, date and every field
//! decoded for lookups.

use chrono::{DateTime, FixedOffset, NaiveDate};
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use crate::headers::{self, RawField};
use crate::message::{HeaderField, InboundMessage, Mailbox, Warning};

/// Reads the top-level fields into a message with an empty body.
pub(crate) fn read(fields: &[RawField<'_>], warnings: &mut Vec<Warning>) -> InboundMessage {
    let field = |name: &str| {
        fields
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value)
    };

    let header_fields = fields
        .iter()
        .map(|field| HeaderField {
            name: field.name.clone(),
            value: headers::decode_text(field.value).text,
        })
        .collect();

    let subject = field("subject").map(|raw| {
        let decoded = headers::decode_text(raw);
        for issue in decoded.issues {
            warnings.push(issue.into_warning("Subject header".to_string()));
        }
        decoded.text
    });

    let message_id =
        field("message-id").and_then(|raw| headers::message_ids(raw).into_iter().next());
    if message_id.is_none() {
        warnings.push(Warning::MissingHeader {
            name: "Message-ID".to_string(),
        });
    }

    let from_raw = field("from");
    let from = read_mailboxes("From", from_raw, warnings)
        .into_iter()
        .next();
    if from_raw.is_none() {
        warnings.push(Warning::MissingHeader {
            name: "From".to_string(),
        });
    }

    InboundMessage {
        message_id,
        in_reply_to: field("in-reply-to")
            .map(headers::message_ids)
            .unwrap_or_default(),
        references: field("references")
            .map(headers::message_ids)
            .unwrap_or_default(),
        from,
        sender: read_mailboxes("Sender", field("sender"), warnings)
            .into_iter()
            .next(),
        reply_to: read_mailboxes("Reply-To", field("reply-to"), warnings),
        to: read_mailboxes("To", field("to"), warnings),
        cc: read_mailboxes("Cc", field("cc"), warnings),
        return_path: field("return-path").and_then(headers::return_path),
        subject,
        date: field("date").and_then(|raw| read_date(raw, warnings)),
        headers: header_fields,
        text: String::new(),
        html: None,
        attachments: Vec::new(),
        nested: Vec::new(),
        report: None,
        raw_sha256: String::new(),
        raw_size: 0,
        warnings: Vec::new(),
    }
}

/// Parses an address field with mail-parser's address parser, group members included.
/// Entries without an address are dropped; a field left with none gets a warning.
fn read_mailboxes(header: &str, raw: Option<&[u8]>, warnings: &mut Vec<Warning>) -> Vec<Mailbox> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    // mail-parser's field parsers read up to the line end.
    let mut line = raw.to_vec();
    line.push(b'\n');
    let parsed = MessageStream::new(&line).parse_address();
    let mailboxes: Vec<Mailbox> = match &parsed {
        HeaderValue::Address(address) => address
            .iter()
            .filter_map(|addr| {
                let address = addr.address()?.trim();
                if address.is_empty() {
                    return None;
                }
                // NOTE: mail-parser decodes display names itself, one encoded word at a time
                // and with non-UTF-8 raw bytes as U+FFFD, so a name split inside a character
                // or sent in raw Latin-1 comes out damaged. Subjects and file names do not.
                let name = addr
                    .name()
                    .map(|name| {
                        if name.contains("=?") {
                            headers::decode_text(name.as_bytes()).text
                        } else {
                            name.trim().to_string()
                        }
                    })
                    .filter(|name| !name.is_empty());
                Some(Mailbox {
                    name,
                    address: address.to_string(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };

    if mailboxes.is_empty() {
        let value = headers::decode_text(raw).text;
        // An empty group such as `undisclosed-recipients:;` is valid and names no address.
        let is_empty_group = value.contains(':') && value.trim_end().ends_with(';');
        if !value.is_empty() && !is_empty_group {
            warnings.push(Warning::InvalidAddress {
                header: header.to_string(),
                value,
            });
        }
    }
    mailboxes
}

/// Parses a `Date` field with mail-parser's date parser; an unreadable or impossible date
/// gets a warning.
fn read_date(raw: &[u8], warnings: &mut Vec<Warning>) -> Option<DateTime<FixedOffset>> {
    let mut line = raw.to_vec();
    line.push(b'\n');
    let date = match MessageStream::new(&line).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => {
            let seconds = (i32::from(date.tz_hour) * 3600 + i32::from(date.tz_minute) * 60)
                * if date.tz_before_gmt { -1 } else { 1 };
            FixedOffset::east_opt(seconds).and_then(|offset| {
                NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                )?
                .and_hms_opt(
                    u32::from(date.hour),
                    u32::from(date.minute),
                    u32::from(date.second),
                )?
                .and_local_timezone(offset)
                .single()
            })
        }
        _ => None,
    };
    if date.is_none() {
        warnings.push(Warning::InvalidDate {
            value: headers::decode_text(raw).text,
        });
    }
    date
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::split_header_block;

    fn read_raw(raw: &[u8]) -> (InboundMessage, Vec<Warning>) {
        let mut warnings = Vec::new();
        let message = read(&split_header_block(raw), &mut warnings);
        (message, warnings)
    }

    #[test]
    fn addresses_and_names() {
        let (message, warnings) = read_raw(
            b"From: =?utf-8?Q?J=C3=B6rg?= <jorg@example.org>\nTo: a@example.org, Team: b@example.org, c@example.org;\nCc: \"Doe, Jane\" <jane@example.org>\nMessage-ID: <m@example.org>\n\n",
        );
        let from = message.from.expect("from");
        assert_eq!(from.name.as_deref(), Some("Jörg"));
        assert_eq!(from.address, "jorg@example.org");
        let to: Vec<&str> = message
            .to
            .iter()
            .map(|mailbox| mailbox.address.as_str())
            .collect();
        assert_eq!(to, ["a@example.org", "b@example.org", "c@example.org"]);
        assert_eq!(message.cc[0].name.as_deref(), Some("Doe, Jane"));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn date_with_offset() {
        let (message, _) =
            read_raw(b"From: a@example.org\nDate: Tue, 03 Feb 2026 09:15:00 +0100\n\n");
        let date = message.date.expect("date");
        assert_eq!(date.to_rfc3339(), "2026-02-03T09:15:00+01:00");
    }

    #[test]
    fn date_in_ut_does_not_swallow_next_field() {
        let (message, warnings) = read_raw(
            b"Date: Tue, 22 Jan 2002 14:35:28 UT\nSubject: Redacted\nFrom: a@example.org\n\n",
        );
        assert_eq!(message.subject.as_deref(), Some("Redacted"));
        assert_eq!(
            message.date.map(|date| date.to_rfc3339()).as_deref(),
            Some("2002-01-22T14:35:28+00:00")
        );
        assert!(
            warnings
                .iter()
                .all(|warning| !matches!(warning, Warning::InvalidDate { .. }))
        );
    }

    #[test]
    fn invalid_date_and_address_warn() {
        let (message, warnings) =
            read_raw(b"From: Whomever\nTo: undisclosed-recipients:;\nDate: Whenever\n\n");
        assert_eq!(message.from, None);
        assert_eq!(message.date, None);
        assert!(warnings.contains(&Warning::InvalidAddress {
            header: "From".into(),
            value: "Whomever".into()
        }));
        assert!(warnings.contains(&Warning::InvalidDate {
            value: "Whenever".into()
        }));
        assert!(!warnings.iter().any(
            |warning| matches!(warning, Warning::InvalidAddress { header, .. } if header == "To")
        ));
    }

    #[test]
    fn ids_and_return_path() {
        let (message, _) = read_raw(
            b"From: a@example.org\nMessage-ID: <x@example.org>\nIn-Reply-To: <p@example.org>\nReferences: <r1@example.org>\n <p@example.org>\nReturn-Path: <>\n\n",
        );
        assert_eq!(message.message_id.as_deref(), Some("x@example.org"));
        assert_eq!(message.in_reply_to, ["p@example.org"]);
        assert_eq!(message.references, ["r1@example.org", "p@example.org"]);
        assert_eq!(message.return_path, Some(crate::ReturnPath::Null));
    }
}
