//! Decoding of header values from their raw bytes: RFC 2047 encoded words, message ids and
//! `Return-Path`. Parameters such as `filename` are in [`crate::params`].
//!
//! mail-parser decodes each encoded word on its own, which breaks a character whose bytes a
//! client split over two words, and it reads unknown charsets as UTF-8. These functions
//! work on the raw bytes instead, so they can join such words and use the charset fallback
//! of [`crate::charset`].

use crate::charset::{self, CharsetIssue};
use crate::message::ReturnPath;
use crate::transfer::{decode_base64, decode_q_word};

/// Decoded header text and the charset fallbacks it needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderText {
    pub text: String,
    pub issues: Vec<CharsetIssue>,
}

/// A run of raw header bytes: plain text or one encoded word, already transfer-decoded.
enum Segment<'a> {
    Text(&'a [u8]),
    Word {
        charset: String,
        encoding: u8,
        bytes: Vec<u8>,
    },
}

/// Decodes an unstructured header value (such as `Subject`) from its raw bytes.
///
/// Folding is removed and runs of white space become one space. Encoded words separated
/// only by white space are joined with that space dropped (RFC 2047 section 6.2). Adjacent
/// words with the same charset and the same encoding letter are joined as bytes before the
/// charset is applied, so a character split across two words comes out whole. Raw 8-bit
/// bytes (RFC 6532 UTF-8, or a legacy charset) are decoded by detection.
pub(crate) fn decode_text(raw: &[u8]) -> HeaderText {
    let segments = split_encoded_words(raw);
    let mut text = String::with_capacity(raw.len());
    let mut issues = Vec::new();

    let mut index = 0;
    while index < segments.len() {
        match &segments[index] {
            Segment::Text(bytes) => {
                let is_gap_between_words = bytes.iter().all(u8::is_ascii_whitespace)
                    && index > 0
                    && matches!(segments.get(index + 1), Some(Segment::Word { .. }))
                    && matches!(segments[index - 1], Segment::Word { .. });
                if is_gap_between_words {
                    // Dropped, as RFC 2047 section 6.2 requires.
                } else if let Ok(utf8) = std::str::from_utf8(bytes) {
                    // Plain ASCII, or UTF-8 as RFC 6532 allows in headers.
                    text.push_str(utf8);
                } else {
                    let decoded = charset::decode(bytes, None);
                    text.push_str(&decoded.text);
                    issues.extend(decoded.issue);
                }
                index += 1;
            }
            Segment::Word {
                charset: label,
                encoding,
                bytes,
            } => {
                let mut joined = bytes.clone();
                index += 1;
                // Join the following words of the same charset and encoding, skipping the
                // white space between them.
                loop {
                    let mut next = index;
                    if let Some(Segment::Text(gap)) = segments.get(next)
                        && gap.iter().all(u8::is_ascii_whitespace)
                    {
                        next += 1;
                    }
                    match segments.get(next) {
                        Some(Segment::Word {
                            charset: next_label,
                            encoding: next_encoding,
                            bytes: next_bytes,
                        }) if next_label.eq_ignore_ascii_case(label)
                            && next_encoding == encoding =>
                        {
                            joined.extend_from_slice(next_bytes);
                            index = next + 1;
                        }
                        _ => break,
                    }
                }
                let decoded = charset::decode(&joined, Some(label));
                text.push_str(&decoded.text);
                issues.extend(decoded.issue);
            }
        }
    }

    HeaderText {
        text: collapse_white_space(&text),
        issues,
    }
}

/// Splits unfolded header bytes into plain text and encoded words.
fn split_encoded_words(raw: &[u8]) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut index = 0;
    while index + 1 < raw.len() {
        if raw[index] == b'='
            && raw[index + 1] == b'?'
            && let Some((segment, length)) = parse_encoded_word(&raw[index..])
        {
            if text_start < index {
                segments.push(Segment::Text(&raw[text_start..index]));
            }
            segments.push(segment);
            index += length;
            text_start = index;
            continue;
        }
        index += 1;
    }
    if text_start < raw.len() {
        segments.push(Segment::Text(&raw[text_start..]));
    }
    segments
}

/// Parses `=?charset?E?text?=` at the start of `input` and returns the word and its length.
/// The charset may carry an RFC 2231 language suffix (`utf-8*de`), which is dropped.
fn parse_encoded_word(input: &[u8]) -> Option<(Segment<'_>, usize)> {
    let rest = input.strip_prefix(b"=?")?;
    let charset_end = rest.iter().position(|&byte| byte == b'?')?;
    let charset = &rest[..charset_end];
    if charset.is_empty()
        || charset.len() > 64
        || charset
            .iter()
            .any(|&byte| byte.is_ascii_whitespace() || byte.is_ascii_control() || byte >= 0x80)
    {
        return None;
    }
    let rest = &rest[charset_end + 1..];
    let encoding = rest.first()?.to_ascii_uppercase();
    if !matches!(encoding, b'B' | b'Q') || rest.get(1) != Some(&b'?') {
        return None;
    }
    let payload_area = &rest[2..];
    let payload_end = payload_area.windows(2).position(|pair| pair == b"?=")?;
    let payload = &payload_area[..payload_end];
    if payload.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        return None;
    }

    let bytes = if encoding == b'B' {
        let decoded = decode_base64(payload);
        if decoded.damaged {
            return None;
        }
        decoded.bytes
    } else {
        decode_q_word(payload)
    };
    let charset = String::from_utf8_lossy(charset);
    let charset = charset.split('*').next().unwrap_or_default().to_string();
    let length = 2 + charset_end + 1 + 2 + payload_end + 2;
    Some((
        Segment::Word {
            charset,
            encoding,
            bytes,
        },
        length,
    ))
}

/// Replaces every run of white space and control characters with one space and trims.
fn collapse_white_space(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    let mut pending_space = false;
    for character in text.chars() {
        if character.is_whitespace() || character.is_control() {
            pending_space = !collapsed.is_empty();
        } else {
            if pending_space {
                collapsed.push(' ');
                pending_space = false;
            }
            collapsed.push(character);
        }
    }
    collapsed
}

/// One header field as written: its name and its raw value, folding included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawField<'a> {
    pub name: String,
    pub value: &'a [u8],
}

/// Splits the header block at the start of `raw` into fields, up to the first empty line.
/// A line that starts with white space continues the field before it; a line without a
/// colon is skipped.
///
/// The top-level fields are read with this rather than from mail-parser's header offsets,
/// because mail-parser 0.11.9 lets a `Date` ending in the zone `UT` run into the next line
/// when lines end in LF, which loses the field after it.
pub(crate) fn split_header_block(raw: &[u8]) -> Vec<RawField<'_>> {
    let mut fields = Vec::new();
    let mut current: Option<(String, usize, usize)> = None;
    let mut offset = 0;
    for line in raw.split_inclusive(|&byte| byte == b'\n') {
        let line_start = offset;
        offset += line.len();
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        if content[0] == b' ' || content[0] == b'\t' {
            if let Some((_, _, end)) = current.as_mut() {
                *end = line_start + content.len();
            }
            continue;
        }
        if let Some((name, start, end)) = current.take() {
            fields.push(RawField {
                name,
                value: &raw[start..end],
            });
        }
        if let Some(colon) = content.iter().position(|&byte| byte == b':') {
            let name = String::from_utf8_lossy(&content[..colon])
                .trim()
                .to_string();
            current = Some((name, line_start + colon + 1, line_start + content.len()));
        }
    }
    if let Some((name, start, end)) = current {
        fields.push(RawField {
            name,
            value: &raw[start..end],
        });
    }
    fields
}

/// Extracts message ids from `Message-ID`, `In-Reply-To` or `References`, without angle
/// brackets. Ids in brackets are taken as they are, with any folding white space inside
/// removed. A value with no brackets is split on white space and commas, and only tokens
/// with an `@` are kept. Duplicates are dropped, first occurrence kept.
pub(crate) fn message_ids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut ids: Vec<String> = Vec::new();
    let mut push = |id: String| {
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    };

    if text.contains('<') {
        let mut rest = text.as_ref();
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else {
                break;
            };
            push(
                after[..end]
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect(),
            );
            rest = &after[end + 1..];
        }
    } else {
        for token in text.split(|c: char| c.is_whitespace() || c == ',') {
            if token.contains('@') {
                push(token.to_string());
            }
        }
    }
    ids
}

/// Reads a `Return-Path` value: `<>` is the null path, otherwise the address inside the
/// brackets (or the whole trimmed value when there are none).
pub(crate) fn return_path(raw: &[u8]) -> Option<ReturnPath> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let inner = match (text.find('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => &text[start + 1..end],
        _ => text,
    };
    let inner = inner.trim();
    if inner.is_empty() {
        Some(ReturnPath::Null)
    } else {
        Some(ReturnPath::Address(inner.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_base64_words_join_as_bytes() {
        let raw = b"=?utf-8?B?U3TDtnJ1bmcgaW0gTmV0endlcms6IELDvHJvcsM=?=\r\n =?utf-8?B?pHVtZSBvaG5lIFp1Z3JpZmY=?=";
        let decoded = decode_text(raw);
        assert_eq!(decoded.text, "Störung im Netzwerk: Büroräume ohne Zugriff");
        assert!(decoded.issues.is_empty());
    }

    #[test]
    fn split_q_words_join_as_bytes() {
        let raw = b"=?UTF-8?Q?U=C5=BEklausa_d=C4?=\n =?UTF-8?Q?=97l_spausdintuvo_gedimo?=";
        assert_eq!(decode_text(raw).text, "Užklausa dėl spausdintuvo gedimo");
    }

    #[test]
    fn words_with_different_charsets_decode_separately() {
        let raw = b"=?iso-8859-1?Q?Caf=E9?= =?utf-8?Q?_cr=C3=A8me?=";
        assert_eq!(decode_text(raw).text, "Café crème");
    }

    #[test]
    fn words_with_different_encodings_are_not_joined() {
        // The Q word contains the first byte of "ä" and the B word the second: joining across
        // encoding letters is not allowed, so each half becomes U+FFFD.
        let raw = b"=?utf-8?Q?=C3?= =?utf-8?B?pA==?=";
        let decoded = decode_text(raw);
        assert_ne!(decoded.text, "ä");
    }

    #[test]
    fn text_between_words_is_kept() {
        let raw = b"Re: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= aus =?utf-8?Q?K=C3=B6ln?=";
        assert_eq!(decode_text(raw).text, "Re: Grüße aus Köln");
    }

    #[test]
    fn windows_1258_word() {
        let decoded = decode_text(b"=?windows-1258?Q?SV=3A_Sp=F8rsm=E5l_om_faktura?=");
        assert_eq!(decoded.text, "SV: Spørsmål om faktura");
        assert!(decoded.issues.is_empty());
    }

    #[test]
    fn unknown_word_charset_falls_back() {
        let decoded = decode_text(b"=?x-unknown?Q?Sp=C3=B8rsm=C3=A5l?=");
        assert_eq!(decoded.text, "Spørsmål");
        assert!(matches!(
            decoded.issues.as_slice(),
            [CharsetIssue::Unknown { label, .. }] if label == "x-unknown"
        ));
    }

    #[test]
    fn iso_2022_jp_word() {
        let decoded = decode_text(b"=?ISO-2022-JP?B?GyRCJVclaiVzJT8hPDhOPmMbKEI=?=");
        assert_eq!(decoded.text, "プリンター故障");
    }

    #[test]
    fn language_suffix_dropped() {
        assert_eq!(decode_text(b"=?utf-8*de?Q?Gr=C3=BC=C3=9Fe?=").text, "Grüße");
    }

    #[test]
    fn raw_utf8_header() {
        let decoded = decode_text("Bestätigung für Zugang".as_bytes());
        assert_eq!(decoded.text, "Bestätigung für Zugang");
        assert!(decoded.issues.is_empty());
    }

    #[test]
    fn raw_latin1_header_is_guessed() {
        let decoded = decode_text(b"R\xe9servation confirm\xe9e");
        assert_eq!(decoded.text, "Réservation confirmée");
        assert!(matches!(
            decoded.issues.as_slice(),
            [CharsetIssue::Missing { .. }]
        ));
    }

    #[test]
    fn broken_word_stays_literal() {
        assert_eq!(
            decode_text(b"=?utf-8?X?abc?= end").text,
            "=?utf-8?X?abc?= end"
        );
        assert_eq!(decode_text(b"=?utf-8?B?!!!?=").text, "=?utf-8?B?!!!?=");
        assert_eq!(decode_text(b"=?utf-8?Q?open").text, "=?utf-8?Q?open");
    }

    #[test]
    fn folding_and_tabs_collapse() {
        assert_eq!(
            decode_text(b" Hello\r\n\tworld  again ").text,
            "Hello world again"
        );
    }

    #[test]
    fn header_block_fields() {
        let raw = b"Date: Tue, 22 Jan 2002 14:35:28 UT\nSubject: Folded\r\n\tsubject\r\nno colon line\nX-Empty:\n\nBody: not a field\n";
        let fields = split_header_block(raw);
        let names: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
        assert_eq!(names, ["Date", "Subject", "X-Empty"]);
        assert_eq!(fields[0].value, b" Tue, 22 Jan 2002 14:35:28 UT");
        assert_eq!(fields[1].value, b" Folded\r\n\tsubject");
        assert_eq!(fields[2].value, b"");
    }

    #[test]
    fn header_block_without_body() {
        let fields = split_header_block(b"From: a@example.org");
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].value, b" a@example.org");
    }

    #[test]
    fn message_ids_in_brackets() {
        let ids = message_ids(b"<a@example.org> <b@example.org>\r\n <a@example.org>");
        assert_eq!(ids, ["a@example.org", "b@example.org"]);
    }

    #[test]
    fn message_ids_without_brackets() {
        assert_eq!(
            message_ids(b"a@example.org, junk b@x"),
            ["a@example.org", "b@x"]
        );
        assert!(message_ids(b"   ").is_empty());
        assert!(message_ids(b"<>").is_empty());
    }

    #[test]
    fn return_path_null_and_address() {
        assert_eq!(return_path(b" <>"), Some(ReturnPath::Null));
        assert_eq!(return_path(b"< >"), Some(ReturnPath::Null));
        assert_eq!(
            return_path(b"<bounce@example.org>"),
            Some(ReturnPath::Address("bounce@example.org".into()))
        );
        assert_eq!(
            return_path(b"bounce@example.org"),
            Some(ReturnPath::Address("bounce@example.org".into()))
        );
        assert_eq!(return_path(b""), None);
    }
}
