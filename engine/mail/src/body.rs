//! The body of a message: its plain text and its sanitised HTML.
//!
//! The text comes from the parts mail-parser selects as the text body: text/plain parts as
//! they are (with `format=flowed` lines joined), and HTML parts converted to text where a
//! message or a `multipart/alternative` has no plain text. The HTML view is the sanitised
//! HTML body parts; plain text parts mixed in between them are escaped.

use std::collections::{HashMap, HashSet};

use mail_parser::PartType;

use crate::charset;
use crate::html;
use crate::message::{InboundMessage, Warning};
use crate::parse::Context;

/// Text decoded from body parts, kept so that a part used for both the text and the HTML
/// view is decoded, and warned about, once.
#[derive(Default)]
struct Decoded {
    texts: HashMap<u32, String>,
    too_complex: HashSet<u32>,
}

/// Fills `message.text` and `message.html`.
pub(crate) fn read(context: &mut Context<'_, '_>, message: &mut InboundMessage) {
    let mut decoded = Decoded::default();

    let mut texts = Vec::new();
    for &id in &context.message.text_body {
        let Some(part) = context.part(id) else {
            continue;
        };
        match part.body {
            PartType::Text(_) => texts.push(part_text(context, &mut decoded, id)),
            PartType::Html(_) => {
                let source = part_text(context, &mut decoded, id);
                texts.push(html_to_text(context, &mut decoded, id, &source));
            }
            _ => {}
        }
    }
    if texts.iter().all(|text| text.trim().is_empty()) {
        // No plain text: mail-parser leaves HTML out of the text body of some structures
        // (HTML with inline images in multipart/related, for one), so convert it here.
        for &id in &context.message.html_body {
            if let Some(part) = context.part(id)
                && matches!(part.body, PartType::Html(_))
            {
                let source = part_text(context, &mut decoded, id);
                texts.push(html_to_text(context, &mut decoded, id, &source));
            }
        }
    }
    message.text = join_texts(&texts);

    let mut view = String::new();
    let mut has_html = false;
    let mut complete = true;
    for &id in &context.message.html_body {
        let Some(part) = context.part(id) else {
            continue;
        };
        match part.body {
            PartType::Html(_) => {
                has_html = true;
                let source = part_text(context, &mut decoded, id);
                if check_complexity(context, &mut decoded, id, &source) {
                    view.push_str(&html::sanitize(&source));
                } else {
                    complete = false;
                }
            }
            PartType::Text(_) => {
                let source = part_text(context, &mut decoded, id);
                view.push_str("<div style=\"white-space: pre-wrap\">");
                view.push_str(&escape_html(&source));
                view.push_str("</div>");
            }
            _ => {}
        }
    }
    message.html = (has_html && complete).then_some(view);
}

/// Decodes a text part: transfer encoding, then charset, then `format=flowed`, with `\n`
/// line ends.
fn part_text(context: &mut Context<'_, '_>, decoded: &mut Decoded, id: u32) -> String {
    if let Some(text) = decoded.texts.get(&id) {
        return text.clone();
    }
    let Some(part) = context.part(id) else {
        return String::new();
    };
    let bytes = context.part_bytes(id);
    let label = context.content_type_parameter(part, "charset");
    let result = charset::decode(&bytes, label.as_deref());
    if let Some(issue) = result.issue {
        let warning = issue.into_warning(format!("part {}", context.section(id)));
        context.warnings.push(warning);
    }
    let mut text = normalize_line_ends(&result.text);

    let is_flowed = context
        .content_type_parameter(part, "format")
        .is_some_and(|format| format.eq_ignore_ascii_case("flowed"));
    if is_flowed {
        let delete_space = context
            .content_type_parameter(part, "delsp")
            .is_some_and(|delsp| delsp.eq_ignore_ascii_case("yes"));
        text = unflow(&text, delete_space);
    }
    decoded.texts.insert(id, text.clone());
    text
}

/// Returns whether the HTML of part `id` may go through the full converters, and records a
/// warning the first time it may not.
fn check_complexity(
    context: &mut Context<'_, '_>,
    decoded: &mut Decoded,
    id: u32,
    source: &str,
) -> bool {
    if decoded.too_complex.contains(&id) {
        return false;
    }
    match html::assess(source) {
        Ok(()) => true,
        Err(reason) => {
            decoded.too_complex.insert(id);
            context.warnings.push(Warning::HtmlFallback {
                part: context.section(id),
                reason: reason.to_string(),
            });
            false
        }
    }
}

fn html_to_text(
    context: &mut Context<'_, '_>,
    decoded: &mut Decoded,
    id: u32,
    source: &str,
) -> String {
    if check_complexity(context, decoded, id, source) {
        html::to_text(source)
    } else {
        html::extract_text(source)
    }
}

/// Joins body texts with a blank line between them, leaving out empty ones and blank lines
/// at the start and end.
pub(crate) fn join_texts(texts: &[String]) -> String {
    let text = texts
        .iter()
        .map(|text| text.trim_end())
        .filter(|text| !text.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    text.trim_start_matches(['\n', '\r']).to_string()
}

/// Decodes the content of a part that is not in the text body but contains text for it,
/// such as a multipart whose boundary never occurs.
pub(crate) fn stray_text(context: &mut Context<'_, '_>, id: u32) -> String {
    part_text(context, &mut Decoded::default(), id)
}

fn normalize_line_ends(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Joins the soft line breaks of `format=flowed` text (RFC 3676): a line ending in a space
/// continues on the next line of the same quote depth. Space-stuffing is removed, and with
/// `delsp=yes` the space before a soft break is dropped too. The signature separator `-- `
/// is never joined.
fn unflow(text: &str, delete_space: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open_depth: Option<usize> = None;
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        let depth = line.bytes().take_while(|&byte| byte == b'>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);

        if open_depth.is_some_and(|open| open != depth) {
            out.push('\n');
            open_depth = None;
        }
        if open_depth.is_none() {
            for _ in 0..depth {
                out.push('>');
            }
            if depth > 0 {
                out.push(' ');
            }
        }

        let is_soft_break = content.ends_with(' ') && content != "-- ";
        if is_soft_break {
            let kept = if delete_space {
                &content[..content.len() - 1]
            } else {
                content
            };
            out.push_str(kept);
            open_depth = Some(depth);
        } else {
            out.push_str(content);
            out.push('\n');
            open_depth = None;
        }
    }
    if out.ends_with('\n') && !text.ends_with('\n') {
        out.pop();
    }
    out
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflow_joins_soft_breaks() {
        let text = "This is a long \nparagraph here.\n\nNext.";
        assert_eq!(
            unflow(text, false),
            "This is a long paragraph here.\n\nNext."
        );
    }

    #[test]
    fn unflow_delsp_drops_space() {
        assert_eq!(unflow("abc \ndef", true), "abcdef");
    }

    #[test]
    fn unflow_respects_quote_depth_and_signature() {
        let text = "> quoted \n> more\nown\n-- \nSig";
        assert_eq!(unflow(text, false), "> quoted more\nown\n-- \nSig");
        let text = "> quoted \nplain";
        assert_eq!(unflow(text, false), "> quoted \nplain");
    }

    #[test]
    fn unflow_removes_space_stuffing() {
        assert_eq!(unflow("  From here\n", false), " From here\n");
    }

    #[test]
    fn line_ends_normalised() {
        assert_eq!(normalize_line_ends("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn escape_html_special_characters() {
        assert_eq!(
            escape_html("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
