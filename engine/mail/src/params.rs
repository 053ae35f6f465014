//! Parameters of `Content-Type` and `Content-Disposition`, such as `filename`, decoded
//! from their raw bytes.

use crate::charset;
use crate::headers::{HeaderText, decode_text};

/// Returns the decoded value of parameter `name` (lower case) in a `Content-Type` or
/// `Content-Disposition` value, such as `filename`.
///
/// Understands RFC 2231 (`name*=charset'lang'%XX`, continuations `name*0*=`, `name*1=`),
/// quoted strings with backslash escapes, RFC 2047 words inside a value (not allowed by the
/// RFC but sent by Outlook and others) and raw 8-bit values.
pub(crate) fn parameter(raw: &[u8], name: &str) -> Option<HeaderText> {
    let parameters = split_parameters(raw);

    let mut sections: Vec<(u32, bool, &[u8])> = Vec::new();
    let mut plain = None;
    for (attribute, value) in &parameters {
        if attribute.eq_ignore_ascii_case(name) {
            plain.get_or_insert(value.as_slice());
            continue;
        }
        let Some(suffix) = strip_prefix_ignore_case(attribute, name) else {
            continue;
        };
        let Some(suffix) = suffix.strip_prefix('*') else {
            continue;
        };
        if suffix.is_empty() {
            sections.push((0, true, value));
            continue;
        }
        let (number, extended) = match suffix.strip_suffix('*') {
            Some(number) => (number, true),
            None => (suffix, false),
        };
        if let Ok(number) = number.parse::<u32>() {
            sections.push((number, extended, value));
        }
    }

    if !sections.is_empty() {
        return Some(join_rfc2231_sections(sections));
    }
    plain.map(decode_parameter_value)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Joins RFC 2231 sections in order, percent-decoding the extended ones, and decodes the
/// bytes with the charset named by the first extended section.
fn join_rfc2231_sections(mut sections: Vec<(u32, bool, &[u8])>) -> HeaderText {
    sections.sort_by_key(|(number, _, _)| *number);
    sections.dedup_by_key(|(number, _, _)| *number);

    let mut charset_label = None;
    let mut bytes = Vec::new();
    let mut any_extended = false;
    for (position, (_, extended, value)) in sections.iter().enumerate() {
        if !*extended {
            bytes.extend_from_slice(value);
            continue;
        }
        any_extended = true;
        let mut value: &[u8] = value;
        if position == 0 {
            let mut pieces = value.splitn(3, |&byte| byte == b'\'');
            if let (Some(charset), Some(_language), Some(rest)) =
                (pieces.next(), pieces.next(), pieces.next())
            {
                charset_label = Some(String::from_utf8_lossy(charset).into_owned());
                value = rest;
            }
        }
        bytes.extend(percent_decode(value));
    }

    if !any_extended {
        return decode_parameter_value(&bytes);
    }
    let decoded = charset::decode(&bytes, charset_label.as_deref());
    HeaderText {
        text: decoded.text,
        issues: decoded.issue.into_iter().collect(),
    }
}

fn decode_parameter_value(value: &[u8]) -> HeaderText {
    if value.windows(2).any(|pair| pair == b"=?") {
        return decode_text(value);
    }
    if let Ok(text) = std::str::from_utf8(value) {
        // Plain ASCII, or UTF-8 as RFC 6532 allows in headers.
        return HeaderText {
            text: text.to_string(),
            issues: Vec::new(),
        };
    }
    let decoded = charset::decode(value, None);
    HeaderText {
        text: decoded.text,
        issues: decoded.issue.into_iter().collect(),
    }
}

fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        if value[index] == b'%'
            && let (Some(high), Some(low)) = (
                value
                    .get(index + 1)
                    .and_then(|byte| (*byte as char).to_digit(16)),
                value
                    .get(index + 2)
                    .and_then(|byte| (*byte as char).to_digit(16)),
            )
        {
            bytes.push((high * 16 + low) as u8);
            index += 3;
            continue;
        }
        bytes.push(value[index]);
        index += 1;
    }
    bytes
}

/// Splits a parameterised header value into `(attribute, value)` pairs; the leading media
/// type or disposition is skipped. Quoted values lose their quotes and backslash escapes.
fn split_parameters(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let unfolded: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&byte| byte != b'\r' && byte != b'\n')
        .collect();
    let mut parameters = Vec::new();
    let mut index = skip_to_semicolon(&unfolded, 0);

    while index < unfolded.len() {
        // Skip the `;` and white space before the attribute.
        while index < unfolded.len()
            && (unfolded[index] == b';' || unfolded[index].is_ascii_whitespace())
        {
            index += 1;
        }
        let name_start = index;
        while index < unfolded.len() && !matches!(unfolded[index], b'=' | b';') {
            index += 1;
        }
        let attribute = String::from_utf8_lossy(&unfolded[name_start..index])
            .trim()
            .to_ascii_lowercase();
        if index >= unfolded.len() || unfolded[index] == b';' {
            continue;
        }
        index += 1;
        while index < unfolded.len() && unfolded[index].is_ascii_whitespace() {
            index += 1;
        }

        let mut value = Vec::new();
        if unfolded.get(index) == Some(&b'"') {
            index += 1;
            while index < unfolded.len() && unfolded[index] != b'"' {
                // A backslash escapes only `"` and `\`: old clients wrote Windows paths
                // such as `C:\TEMP\a.png` into quoted names without escaping them.
                if unfolded[index] == b'\\' && matches!(unfolded.get(index + 1), Some(b'"' | b'\\'))
                {
                    index += 1;
                }
                value.push(unfolded[index]);
                index += 1;
            }
            // Step over the closing quote before looking for the next `;`.
            index = skip_to_semicolon(&unfolded, (index + 1).min(unfolded.len()));
        } else {
            let end = skip_to_semicolon(&unfolded, index);
            value.extend_from_slice(unfolded[index..end].trim_ascii());
            index = end;
        }
        if !attribute.is_empty() {
            parameters.push((attribute, value));
        }
    }
    parameters
}

/// Returns the index of the next `;` at or after `start` that is outside a quoted string,
/// or the length of `bytes`.
fn skip_to_semicolon(bytes: &[u8], start: usize) -> usize {
    let mut in_quotes = false;
    let mut index = start;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if in_quotes => index += 1,
            b'"' => in_quotes = !in_quotes,
            b';' if !in_quotes => return index,
            _ => {}
        }
        index += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_word_in_quoted_filename() {
        let raw = b"attachment; filename=\"=?UTF-8?Q?Relev=C3=A9_d=C3=A9cembre.pdf?=\"";
        let value = parameter(raw, "filename").expect("filename");
        assert_eq!(value.text, "Relevé décembre.pdf");
    }

    #[test]
    fn raw_utf8_filename() {
        let raw = "attachment; filename=\"Facture_été.pdf\"".as_bytes();
        assert_eq!(
            parameter(raw, "filename").expect("filename").text,
            "Facture_été.pdf"
        );
    }

    #[test]
    fn rfc2231_continuations() {
        let raw = b"attachment;\r\n\tfilename*0*=utf-8''%E3%81%8B%E3%81%8D;\r\n\tfilename*1*=%E3%81%8F.txt";
        assert_eq!(
            parameter(raw, "filename").expect("filename").text,
            "かきく.txt"
        );
    }

    #[test]
    fn rfc2231_single_extended_value() {
        let raw = b"attachment; filename*=iso-8859-1'fr'R%E9sum%E9.pdf";
        assert_eq!(
            parameter(raw, "filename").expect("filename").text,
            "Résumé.pdf"
        );
    }

    #[test]
    fn rfc2231_plain_continuations() {
        let raw = b"application/pdf; name*0=\"long file \"; name*1=\"name.pdf\"";
        assert_eq!(
            parameter(raw, "name").expect("name").text,
            "long file name.pdf"
        );
    }

    #[test]
    fn extended_form_wins_over_plain() {
        let raw = b"attachment; filename=\"fallback.txt\"; filename*=utf-8''r%C3%A9el.txt";
        assert_eq!(
            parameter(raw, "filename").expect("filename").text,
            "réel.txt"
        );
    }

    #[test]
    fn quoted_value_with_semicolon_and_escape() {
        let raw = b"attachment; filename=\"a;b \\\"c\\\".txt\"; size=10";
        assert_eq!(
            parameter(raw, "filename").expect("filename").text,
            "a;b \"c\".txt"
        );
        assert_eq!(parameter(raw, "size").expect("size").text, "10");
    }

    #[test]
    fn backslash_before_other_characters_is_kept() {
        let raw = b"image/png; name=\"C:\\TEMP\\nsmail.png\"";
        assert_eq!(
            parameter(raw, "name").expect("name").text,
            "C:\\TEMP\\nsmail.png"
        );
        let raw = b"image/png; name=\"a\\\\b.png\"";
        assert_eq!(parameter(raw, "name").expect("name").text, "a\\b.png");
    }

    #[test]
    fn unquoted_value_and_missing_parameter() {
        let raw = b"text/plain; name=report.txt";
        assert_eq!(parameter(raw, "name").expect("name").text, "report.txt");
        assert_eq!(parameter(raw, "filename"), None);
        assert_eq!(parameter(b"attachment", "filename"), None);
    }
}
