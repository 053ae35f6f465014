//! HTML bodies: sanitising for display and converting to plain text.
//!
//! The full converters (ammonia for sanitising, html2text for text) build a DOM with
//! html5ever, whose tree builder takes time that grows with the square of the nesting depth:
//! 20,000 nested `<div>` took seconds. Before either runs, [`assess`] makes one linear scan
//! that measures the size and estimates the nesting depth. HTML over a limit skips both
//! converters: its text comes from [`extract_text`], a linear scan that strips tags, and no
//! sanitised HTML is offered.

use std::collections::HashSet;

/// Largest HTML body, in bytes, that goes through the full converters.
pub(crate) const MAX_HTML_BYTES: usize = 2 * 1024 * 1024;

/// Deepest estimated element nesting that goes through the full converters. Real mail
/// rarely nests more than a few dozen levels.
pub(crate) const MAX_HTML_DEPTH: usize = 1000;

/// Line width given to html2text; wide enough that it does not wrap ordinary paragraphs.
const TEXT_WIDTH: usize = 1000;

/// Elements without content, which never deepen the tree.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose end tag may be left out; the parser closes them on its own, so they are
/// not counted in the depth estimate.
const OPTIONAL_END_ELEMENTS: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody", "tfoot", "colgroup",
];

/// CSS properties kept in `style` attributes. None of them can load a URL.
const SAFE_STYLE_PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-collapse",
    "border-color",
    "border-left",
    "border-right",
    "border-spacing",
    "border-style",
    "border-top",
    "border-width",
    "color",
    "display",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "height",
    "line-height",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "text-align",
    "text-decoration",
    "vertical-align",
    "white-space",
    "width",
];

/// Reason HTML is not given to the full converters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TooComplex {
    Size(usize),
    Depth(usize),
}

impl std::fmt::Display for TooComplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TooComplex::Size(size) => {
                write!(f, "is {size} bytes, over the {MAX_HTML_BYTES}-byte limit")
            }
            TooComplex::Depth(depth) => write!(
                f,
                "nests about {depth} elements deep, over the limit of {MAX_HTML_DEPTH}"
            ),
        }
    }
}

/// Checks whether `html` is small and shallow enough for the full converters.
pub(crate) fn assess(html: &str) -> Result<(), TooComplex> {
    if html.len() > MAX_HTML_BYTES {
        return Err(TooComplex::Size(html.len()));
    }
    let depth = estimate_depth(html);
    if depth > MAX_HTML_DEPTH {
        return Err(TooComplex::Depth(depth));
    }
    Ok(())
}

/// Estimates the deepest element nesting by counting start and end tags, leaving out void
/// elements, elements with optional end tags, self-closing tags and comments.
fn estimate_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let mut depth: usize = 0;
    let mut deepest = 0;
    let mut index = 0;
    while let Some(offset) = bytes[index..].iter().position(|&byte| byte == b'<') {
        index += offset + 1;
        if bytes[index..].starts_with(b"!--") {
            match find(&bytes[index..], b"-->") {
                Some(end) => index += end + 3,
                None => break,
            }
            continue;
        }
        let closing = bytes.get(index) == Some(&b'/');
        let name_start = if closing { index + 1 } else { index };
        let name_end = bytes[name_start..]
            .iter()
            .position(|byte| !byte.is_ascii_alphanumeric())
            .map_or(bytes.len(), |end| name_start + end);
        if name_end == name_start {
            continue;
        }
        let name = html[name_start..name_end].to_ascii_lowercase();
        let tag_end = bytes[name_end..]
            .iter()
            .position(|&byte| byte == b'>')
            .map_or(bytes.len(), |end| name_end + end);
        index = tag_end.min(bytes.len());
        if VOID_ELEMENTS.contains(&name.as_str()) || OPTIONAL_END_ELEMENTS.contains(&name.as_str())
        {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if bytes.get(tag_end.saturating_sub(1)) != Some(&b'/') {
            depth += 1;
            deepest = deepest.max(depth);
        }
        if name == "script" || name == "style" {
            // Skip raw text up to the end tag so `<` inside scripts does not count.
            let end_tag = format!("</{name}");
            match find_ignore_case(&bytes[index..], end_tag.as_bytes()) {
                Some(end) => index += end,
                None => break,
            }
        }
    }
    deepest
}

/// Sanitises HTML for display. Scripts, styles, forms, event handlers and other active
/// content are removed. Links keep `http`, `https` and `mailto` targets and get
/// `rel="noopener noreferrer"`. Images keep only `cid:` sources, so inline images stay in
/// place and no remote image (a tracking pixel, say) is loaded. `style` attributes keep only
/// properties that cannot load a URL.
pub(crate) fn sanitize(html: &str) -> String {
    let schemes: HashSet<&str> = ["http", "https", "mailto", "cid"].into_iter().collect();
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(schemes)
        .add_generic_attributes(["style", "align", "dir"])
        .add_tag_attributes("img", ["width", "height", "border"])
        .add_tag_attributes(
            "table",
            ["bgcolor", "cellpadding", "cellspacing", "border", "width"],
        )
        .add_tag_attributes("td", ["bgcolor", "valign", "width", "colspan", "rowspan"])
        .add_tag_attributes("th", ["bgcolor", "valign", "width", "colspan", "rowspan"])
        .add_tag_attributes("tr", ["bgcolor", "valign"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tags(["font", "center"])
        .filter_style_properties(SAFE_STYLE_PROPERTIES.iter().copied().collect())
        .attribute_filter(|element, attribute, value| {
            if element == "img" && attribute == "src" {
                let is_cid = value
                    .get(..4)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("cid:"));
                return is_cid.then(|| value.into());
            }
            if attribute == "href" && value.trim_start().to_ascii_lowercase().starts_with("cid:") {
                return None;
            }
            Some(value.into())
        });
    builder.clean(html).to_string()
}

/// Converts HTML to plain text with html2text, falling back to [`extract_text`] if html2text
/// reports an error.
pub(crate) fn to_text(html: &str) -> String {
    match html2text::config::plain_no_decorate()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), TEXT_WIDTH)
    {
        Ok(text) => tidy_text(&text),
        Err(_) => extract_text(html),
    }
}

/// Extracts text from HTML of any size in one linear pass: drops comments, `script`, `style`
/// and `head` content and all tags, starts a new line at block elements and `<br>`, and
/// decodes the common character references.
pub(crate) fn extract_text(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut text = String::with_capacity(html.len().min(1 << 20));
    let mut index = 0;
    while index < bytes.len() {
        let Some(offset) = bytes[index..].iter().position(|&byte| byte == b'<') else {
            push_decoded(&mut text, &html[index..]);
            break;
        };
        push_decoded(&mut text, &html[index..index + offset]);
        index += offset + 1;

        if bytes[index..].starts_with(b"!--") {
            index = find(&bytes[index..], b"-->").map_or(bytes.len(), |end| index + end + 3);
            continue;
        }
        let closing = bytes.get(index) == Some(&b'/');
        let name_start = if closing { index + 1 } else { index };
        let name_end = bytes[name_start..]
            .iter()
            .position(|byte| !byte.is_ascii_alphanumeric())
            .map_or(bytes.len(), |end| name_start + end);
        let name = html[name_start..name_end].to_ascii_lowercase();
        if name.is_empty() && !closing && !bytes[index..].starts_with(b"!") {
            // A lone `<` in text, not a tag.
            text.push('<');
            continue;
        }
        index = bytes[name_end..]
            .iter()
            .position(|&byte| byte == b'>')
            .map_or(bytes.len(), |end| name_end + end + 1);

        if !closing && matches!(name.as_str(), "script" | "style" | "head" | "title") {
            let end_tag = format!("</{name}");
            index = find_ignore_case(&bytes[index..], end_tag.as_bytes())
                .map_or(bytes.len(), |end| index + end);
            continue;
        }
        if is_block(&name) {
            text.push('\n');
        }
    }
    tidy_text(&text)
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "br" | "p"
            | "div"
            | "tr"
            | "li"
            | "ul"
            | "ol"
            | "table"
            | "blockquote"
            | "pre"
            | "hr"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "dt"
            | "dd"
            | "section"
            | "article"
            | "header"
            | "footer"
    )
}

/// Appends text with character references decoded and runs of white space made one space.
fn push_decoded(out: &mut String, raw: &str) {
    let mut rest = raw;
    while !rest.is_empty() {
        let Some(amp) = rest.find('&') else {
            push_spaced(out, rest);
            return;
        };
        push_spaced(out, &rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|(_, character)| *character == ';')
            .map(|(position, _)| position);
        let decoded = end.and_then(|end| decode_reference(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((character, end)) => {
                if character.is_whitespace() {
                    push_spaced(out, " ");
                } else {
                    out.push(character);
                }
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
}

fn push_spaced(out: &mut String, text: &str) {
    for character in text.chars() {
        if character.is_whitespace() {
            if !out.ends_with(' ') && !out.ends_with('\n') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(character);
        }
    }
}

fn decode_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        _ => return None,
    })
}

/// Normalises converter output: `\n` line ends, trailing white space (including U+00A0)
/// removed from each line, at most one blank line in a row, no blank lines at the ends.
pub(crate) fn tidy_text(text: &str) -> String {
    let mut tidy = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !tidy.is_empty() {
            tidy.push('\n');
            if blank_run > 0 {
                tidy.push('\n');
            }
        }
        blank_run = 0;
        tidy.push_str(line);
    }
    tidy
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn sanitize_removes_scripts_and_handlers() {
        let clean = sanitize(
            "<p onclick=\"steal()\">Hi<script>alert(1)</script></p><iframe src=\"https://x.example\"></iframe>",
        );
        assert!(!clean.contains("script"));
        assert!(!clean.contains("onclick"));
        assert!(!clean.contains("iframe"));
        assert!(clean.contains("Hi"));
    }

    #[test]
    fn sanitize_keeps_cid_images_only() {
        let clean = sanitize(
            "<img src=\"cid:logo@example.org\" alt=\"logo\"><img src=\"https://tracker.example/p.gif\">",
        );
        assert!(clean.contains("src=\"cid:logo@example.org\""));
        assert!(!clean.contains("tracker.example"));
    }

    #[test]
    fn sanitize_keeps_links_with_noopener() {
        let clean =
            sanitize("<a href=\"https://example.org/kb\">KB</a><a href=\"javascript:x()\">bad</a>");
        assert!(clean.contains("href=\"https://example.org/kb\""));
        assert!(clean.contains("noopener"));
        assert!(!clean.contains("javascript"));
    }

    #[test]
    fn sanitize_filters_style_urls() {
        let clean = sanitize(
            "<p style=\"color: red; background-image: url(https://tracker.example/x)\">x</p><style>p{}</style>",
        );
        assert!(clean.contains("color"));
        assert!(!clean.contains("tracker.example"));
        assert!(!clean.contains("<style"));
    }

    #[test]
    fn to_text_keeps_paragraphs() {
        let text =
            to_text("<html><body><p>Hello,</p><p>the <b>printer</b> is down.</p></body></html>");
        assert_eq!(text, "Hello,\n\nthe printer is down.");
    }

    #[test]
    fn extract_text_handles_blocks_and_entities() {
        let text = extract_text(
            "<html><head><title>T</title><style>p{}</style></head><body><p>Fish &amp; chips&nbsp;&#233;</p><!-- c --><div>a &lt; b</div>x < y<script>if (a<b) {}</script></body></html>",
        );
        assert_eq!(text, "Fish & chips é\n\na < b\nx < y");
    }

    #[test]
    fn extract_text_unknown_entity_kept() {
        assert_eq!(extract_text("a &bogus; b & c"), "a &bogus; b & c");
    }

    #[test]
    fn depth_estimate_ignores_void_and_optional() {
        assert_eq!(
            estimate_depth("<div><p>a<p>b<br><img src=x><div></div></div>"),
            2
        );
        assert_eq!(estimate_depth("<div><span/></div><!-- <div><div> -->"), 1);
        assert_eq!(estimate_depth("<script>if (a <b) {}</script><div>"), 1);
    }

    #[test]
    fn assess_rejects_deep_and_large() {
        let deep = "<div>".repeat(MAX_HTML_DEPTH + 1);
        assert_eq!(assess(&deep), Err(TooComplex::Depth(MAX_HTML_DEPTH + 1)));
        let large = "a".repeat(MAX_HTML_BYTES + 1);
        assert_eq!(assess(&large), Err(TooComplex::Size(MAX_HTML_BYTES + 1)));
        assert_eq!(assess("<div><p>ok</p></div>"), Ok(()));
    }

    #[test]
    fn extract_text_is_linear_on_deep_nesting() {
        let depth = 200_000;
        let html = format!(
            "<p>Hello,</p>{}deep{}<p>Regards</p>",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        let started = Instant::now();
        let text = extract_text(&html);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(text.starts_with("Hello,"));
        assert!(text.ends_with("Regards"));
        assert!(text.contains("deep"));
    }

    #[test]
    fn tidy_text_collapses_blank_lines() {
        assert_eq!(tidy_text("\n\na  \n\u{a0}\n\n\nb\r\n\n"), "a\n\nb");
    }
}
