//! Threading helpers: record numbers in subjects, reply prefixes, plus-address tokens and
//! the order in which to try referenced message ids.

use crate::message::InboundMessage;

/// Reply and forward prefixes of mail clients in many languages, lower case. A prefix may
/// carry a counter (`Re[2]:`, `Re(2):`, `Re^2:`) and white space before its colon (French
/// clients write `Re :`).
const REPLY_PREFIXES: &[&str] = &[
    "re",
    "aw",
    "sv",
    "vs",
    "antw",
    "antwort",
    "rif",
    "r",
    "odp",
    "pd",
    "ynt",
    "ref",
    "réf",
    "atb",
    "vá",
    "απ",
    "σχετ",
    "ответ",
    "回复",
    "回覆",
    "答复",
    "답장",
    "返信",
    "fw",
    "fwd",
    "wg",
    "tr",
    "rv",
    "enc",
    "doorst",
    "vl",
    "vb",
    "i",
    "πρθ",
    "転送",
    "전달",
    "转发",
];

/// Maximum number of characters before a colon that are checked against
/// [`REPLY_PREFIXES`].
const MAX_PREFIX_CHARS: usize = 16;

/// Finds record numbers in `[PREFIX digits]` tags anywhere in `subject`, for the given
/// number prefixes (such as `INC`, `REQ`, `CHG`, `PRB`).
///
/// The prefix is matched without case and may be followed by `#`; white space inside the
/// brackets is allowed. Each number is returned as the prefix as given followed by the
/// digits as written (`[inc#0000042]` with prefix `INC` gives `INC0000042`), once, in the
/// order found.
pub fn subject_tags(subject: &str, prefixes: &[&str]) -> Vec<String> {
    let mut prefixes: Vec<&str> = prefixes.iter().copied().filter(|p| !p.is_empty()).collect();
    // Longer prefixes first, so `INCX` is tried before `INC`.
    prefixes.sort_by_key(|prefix| std::cmp::Reverse(prefix.len()));

    let bytes = subject.as_bytes();
    let mut tags: Vec<String> = Vec::new();
    for (open, _) in subject.match_indices('[') {
        let mut index = skip_spaces(bytes, open + 1);
        let Some(prefix) = prefixes.iter().find(|prefix| {
            bytes
                .get(index..index + prefix.len())
                .is_some_and(|candidate| candidate.eq_ignore_ascii_case(prefix.as_bytes()))
        }) else {
            continue;
        };
        index += prefix.len();
        if bytes.get(index) == Some(&b'#') {
            index += 1;
        }
        let digits_start = index;
        while bytes.get(index).is_some_and(u8::is_ascii_digit) {
            index += 1;
        }
        let digits = &subject[digits_start..index];
        if digits.is_empty() || digits.len() > 20 {
            continue;
        }
        if bytes.get(skip_spaces(bytes, index)) != Some(&b']') {
            continue;
        }
        let tag = format!("{prefix}{digits}");
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

fn skip_spaces(bytes: &[u8], mut index: usize) -> usize {
    while bytes.get(index) == Some(&b' ') {
        index += 1;
    }
    index
}

/// Removes leading reply and forward prefixes, stacked or not (`RE: AW: Fwd: Re[2]:`), in
/// the languages of [`REPLY_PREFIXES`], for showing a subject as a record title.
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject.trim();
    loop {
        let Some((colon, colon_length)) = rest
            .char_indices()
            .take(MAX_PREFIX_CHARS + 1)
            .find(|(_, character)| *character == ':' || *character == '：')
            .map(|(position, character)| (position, character.len_utf8()))
        else {
            return rest;
        };
        let candidate = strip_counter(rest[..colon].trim_end());
        if !REPLY_PREFIXES.contains(&candidate.to_lowercase().as_str()) {
            return rest;
        }
        rest = rest[colon + colon_length..].trim_start();
    }
}

/// Removes a reply counter such as `[2]`, `(2)` or `^2` from the end of a prefix.
fn strip_counter(prefix: &str) -> &str {
    let is_count =
        |count: &str| !count.is_empty() && count.bytes().all(|byte| byte.is_ascii_digit());
    if let Some((head, count)) = prefix.rsplit_once('^')
        && is_count(count)
    {
        return head;
    }
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = prefix.strip_suffix(close)
            && let Some((head, count)) = inner.rsplit_once(open)
            && is_count(count)
        {
            return head.trim_end();
        }
    }
    prefix
}

/// Reads the plus-token of an address sent to the `base` address: `support+t-abc123@example.org`
/// with base `support@example.org` gives `t-abc123`. Local part and domain are compared
/// without case; the token is returned as written. Angle brackets around `address` are
/// ignored.
pub fn reply_token(address: &str, base: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    let (base_local, base_domain) = base.trim().rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(base_domain) {
        return None;
    }
    let (head, token) = local.split_once('+')?;
    if !head.eq_ignore_ascii_case(base_local) || token.is_empty() {
        return None;
    }
    Some(token.to_string())
}

/// Returns the message ids to look up for the parent of a reply, most specific first:
/// `In-Reply-To`, then `References` from newest to oldest, without repeats.
pub fn parent_candidates(message: &InboundMessage) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for id in message
        .in_reply_to
        .iter()
        .chain(message.references.iter().rev())
    {
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIXES: &[&str] = &["INC", "REQ", "CHG", "PRB", "Ticket"];

    #[test]
    fn tag_after_localized_prefixes() {
        for prefix in [
            "RE:",
            "Re:",
            "AW:",
            "SV:",
            "VS:",
            "Antw:",
            "RIF:",
            "R:",
            "Odp:",
            "ΑΠ:",
            "回复:",
            "답장:",
            "Re[2]:",
            "RE: AW: FW:",
            "RE: RE: RE:",
        ] {
            let subject = format!("{prefix} [INC0000042] Printer on floor 3");
            assert_eq!(subject_tags(&subject, PREFIXES), ["INC0000042"], "{prefix}");
        }
    }

    #[test]
    fn tag_with_hash_and_case() {
        let tags = subject_tags("VS: [Ticket#2026020110000042] Tulostin ei toimi", PREFIXES);
        assert_eq!(tags, ["Ticket2026020110000042"]);
        assert_eq!(subject_tags("re: [inc#42]", PREFIXES), ["INC42"]);
        assert_eq!(
            subject_tags("[ CHG0000007 ] window", PREFIXES),
            ["CHG0000007"]
        );
    }

    #[test]
    fn several_tags_in_order() {
        let tags = subject_tags("[REQ0001] dup of [INC0002] and [REQ0001]", PREFIXES);
        assert_eq!(tags, ["REQ0001", "INC0002"]);
    }

    #[test]
    fn near_misses_are_not_tags() {
        for subject in [
            "INC0000042 without brackets",
            "[INC] no digits",
            "[INC0042x] trailing letter",
            "[XINC0042] other prefix",
            "[INC0042 unclosed",
            "[ABC0042] unknown prefix",
            "[INC123456789012345678901] too long",
        ] {
            assert!(subject_tags(subject, PREFIXES).is_empty(), "{subject}");
        }
    }

    #[test]
    fn tags_in_non_ascii_subject() {
        assert_eq!(
            subject_tags("回复: 【重要】[PRB0000003] 服务器", PREFIXES),
            ["PRB0000003"]
        );
    }

    #[test]
    fn strip_prefixes_for_display() {
        assert_eq!(strip_reply_prefixes("RE: AW: Fwd: Printer"), "Printer");
        assert_eq!(
            strip_reply_prefixes("Re[2]: Re(3): Re^2: Printer"),
            "Printer"
        );
        assert_eq!(strip_reply_prefixes("Re : Imprimante"), "Imprimante");
        assert_eq!(strip_reply_prefixes("回复：打印机"), "打印机");
        assert_eq!(strip_reply_prefixes("ΑΠ: Εκτυπωτής"), "Εκτυπωτής");
        assert_eq!(
            strip_reply_prefixes("SV: Spørsmål om faktura"),
            "Spørsmål om faktura"
        );
    }

    #[test]
    fn strip_keeps_other_colons() {
        assert_eq!(strip_reply_prefixes("Error: disk full"), "Error: disk full");
        assert_eq!(
            strip_reply_prefixes("Re: Error: disk full"),
            "Error: disk full"
        );
        assert_eq!(strip_reply_prefixes("Meeting at 10:30"), "Meeting at 10:30");
        assert_eq!(strip_reply_prefixes("Re:"), "");
        assert_eq!(strip_reply_prefixes(""), "");
    }

    #[test]
    fn plus_token() {
        let base = "support@example.org";
        assert_eq!(
            reply_token("support+t-abc123@example.org", base).as_deref(),
            Some("t-abc123")
        );
        assert_eq!(
            reply_token("<Support+T-ABC@Example.ORG>", base).as_deref(),
            Some("T-ABC")
        );
        assert_eq!(reply_token("support@example.org", base), None);
        assert_eq!(reply_token("support+@example.org", base), None);
        assert_eq!(reply_token("sales+t-1@example.org", base), None);
        assert_eq!(reply_token("support+t-1@example.net", base), None);
        assert_eq!(reply_token("not an address", base), None);
    }
}
