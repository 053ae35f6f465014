//! Attachments, inline parts, attached messages and TNEF containers, and the checks of the
//! multipart structure.

use mail_parser::{MessagePart, PartType};

use crate::body;
use crate::headers;
use crate::message::{Attachment, InboundMessage, NestedMessage, TnefFile, Warning};
use crate::params;
use crate::parse::{Context, MAX_NESTING, parse_at_depth, sha256_hex};
use crate::tnef;

/// How many multipart parts are checked for their closing delimiter. Each check scans the
/// rest of the message, so the limit keeps a message built from thousands of multiparts
/// from costing quadratic time.
const MAX_CHECKED_MULTIPARTS: usize = 64;

/// Media types of Outlook's TNEF container.
const TNEF_TYPES: &[&str] = &["application/ms-tnef", "application/vnd.ms-tnef"];

/// Fills `message.attachments` and `message.nested` from the parts mail-parser lists as
/// attachments.
pub(crate) fn read(context: &mut Context<'_, '_>, message: &mut InboundMessage) {
    for &id in &context.message.attachments {
        let Some(part) = context.part(id) else {
            continue;
        };
        let media_type = context.media_type(part).unwrap_or_default();
        if media_type.starts_with("multipart/") && !matches!(part.body, PartType::Multipart(_)) {
            // A multipart whose boundary never occurs: its content is text for the body, not
            // a file. `check_structure` records the warning.
            let text = body::stray_text(context, id);
            message.text = body::join_texts(&[std::mem::take(&mut message.text), text]);
            continue;
        }
        if is_displaced_body_text(context, part, &media_type) {
            // mail-parser lists a text part whose boundary or encoding is damaged as an
            // attachment, but without a file name it is the body the sender wrote.
            let text = body::stray_text(context, id);
            message.text = body::join_texts(&[std::mem::take(&mut message.text), text]);
            continue;
        }
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(_) => match nested_message(context, id) {
                Some(nested) => message.nested.push(nested),
                None => message.attachments.push(attachment(context, id, part)),
            },
            _ => message.attachments.push(attachment(context, id, part)),
        }
    }
}

/// Returns whether `part` is plain text that mail-parser moved out of the body only because its
/// content or closing boundary is damaged: it has no file name and is not marked as an
/// attachment.
fn is_displaced_body_text(
    context: &Context<'_, '_>,
    part: &MessagePart<'_>,
    media_type: &str,
) -> bool {
    if !part.is_encoding_problem
        || !matches!(part.body, PartType::Text(_))
        || !(media_type.is_empty() || media_type == "text/plain")
    {
        return false;
    }
    let has_name = |header: &str, parameter: &str| {
        context
            .raw_header(part, header)
            .and_then(|raw| params::parameter(raw, parameter))
            .is_some()
    };
    let is_attachment = context
        .raw_header(part, "content-disposition")
        .is_some_and(|raw| {
            String::from_utf8_lossy(raw)
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("attachment")
        });
    !is_attachment
        && !has_name("content-disposition", "filename")
        && !has_name("content-type", "name")
}

/// Builds the attachment for `part`, whose id is `id`.
fn attachment(context: &mut Context<'_, '_>, id: u32, part: &MessagePart<'_>) -> Attachment {
    let section = context.section(id);
    let data = context.part_bytes(id);

    let content_type = context.media_type(part).unwrap_or_else(|| {
        if matches!(part.body, PartType::Message(_)) {
            "message/rfc822".to_string()
        } else {
            "text/plain".to_string()
        }
    });
    let content_id = context
        .raw_header(part, "content-id")
        .and_then(|raw| headers::message_ids(raw).into_iter().next());
    let disposition = context.raw_header(part, "content-disposition").map(|raw| {
        let text = String::from_utf8_lossy(raw);
        text.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let inline = match disposition.as_deref() {
        Some("inline") => true,
        Some("attachment") => false,
        _ => content_id.is_some(),
    };
    let filename = filename(context, part, &section);

    let is_tnef = TNEF_TYPES.contains(&content_type.as_str())
        || filename
            .as_deref()
            .is_some_and(|name| name.eq_ignore_ascii_case("winmail.dat"));
    let tnef = is_tnef.then(|| tnef_files(context, &section, &data));

    Attachment {
        part: section,
        filename,
        content_type,
        size: data.len(),
        sha256: sha256_hex(&data),
        content_id,
        inline,
        data,
        tnef,
    }
}

/// Reads the file name from `Content-Disposition: filename` or else `Content-Type: name`,
/// and removes directory parts and control characters from it.
fn filename(
    context: &mut Context<'_, '_>,
    part: &MessagePart<'_>,
    section: &str,
) -> Option<String> {
    let disposition = context.raw_header(part, "content-disposition");
    let content_type = context.raw_header(part, "content-type");
    let decoded = disposition
        .and_then(|raw| params::parameter(raw, "filename"))
        .or_else(|| content_type.and_then(|raw| params::parameter(raw, "name")))?;
    for issue in decoded.issues {
        let warning = issue.into_warning(format!("file name in part {section}"));
        context.warnings.push(warning);
    }

    let original = decoded.text;
    let used = safe_filename(&original);
    if used.as_deref() != Some(original.as_str()) && !original.trim().is_empty() {
        context.warnings.push(Warning::FilenameChanged {
            part: section.to_string(),
            original,
            used: used.clone().unwrap_or_default(),
        });
    }
    used
}

/// Keeps the last path component, without control characters and surrounding white space.
/// Returns `None` when nothing usable is left.
pub(crate) fn safe_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|character| !character.is_control())
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_string())
}

fn tnef_files(context: &mut Context<'_, '_>, section: &str, data: &[u8]) -> Vec<TnefFile> {
    match tnef::read(data) {
        Ok(entries) => entries
            .into_iter()
            .map(|entry| TnefFile {
                filename: entry.filename.as_deref().and_then(safe_filename),
                size: entry.data.len(),
                sha256: sha256_hex(&entry.data),
                data: entry.data,
            })
            .collect(),
        Err(error) => {
            context.warnings.push(Warning::UnreadableTnef {
                part: section.to_string(),
                reason: error.to_string(),
            });
            Vec::new()
        }
    }
}

/// Parses the `message/rfc822` part `id`. Returns `None`, with a warning, when it is nested
/// too deeply or is not a message; the caller then keeps it as an attachment.
fn nested_message(context: &mut Context<'_, '_>, id: u32) -> Option<NestedMessage> {
    let section = context.section(id);
    if context.depth >= MAX_NESTING {
        context.warnings.push(Warning::UnreadableNestedMessage {
            part: section,
            reason: format!("more than {MAX_NESTING} levels of attached messages"),
        });
        return None;
    }
    let raw = context.part_bytes(id);
    match parse_at_depth(&raw, context.depth + 1) {
        Ok(message) => Some(NestedMessage {
            part: section,
            message: Box::new(message),
            raw,
        }),
        Err(error) => {
            context.warnings.push(Warning::UnreadableNestedMessage {
                part: section,
                reason: error.to_string(),
            });
            None
        }
    }
}

/// Records warnings for broken multipart structure: a multipart without a boundary, one
/// whose boundary never occurs, one with no parts, and one without its closing delimiter.
pub(crate) fn check_structure(context: &mut Context<'_, '_>) {
    let multiparts = context
        .message
        .parts
        .iter()
        .enumerate()
        .filter(|(_, part)| {
            context
                .media_type(part)
                .is_some_and(|media_type| media_type.starts_with("multipart/"))
        });
    let multiparts: Vec<_> = multiparts.take(MAX_CHECKED_MULTIPARTS).collect();
    for (index, part) in multiparts {
        let id = index as u32;
        let media_type = context.media_type(part).unwrap_or_default();
        let boundary = context.content_type_parameter(part, "boundary");
        let detail = match (&part.body, boundary) {
            (_, None) => Some(format!("{media_type} has no boundary parameter")),
            (PartType::Multipart(children), Some(boundary)) => {
                let closing = format!("--{boundary}--");
                let body = context
                    .raw()
                    .get(part.offset_body as usize..)
                    .unwrap_or_default();
                if children.is_empty() {
                    Some(format!("{media_type} has no body parts"))
                } else if !contains(body, closing.as_bytes()) {
                    Some(format!(
                        "closing delimiter {closing:?} is missing, so the message may be cut off"
                    ))
                } else {
                    None
                }
            }
            (_, Some(boundary)) => Some(format!(
                "boundary {boundary:?} does not occur in the body, so it was read as one text part"
            )),
        };
        if let Some(detail) = detail {
            context.warnings.push(Warning::BrokenMultipart {
                part: context.section(id),
                detail,
            });
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_filename_strips_paths_and_controls() {
        assert_eq!(safe_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_filename("C:\\Users\\a\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            safe_filename("bad\u{0}name\r\n.txt").as_deref(),
            Some("badname.txt")
        );
        assert_eq!(
            safe_filename("  Relevé.pdf ").as_deref(),
            Some("Relevé.pdf")
        );
        assert_eq!(safe_filename("dir/"), None);
        assert_eq!(safe_filename(".."), None);
    }

    #[test]
    fn contains_finds_needle() {
        assert!(contains(b"abc--b--\r\n", b"--b--"));
        assert!(!contains(b"abc--b-\r\n", b"--b--"));
        assert!(!contains(b"abc", b""));
    }
}
