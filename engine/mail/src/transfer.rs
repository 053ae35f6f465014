//! Lenient Content-Transfer-Encoding decoders for base64 and quoted-printable.
//!
//! Both keep going over damage that real mail contains (stray characters, missing padding,
//! `=` signs that start no escape) and report whether they had to, so the caller can record a
//! warning instead of losing the part.

/// Bytes decoded from a transfer encoding, and whether the input broke the encoding's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransferDecoded {
    pub bytes: Vec<u8>,
    pub damaged: bool,
}

/// Decodes base64, skipping white space, stopping at the first padding `=` and treating any
/// other character outside the alphabet as damage that is skipped.
pub(crate) fn decode_base64(input: &[u8]) -> TransferDecoded {
    let mut bytes = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut damaged = false;
    let mut buffer: u32 = 0;
    let mut bits = 0u32;

    for &byte in input {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                damaged = true;
                continue;
            }
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }

    // Six or more leftover bits mean a group of one character: no whole byte is in it.
    if bits >= 6 {
        damaged = true;
    }
    TransferDecoded { bytes, damaged }
}

/// Decodes quoted-printable: soft line breaks are removed, `=XX` becomes one byte, and an `=`
/// that starts no valid escape is kept as it is. Trailing white space on a line is dropped,
/// as RFC 2045 section 6.7 rule 3 requires.
pub(crate) fn decode_quoted_printable(input: &[u8]) -> TransferDecoded {
    let mut bytes = Vec::with_capacity(input.len());
    let mut damaged = false;
    let mut lines = input.split(|&byte| byte == b'\n').peekable();

    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let end = line
            .iter()
            .rposition(|&byte| byte != b' ' && byte != b'\t')
            .map_or(0, |position| position + 1);
        let line = &line[..end];

        let mut soft_break = false;
        let mut index = 0;
        while index < line.len() {
            let byte = line[index];
            if byte != b'=' {
                bytes.push(byte);
                index += 1;
                continue;
            }
            if index + 1 == line.len() {
                soft_break = true;
                break;
            }
            match (
                hex_value(line.get(index + 1)),
                hex_value(line.get(index + 2)),
            ) {
                (Some(high), Some(low)) => {
                    bytes.push(high << 4 | low);
                    index += 3;
                }
                _ => {
                    damaged = true;
                    bytes.push(b'=');
                    index += 1;
                }
            }
        }

        if !soft_break && lines.peek().is_some() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    TransferDecoded { bytes, damaged }
}

/// Decodes the `Q` form of an RFC 2047 encoded word: like quoted-printable, but `_` is a space.
pub(crate) fn decode_q_word(input: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'_' => {
                bytes.push(b' ');
                index += 1;
            }
            b'=' => match (
                hex_value(input.get(index + 1)),
                hex_value(input.get(index + 2)),
            ) {
                (Some(high), Some(low)) => {
                    bytes.push(high << 4 | low);
                    index += 3;
                }
                _ => {
                    bytes.push(b'=');
                    index += 1;
                }
            },
            byte => {
                bytes.push(byte);
                index += 1;
            }
        }
    }
    bytes
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    match byte? {
        byte @ b'0'..=b'9' => Some(byte - b'0'),
        byte @ b'a'..=b'f' => Some(byte - b'a' + 10),
        byte @ b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_with_line_breaks() {
        let decoded = decode_base64(b"SGVsbG8s\r\nIHdvcmxk\r\nIQ==\r\n");
        assert_eq!(decoded.bytes, b"Hello, world!");
        assert!(!decoded.damaged);
    }

    #[test]
    fn base64_without_padding() {
        let decoded = decode_base64(b"SGk");
        assert_eq!(decoded.bytes, b"Hi");
        assert!(!decoded.damaged);
    }

    #[test]
    fn base64_skips_stray_characters() {
        let decoded = decode_base64(b"SG*Vs#bG8=");
        assert_eq!(decoded.bytes, b"Hello");
        assert!(decoded.damaged);
    }

    #[test]
    fn base64_single_leftover_character() {
        let decoded = decode_base64(b"SGVsbG8gS");
        assert_eq!(decoded.bytes, b"Hello ");
        assert!(decoded.damaged);
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes() {
        let decoded = decode_quoted_printable(b"Caf=C3=A9 au =\r\nlait   \r\nsecond line");
        assert_eq!(decoded.bytes, "Café au lait\r\nsecond line".as_bytes());
        assert!(!decoded.damaged);
    }

    #[test]
    fn quoted_printable_keeps_bad_escapes() {
        let decoded = decode_quoted_printable(b"50% =off =ZZ");
        assert_eq!(decoded.bytes, b"50% =off =ZZ");
        assert!(decoded.damaged);
    }

    #[test]
    fn quoted_printable_lf_only() {
        let decoded = decode_quoted_printable(b"a=\nb\nc\n");
        assert_eq!(decoded.bytes, b"ab\r\nc\r\n");
    }

    #[test]
    fn q_word_underscore_is_space() {
        assert_eq!(decode_q_word(b"Sp=F8rsm=E5l_om"), b"Sp\xf8rsm\xe5l om");
        assert_eq!(decode_q_word(b"a=2"), b"a=2");
    }
}
