//! The entry point: checks that the input is a message, runs mail-parser for the MIME
//! structure and reads the top-level headers. The body, the attachments and the report
//! part are read by the sibling modules through [`Context`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{HeaderName, HeaderValue, MessageParser, MessagePart, PartType};
use sha2::{Digest, Sha256};

use crate::message::{InboundMessage, Warning};
use crate::transfer::{decode_base64, decode_quoted_printable};
use crate::{ParseError, attachments, body, fields, headers, params, report};

/// Largest input accepted. mail-parser keeps offsets as `u32`, so longer input cannot be
/// addressed.
pub const MAX_MESSAGE_BYTES: usize = u32::MAX as usize;

/// Number of `message/rfc822` levels below the top message that are parsed. Deeper ones
/// are kept as attachments.
pub(crate) const MAX_NESTING: usize = 3;

/// Header fields of RFC 5322 and RFC 2045 of which a message has at least one.
const MESSAGE_FIELDS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "return-path",
    "received",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "delivered-to",
];

/// Parses one raw RFC 5322 message (LF or CRLF line ends) into an [`InboundMessage`].
///
/// Does not panic: a panic inside the MIME parser is caught and returned as
/// [`ParseError::ParserFailure`] (with the default `panic = "unwind"`). Damage inside a message is repaired where possible and
/// recorded in [`InboundMessage::warnings`]; only input that is not a message at all is an
/// error.
pub fn parse(raw: &[u8]) -> Result<InboundMessage, ParseError> {
    match catch_unwind(AssertUnwindSafe(|| parse_at_depth(raw, 0))) {
        Ok(result) => result,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(ParseError::ParserFailure { detail })
        }
    }
}

/// Parses a message that sits `depth` `message/rfc822` levels deep.
pub(crate) fn parse_at_depth(raw: &[u8], depth: usize) -> Result<InboundMessage, ParseError> {
    let mut warnings = Vec::new();
    let start = check_start(raw, &mut warnings)?;

    let parsed = MessageParser::default()
        .parse(&raw[start..])
        .ok_or_else(|| ParseError::NoHeader {
            first_line: first_line(&raw[start..]),
        })?;
    let fields = headers::split_header_block(&raw[start..]);
    let has_message_field = fields.iter().any(|field| {
        MESSAGE_FIELDS
            .iter()
            .any(|name| field.name.eq_ignore_ascii_case(name))
    });
    if !has_message_field {
        let found: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
        return Err(ParseError::NoMessageField {
            found: found.join(", "),
        });
    }

    let mut message = fields::read(&fields, &mut warnings);
    let mut context = Context::new(&parsed, depth, warnings);
    body::read(&mut context, &mut message);
    attachments::read(&mut context, &mut message);
    message.report = report::read(&mut context);
    attachments::check_structure(&mut context);

    message.raw_sha256 = sha256_hex(raw);
    message.raw_size = raw.len();
    let mut warnings = context.warnings;
    // A part read twice (as report and as attachment, say) reports its damage once.
    let mut seen = Vec::with_capacity(warnings.len());
    warnings.retain(|warning| {
        let is_new = !seen.contains(warning);
        if is_new {
            seen.push(warning.clone());
        }
        is_new
    });
    message.warnings = warnings;
    Ok(message)
}

/// Checks that `raw` starts like a message and returns where its header starts: after
/// leading blank lines and an mbox `From ` line, if any.
fn check_start(raw: &[u8], warnings: &mut Vec<Warning>) -> Result<usize, ParseError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    // mail-parser skips leading white space too, so a header found after it is read.
    let mut start = raw
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .ok_or(ParseError::Empty)?;

    if raw[start..].starts_with(b"From ") {
        let line_end = raw[start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(raw.len(), |end| start + end + 1);
        warnings.push(Warning::MboxLineSkipped);
        start = line_end;
    }
    if !starts_with_field(&raw[start..]) {
        return Err(ParseError::NoHeader {
            first_line: first_line(&raw[start..]),
        });
    }
    Ok(start)
}

/// Returns whether `bytes` begin with `name:`, where the name is printable ASCII without a colon,
/// optionally followed by white space before the colon (RFC 5322 obsolete syntax).
fn starts_with_field(bytes: &[u8]) -> bool {
    let name_length = bytes
        .iter()
        .take_while(|&&byte| (b'!'..=b'~').contains(&byte) && byte != b':')
        .count();
    if name_length == 0 {
        return false;
    }
    let rest = bytes[name_length..].trim_ascii_start();
    let spaces_only = bytes[name_length..bytes.len() - rest.len()]
        .iter()
        .all(|&byte| byte == b' ' || byte == b'\t');
    spaces_only && rest.first() == Some(&b':')
}

/// Returns the first line of `bytes` for error messages, shortened and with control
/// characters escaped.
fn first_line(bytes: &[u8]) -> String {
    let line = bytes
        .split(|&byte| byte == b'\n')
        .next()
        .unwrap_or_default();
    let line = &line[..line.len().min(60)];
    String::from_utf8_lossy(line).escape_debug().to_string()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// State shared by the modules that read a parsed message: the message, its raw bytes, the
/// MIME part numbers and the warnings found so far.
pub(crate) struct Context<'m, 'x> {
    pub message: &'m mail_parser::Message<'x>,
    pub depth: usize,
    pub warnings: Vec<Warning>,
    sections: Vec<String>,
}

impl<'m, 'x> Context<'m, 'x> {
    fn new(message: &'m mail_parser::Message<'x>, depth: usize, warnings: Vec<Warning>) -> Self {
        let mut sections = vec![String::new(); message.parts.len()];
        number_sections(message, 0, "", &mut sections);
        if let Some(root) = sections.first_mut()
            && root.is_empty()
        {
            *root = "1".to_string();
        }
        Context {
            message,
            depth,
            warnings,
            sections,
        }
    }

    /// Returns the raw bytes that part and header offsets refer to.
    pub fn raw(&self) -> &'m [u8] {
        &self.message.raw_message
    }

    pub fn part(&self, id: u32) -> Option<&'m MessagePart<'x>> {
        self.message.parts.get(id as usize)
    }

    /// Returns the IMAP-style part number of part `id`, such as `2.1`.
    pub fn section(&self, id: u32) -> String {
        match self.sections.get(id as usize) {
            Some(section) if !section.is_empty() => section.clone(),
            _ => format!("#{id}"),
        }
    }

    /// Returns the raw value bytes of the first header called `name` (any case) in `part`.
    pub fn raw_header(&self, part: &MessagePart<'_>, name: &str) -> Option<&'m [u8]> {
        let header = part
            .headers
            .iter()
            .find(|header| header.name.as_str().eq_ignore_ascii_case(name))?;
        self.raw()
            .get(header.offset_start as usize..header.offset_end as usize)
    }

    /// Returns the lower-case `type/subtype` of `part`, or `None` without a `Content-Type`.
    pub fn media_type(&self, part: &MessagePart<'_>) -> Option<String> {
        let content_type = part.headers.iter().find_map(|header| match &header.value {
            HeaderValue::ContentType(content_type) if header.name == HeaderName::ContentType => {
                Some(content_type)
            }
            _ => None,
        })?;
        let subtype = content_type.subtype().unwrap_or_default();
        Some(format!("{}/{}", content_type.ctype(), subtype).to_ascii_lowercase())
    }

    /// Returns a parameter of `part`'s `Content-Type`, such as `charset` or `boundary`.
    pub fn content_type_parameter(&mut self, part: &MessagePart<'_>, name: &str) -> Option<String> {
        let raw = self.raw_header(part, "content-type")?;
        Some(params::parameter(raw, name)?.text)
    }

    /// Decodes the content of part `id`, removing its transfer encoding. Damaged base64 or
    /// quoted-printable is decoded as far as it goes and recorded as a warning.
    pub fn part_bytes(&mut self, id: u32) -> Vec<u8> {
        let Some(part) = self.part(id) else {
            return Vec::new();
        };
        let start = part.offset_body as usize;
        let end = (part.offset_end as usize).max(start);
        let content = self.raw().get(start..end).unwrap_or_default();
        let encoding = self
            .raw_header(part, "content-transfer-encoding")
            .map(|raw| String::from_utf8_lossy(raw).trim().to_ascii_lowercase())
            .unwrap_or_default();
        let decoded = match encoding.as_str() {
            "base64" => decode_base64(content),
            "quoted-printable" => decode_quoted_printable(content),
            _ => return content.to_vec(),
        };
        if decoded.damaged {
            self.warnings.push(Warning::DamagedTransferEncoding {
                part: self.section(id),
                encoding,
            });
        }
        decoded.bytes
    }
}

/// Numbers the children of multipart `id` as IMAP does: `1`, `2`, then `2.1` and so on.
fn number_sections(
    message: &mail_parser::Message<'_>,
    id: u32,
    prefix: &str,
    sections: &mut [String],
) {
    let Some(PartType::Multipart(children)) = message.parts.get(id as usize).map(|part| &part.body)
    else {
        return;
    };
    for (index, &child) in children.iter().enumerate() {
        // A part id can only appear once in a well-formed tree; skipping repeats also
        // guards against a cycle.
        let Some(slot) = sections.get_mut(child as usize) else {
            continue;
        };
        if !slot.is_empty() || child == id {
            continue;
        }
        *slot = if prefix.is_empty() {
            (index + 1).to_string()
        } else {
            format!("{prefix}.{}", index + 1)
        };
        let child_prefix = slot.clone();
        number_sections(message, child, &child_prefix, sections);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_detection() {
        assert!(starts_with_field(b"From: a@example.org"));
        assert!(starts_with_field(b"Subject : obsolete spacing"));
        assert!(starts_with_field(b"X-Custom-Header:value"));
        assert!(!starts_with_field(b"Hello world"));
        assert!(!starts_with_field(b": no name"));
        assert!(!starts_with_field(b"\x89PNG\r\n"));
        assert!(!starts_with_field(b"Name With Space: x"));
    }

    #[test]
    fn leading_blank_lines_and_mbox_line() {
        let mut warnings = Vec::new();
        let raw =
            b"\r\n\nFrom sender@example.org Mon Feb  9 08:00:00 2026\nFrom: a@example.org\n\nbody";
        let start = check_start(raw, &mut warnings).expect("message");
        assert!(raw[start..].starts_with(b"From: a@example.org"));
        assert_eq!(warnings, [Warning::MboxLineSkipped]);
    }

    #[test]
    fn empty_and_blank_input() {
        let mut warnings = Vec::new();
        assert_eq!(check_start(b"", &mut warnings), Err(ParseError::Empty));
        assert_eq!(
            check_start(b" \r\n\t\n", &mut warnings),
            Err(ParseError::Empty)
        );
    }

    #[test]
    fn first_line_is_escaped_and_short() {
        let line = first_line(
            b"\x00\x01binary\x7f and a very long tail that goes on and on and on and on\nsecond",
        );
        assert!(line.starts_with("\\0\\u{1}binary"));
        assert!(!line.contains("second"));
    }
}
