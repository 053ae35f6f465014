//! Turning bytes in a declared, missing or wrong charset into text.
//!
//! The declared label is used when `encoding_rs` or mail-parser supports it and the bytes
//! fit it. Otherwise
//! the text is decoded by detection: UTF-8 when the bytes are valid UTF-8, ISO-2022-JP when
//! 7-bit bytes carry its escape sequences, else the guess of `chardetng` (which falls back
//! to windows-1252). Every fallback is reported as a [`CharsetIssue`] so the caller can
//! record a warning that names the label.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, ISO_2022_JP, REPLACEMENT, UTF_8};

use crate::message::Warning;

/// Maximum number of bytes fed to the detector. It is enough for a reliable guess and
/// keeps a huge part from costing more than the decoding itself.
const DETECTION_SAMPLE: usize = 256 * 1024;

/// Text decoded from bytes, with the fallback that was needed, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub text: String,
    pub issue: Option<CharsetIssue>,
}

/// Reason the declared charset was not used as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CharsetIssue {
    /// No label was given and the bytes are not plain ASCII.
    Missing { used: &'static str },
    /// The label names no charset that `encoding_rs` or mail-parser supports.
    Unknown { label: String, used: &'static str },
    /// The bytes cannot be in the declared charset and decode cleanly in another one.
    Mismatch {
        declared: String,
        used: &'static str,
    },
    /// The bytes are invalid in the declared charset and no other charset fits better, so
    /// the invalid sequences became U+FFFD.
    Malformed { charset: &'static str },
}

impl CharsetIssue {
    /// Turns the issue into a message warning; `context` names the part or header.
    pub(crate) fn into_warning(self, context: String) -> Warning {
        match self {
            CharsetIssue::Missing { used } => Warning::CharsetMissing {
                context,
                used: used.to_string(),
            },
            CharsetIssue::Unknown { label, used } => Warning::CharsetUnknown {
                context,
                label,
                used: used.to_string(),
            },
            CharsetIssue::Mismatch { declared, used } => Warning::CharsetMismatch {
                context,
                declared,
                used: used.to_string(),
            },
            CharsetIssue::Malformed { charset } => Warning::MalformedText {
                context,
                charset: charset.to_string(),
            },
        }
    }
}

/// Decodes `bytes` that are labelled `label` (the `charset` parameter, or the charset of an
/// encoded word). Returns text for any input, because the last fallback, windows-1252,
/// maps every byte.
pub(crate) fn decode(bytes: &[u8], label: Option<&str>) -> Decoded {
    let label = label
        .map(|label| label.trim().trim_matches('"').trim())
        .filter(|label| !label.is_empty());
    let Some(label) = label else {
        return decode_unlabelled(bytes);
    };

    let lowered = label.to_ascii_lowercase();
    if is_seven_bit_label(&lowered) {
        if has_eight_bit(bytes) {
            let used = guess(bytes);
            return Decoded {
                text: decode_lossy(used, bytes),
                issue: Some(CharsetIssue::Mismatch {
                    declared: label.to_string(),
                    used: used.name(),
                }),
            };
        }
        if is_ascii_label(&lowered) && has_iso_2022_jp_escape(bytes) {
            return Decoded {
                text: decode_lossy(ISO_2022_JP, bytes),
                issue: Some(CharsetIssue::Mismatch {
                    declared: label.to_string(),
                    used: ISO_2022_JP.name(),
                }),
            };
        }
    }

    match Encoding::for_label(label.as_bytes()) {
        Some(encoding) if encoding != REPLACEMENT => decode_declared(encoding, label, bytes),
        _ => decode_unknown_label(label, bytes),
    }
}

/// Decodes bytes with no label: ASCII as it is, anything else by detection.
fn decode_unlabelled(bytes: &[u8]) -> Decoded {
    if !has_eight_bit(bytes) && !has_iso_2022_jp_escape(bytes) {
        return Decoded {
            text: decode_lossy(UTF_8, bytes),
            issue: None,
        };
    }
    let used = guess(bytes);
    Decoded {
        text: decode_lossy(used, bytes),
        issue: Some(CharsetIssue::Missing { used: used.name() }),
    }
}

fn decode_declared(encoding: &'static Encoding, label: &str, bytes: &[u8]) -> Decoded {
    let (text, had_errors) = encoding.decode_with_bom_removal(bytes);
    if !had_errors {
        return Decoded {
            text: text.into_owned(),
            issue: None,
        };
    }

    let alternative = guess(bytes);
    if alternative != encoding {
        let (alternative_text, alternative_errors) = alternative.decode_without_bom_handling(bytes);
        if !alternative_errors {
            return Decoded {
                text: alternative_text.into_owned(),
                issue: Some(CharsetIssue::Mismatch {
                    declared: label.to_string(),
                    used: alternative.name(),
                }),
            };
        }
    }
    Decoded {
        text: text.into_owned(),
        issue: Some(CharsetIssue::Malformed {
            charset: encoding.name(),
        }),
    }
}

fn decode_unknown_label(label: &str, bytes: &[u8]) -> Decoded {
    // mail-parser has converters for a few labels that the WHATWG list lacks (UTF-7, IBM850).
    // Labels that the WHATWG list maps to its replacement encoding (ISO-2022-KR, HZ) are not
    // handed on, because mail-parser would turn them into one U+FFFD too.
    let is_replacement = Encoding::for_label(label.as_bytes()) == Some(REPLACEMENT);
    if !is_replacement
        && let Some(converter) =
            mail_parser::decoders::charsets::map::charset_decoder(label.as_bytes())
    {
        return Decoded {
            text: converter(bytes),
            issue: None,
        };
    }
    let used = guess(bytes);
    Decoded {
        text: decode_lossy(used, bytes),
        issue: Some(CharsetIssue::Unknown {
            label: label.to_string(),
            used: used.name(),
        }),
    }
}

/// Guesses the charset of unlabelled or mislabelled bytes.
pub(crate) fn guess(bytes: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(bytes).is_ok() {
        if !has_eight_bit(bytes) && has_iso_2022_jp_escape(bytes) {
            return ISO_2022_JP;
        }
        return UTF_8;
    }
    let sample = &bytes[..bytes.len().min(DETECTION_SAMPLE)];
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(sample, sample.len() == bytes.len());
    detector.guess(None, Utf8Detection::Deny)
}

fn decode_lossy(encoding: &'static Encoding, bytes: &[u8]) -> String {
    encoding.decode_with_bom_removal(bytes).0.into_owned()
}

fn has_eight_bit(bytes: &[u8]) -> bool {
    bytes.iter().any(|&byte| byte >= 0x80)
}

/// Returns whether the bytes contain an ISO-2022-JP designation: `ESC $ B`, `ESC $ @` or `ESC ( J`.
/// `ESC ( B` alone (back to ASCII) is not enough, because it changes nothing in ASCII text.
pub(crate) fn has_iso_2022_jp_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|window| matches!(window, [0x1b, b'$', b'B' | b'@'] | [0x1b, b'(', b'J']))
}

/// Labels of charsets that only ever use bytes below 0x80.
fn is_seven_bit_label(lowered: &str) -> bool {
    is_ascii_label(lowered)
        || lowered.starts_with("iso-2022-")
        || lowered.starts_with("csiso2022")
        || matches!(
            lowered,
            "utf-7" | "utf7" | "unicode-1-1-utf-7" | "hz-gb-2312" | "x-utf-7"
        )
}

fn is_ascii_label(lowered: &str) -> bool {
    matches!(
        lowered,
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" | "csascii" | "7bit"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const JIS_LINE: &[u8] = b"\x1b$B$*@$OC$K$J$C$F$*$j$^$9!#\x1b(B";

    #[test]
    fn declared_latin1() {
        let decoded = decode(b"Caf\xe9", Some("iso-8859-1"));
        assert_eq!(decoded.text, "Café");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn quoted_label_is_accepted() {
        let decoded = decode("Grüße".as_bytes(), Some("\"UTF-8\""));
        assert_eq!(decoded.text, "Grüße");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn missing_label_ascii_has_no_issue() {
        let decoded = decode(b"plain text", None);
        assert_eq!(decoded.text, "plain text");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn missing_label_with_jis_escapes() {
        let decoded = decode(JIS_LINE, None);
        assert_eq!(decoded.text, "お世話になっております。");
        assert_eq!(
            decoded.issue,
            Some(CharsetIssue::Missing {
                used: "ISO-2022-JP"
            })
        );
    }

    #[test]
    fn us_ascii_label_with_jis_escapes() {
        let decoded = decode(JIS_LINE, Some("us-ascii"));
        assert_eq!(decoded.text, "お世話になっております。");
        assert!(!decoded.text.contains('\u{1b}'));
    }

    #[test]
    fn iso_2022_jp_label_with_utf8_bytes() {
        let decoded = decode("プリンターが動きません".as_bytes(), Some("iso-2022-jp"));
        assert_eq!(decoded.text, "プリンターが動きません");
        assert_eq!(
            decoded.issue,
            Some(CharsetIssue::Mismatch {
                declared: "iso-2022-jp".into(),
                used: "UTF-8"
            })
        );
    }

    #[test]
    fn us_ascii_label_with_latin1_bytes() {
        let decoded = decode(b"R\xe9sum\xe9 envoy\xe9", Some("us-ascii"));
        assert_eq!(decoded.text, "Résumé envoyé");
        assert!(matches!(
            decoded.issue,
            Some(CharsetIssue::Mismatch { ref declared, .. }) if declared == "us-ascii"
        ));
    }

    #[test]
    fn utf8_label_with_latin1_bytes() {
        let decoded = decode(b"Stra\xdfe und Gr\xfc\xdfe", Some("utf-8"));
        assert_eq!(decoded.text, "Straße und Grüße");
        assert!(matches!(
            decoded.issue,
            Some(CharsetIssue::Mismatch { ref declared, used: "windows-1252" }) if declared == "utf-8"
        ));
    }

    #[test]
    fn unknown_label_utf8_bytes() {
        let text = "Hei, fakturaen for januar mangler – kan dere sende den på nytt?";
        let decoded = decode(text.as_bytes(), Some("unknown-8bit"));
        assert_eq!(decoded.text, text);
        assert_eq!(
            decoded.issue,
            Some(CharsetIssue::Unknown {
                label: "unknown-8bit".into(),
                used: "UTF-8"
            })
        );
    }

    #[test]
    fn unknown_label_single_byte() {
        let decoded = decode(b"Sp\xf8rsm\xe5l", Some("x-invented-charset"));
        assert_eq!(decoded.text, "Spørsmål");
        assert!(matches!(
            decoded.issue,
            Some(CharsetIssue::Unknown { ref label, .. }) if label == "x-invented-charset"
        ));
    }

    #[test]
    fn windows_1258_is_known() {
        let decoded = decode(b"Sp\xf8rsm\xe5l", Some("windows-1258"));
        assert_eq!(decoded.text, "Spørsmål");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn replacement_labels_fall_back() {
        let decoded = decode(b"plain", Some("iso-2022-kr"));
        assert_eq!(decoded.text, "plain");
        assert!(matches!(decoded.issue, Some(CharsetIssue::Unknown { .. })));
    }

    #[test]
    fn utf7_through_mail_parser() {
        let decoded = decode(b"Hi Mom -+Jjo--!", Some("utf-7"));
        assert_eq!(decoded.text, "Hi Mom -\u{263A}-!");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn shift_jis_declared() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("こんにちは");
        let decoded = decode(&bytes, Some("Shift_JIS"));
        assert_eq!(decoded.text, "こんにちは");
        assert_eq!(decoded.issue, None);
    }

    #[test]
    fn utf8_bom_removed() {
        let decoded = decode(b"\xef\xbb\xbfhello", Some("utf-8"));
        assert_eq!(decoded.text, "hello");
    }

    #[test]
    fn issue_becomes_warning_naming_label() {
        let warning = CharsetIssue::Unknown {
            label: "x-weird".into(),
            used: "UTF-8",
        }
        .into_warning("part 1".into());
        assert!(warning.to_string().contains("x-weird"));
    }
}
