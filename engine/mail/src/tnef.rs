//! A small reader for Outlook's TNEF container (`winmail.dat`, `application/ms-tnef`), as
//! laid out in Microsoft's MS-OXTNEF specification.
//!
//! It lists the attached files: each `attAttachRendData` attribute starts one, whose name
//! comes from the MAPI property `PR_ATTACH_LONG_FILENAME` when present, else from
//! `attAttachTitle`, and whose content is `attAttachData`. Message-level attributes (the
//! RTF body, recipients) are skipped. Every read is bounds-checked, so damaged input gives a
//! [`TnefError`] and never a panic.

use std::fmt;

use crate::charset;

const SIGNATURE: u32 = 0x223E_9F78;
const LEVEL_MESSAGE: u8 = 0x01;
const LEVEL_ATTACHMENT: u8 = 0x02;

const ATT_OEM_CODEPAGE: u32 = 0x0006_9007;
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;
const ATT_ATTACHMENT: u32 = 0x0006_9005;

const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const MULTI_VALUE_FLAG: u16 = 0x1000;

/// One file found in a TNEF container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TnefEntry {
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// Error for a TNEF container that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TnefError {
    BadSignature(Option<u32>),
    Truncated { offset: usize },
    UnknownLevel { offset: usize, level: u8 },
}

impl fmt::Display for TnefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TnefError::BadSignature(Some(found)) => {
                write!(f, "signature is {found:#010x}, expected {SIGNATURE:#010x}")
            }
            TnefError::BadSignature(None) => write!(f, "shorter than the TNEF signature"),
            TnefError::Truncated { offset } => {
                write!(f, "attribute at byte {offset} is cut off")
            }
            TnefError::UnknownLevel { offset, level } => {
                write!(
                    f,
                    "attribute at byte {offset} has unknown level {level:#04x}"
                )
            }
        }
    }
}

/// Bounds-checked little-endian reads over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.offset.checked_add(length)?;
        let slice = self.bytes.get(self.offset..end)?;
        self.offset = end;
        Some(slice)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Skips padding so the offset is a multiple of four.
    fn align(&mut self) -> Option<()> {
        let padding = (4 - self.offset % 4) % 4;
        self.take(padding).map(|_| ())
    }

    fn is_done(&self) -> bool {
        self.offset >= self.bytes.len()
    }
}

/// Reads the files out of a TNEF container.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<TnefEntry>, TnefError> {
    let mut cursor = Cursor { bytes, offset: 0 };
    let signature = cursor.u32().ok_or(TnefError::BadSignature(None))?;
    if signature != SIGNATURE {
        return Err(TnefError::BadSignature(Some(signature)));
    }
    cursor.u16().ok_or(TnefError::BadSignature(None))?;

    let mut codepage = None;
    let mut entries: Vec<TnefEntry> = Vec::new();
    while !cursor.is_done() {
        let offset = cursor.offset;
        let truncated = TnefError::Truncated { offset };
        let level = cursor.u8().ok_or(truncated.clone())?;
        let id = cursor.u32().ok_or(truncated.clone())?;
        let length = cursor.u32().ok_or(truncated.clone())? as usize;
        let data = cursor.take(length).ok_or(truncated.clone())?;
        // The checksum is not verified: readers in the field accept files with wrong sums.
        cursor.u16().ok_or(truncated)?;

        match level {
            LEVEL_MESSAGE => {
                if id == ATT_OEM_CODEPAGE && data.len() >= 4 {
                    codepage = Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
                }
            }
            LEVEL_ATTACHMENT => match id {
                ATT_ATTACH_REND_DATA => entries.push(TnefEntry::default()),
                ATT_ATTACH_TITLE => {
                    let entry = current(&mut entries);
                    if entry.filename.is_none() {
                        entry.filename = decode_string8(data, codepage);
                    }
                }
                ATT_ATTACH_DATA => current(&mut entries).data = data.to_vec(),
                ATT_ATTACHMENT => {
                    if let Some(name) = long_filename(data, codepage) {
                        current(&mut entries).filename = Some(name);
                    }
                }
                _ => {}
            },
            _ => return Err(TnefError::UnknownLevel { offset, level }),
        }
    }
    Ok(entries)
}

/// Returns the attachment being read, starting one if the container skipped its
/// `attAttachRendData`.
fn current(entries: &mut Vec<TnefEntry>) -> &mut TnefEntry {
    if entries.is_empty() {
        entries.push(TnefEntry::default());
    }
    let last = entries.len() - 1;
    &mut entries[last]
}

/// Decodes a NUL-terminated 8-bit string in the container's OEM code page.
fn decode_string8(data: &[u8], codepage: Option<u32>) -> Option<String> {
    let end = data
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(data.len());
    let label = codepage.map(codepage_label);
    let text = charset::decode(&data[..end], label.as_deref()).text;
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn decode_unicode(data: &[u8]) -> Option<String> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    let text = String::from_utf16_lossy(&units).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Maps a Windows code page number to a charset label.
fn codepage_label(codepage: u32) -> String {
    match codepage {
        932 => "shift_jis".into(),
        936 => "gbk".into(),
        949 => "euc-kr".into(),
        950 => "big5".into(),
        20127 => "us-ascii".into(),
        65001 => "utf-8".into(),
        28591..=28606 => format!("iso-8859-{}", codepage - 28590),
        1250..=1258 | 874 => format!("windows-{codepage}"),
        other => format!("cp{other}"),
    }
}

/// Finds `PR_ATTACH_LONG_FILENAME` in an `attAttachment` MAPI property list. Returns `None`
/// when the property is absent or the list cannot be read.
fn long_filename(data: &[u8], codepage: Option<u32>) -> Option<String> {
    let mut cursor = Cursor {
        bytes: data,
        offset: 0,
    };
    let count = cursor.u32()?;
    for _ in 0..count {
        let property_type = cursor.u16()?;
        let property_id = cursor.u16()?;
        if property_id >= 0x8000 {
            skip_property_name(&mut cursor)?;
        }
        let is_multi_value = property_type & MULTI_VALUE_FLAG != 0;
        let base_type = property_type & !MULTI_VALUE_FLAG;
        let values = if is_multi_value || is_variable_length(base_type) {
            cursor.u32()?
        } else {
            1
        };
        for _ in 0..values {
            let value = read_value(&mut cursor, base_type)?;
            if property_id == PR_ATTACH_LONG_FILENAME {
                return match base_type {
                    PT_UNICODE => decode_unicode(value),
                    PT_STRING8 => decode_string8(value, codepage),
                    _ => None,
                };
            }
        }
    }
    None
}

/// Skips the GUID and name or number of a named property.
fn skip_property_name(cursor: &mut Cursor<'_>) -> Option<()> {
    cursor.take(16)?;
    match cursor.u32()? {
        0 => {
            cursor.u32()?;
        }
        _ => {
            let length = cursor.u32()? as usize;
            cursor.take(length)?;
            cursor.align()?;
        }
    }
    Some(())
}

fn is_variable_length(base_type: u16) -> bool {
    matches!(base_type, PT_STRING8 | PT_UNICODE | 0x0102 | 0x000D)
}

/// Reads one value of `base_type` and returns its bytes, padding skipped.
fn read_value<'a>(cursor: &mut Cursor<'a>, base_type: u16) -> Option<&'a [u8]> {
    let value = match base_type {
        0x0002 | 0x000B => {
            let value = cursor.take(2)?;
            cursor.take(2)?;
            value
        }
        0x0003 | 0x0004 | 0x000A => cursor.take(4)?,
        0x0005..=0x0007 | 0x0014 | 0x0040 => cursor.take(8)?,
        0x0048 => cursor.take(16)?,
        _ if is_variable_length(base_type) => {
            let length = cursor.u32()? as usize;
            let value = cursor.take(length)?;
            cursor.align()?;
            value
        }
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a TNEF container with one attachment per `(title, long name, data)` entry.
    pub(crate) fn build(files: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&SIGNATURE.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        push_attribute(
            &mut out,
            LEVEL_MESSAGE,
            ATT_OEM_CODEPAGE,
            &[0xE4, 0x04, 0, 0, 0, 0, 0, 0],
        );
        for (title, long_name, data) in files {
            push_attribute(
                &mut out,
                LEVEL_ATTACHMENT,
                ATT_ATTACH_REND_DATA,
                &[1, 0, 0, 0],
            );
            let mut title_bytes = title.as_bytes().to_vec();
            title_bytes.push(0);
            push_attribute(&mut out, LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, &title_bytes);
            push_attribute(&mut out, LEVEL_ATTACHMENT, ATT_ATTACH_DATA, data);
            if let Some(long_name) = long_name {
                push_attribute(
                    &mut out,
                    LEVEL_ATTACHMENT,
                    ATT_ATTACHMENT,
                    &long_name_props(long_name),
                );
            }
        }
        out
    }

    fn push_attribute(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) {
        out.push(level);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        let checksum = data
            .iter()
            .fold(0u16, |sum, &byte| sum.wrapping_add(u16::from(byte)));
        out.extend_from_slice(&checksum.to_le_bytes());
    }

    /// Builds a property list with a PT_LONG, a named property and the long file name in
    /// UTF-16.
    fn long_name_props(name: &str) -> Vec<u8> {
        let mut props = Vec::new();
        props.extend_from_slice(&3u32.to_le_bytes());
        // PR_ATTACH_METHOD (PT_LONG) = 1
        props.extend_from_slice(&0x0003u16.to_le_bytes());
        props.extend_from_slice(&0x3705u16.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        // A named PT_STRING8 property with a string name.
        props.extend_from_slice(&PT_STRING8.to_le_bytes());
        props.extend_from_slice(&0x8001u16.to_le_bytes());
        props.extend_from_slice(&[0x11; 16]);
        props.extend_from_slice(&1u32.to_le_bytes());
        props.extend_from_slice(&6u32.to_le_bytes());
        props.extend_from_slice(&[b'a', 0, b'b', 0, 0, 0, 0, 0]);
        props.extend_from_slice(&1u32.to_le_bytes());
        props.extend_from_slice(&3u32.to_le_bytes());
        props.extend_from_slice(&[b'x', b'y', 0, 0]);
        // PR_ATTACH_LONG_FILENAME (PT_UNICODE)
        props.extend_from_slice(&PT_UNICODE.to_le_bytes());
        props.extend_from_slice(&PR_ATTACH_LONG_FILENAME.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        let mut encoded: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        encoded.extend_from_slice(&[0, 0]);
        props.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
        let padding = (4 - encoded.len() % 4) % 4;
        props.extend_from_slice(&encoded);
        props.extend(std::iter::repeat_n(0, padding));
        props
    }

    #[test]
    fn reads_title_and_data() {
        let container = build(&[("report.txt", None, b"hello")]);
        let entries = read(&container).expect("valid container");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].filename.as_deref(), Some("report.txt"));
        assert_eq!(entries[0].data, b"hello");
    }

    #[test]
    fn long_filename_wins_over_title() {
        let container = build(&[
            ("QUARTA~1.XLS", Some("Quartalsübersicht 2026.xlsx"), b"PK"),
            ("b.zip", None, b"zip"),
        ]);
        let entries = read(&container).expect("valid container");
        let names: Vec<_> = entries
            .iter()
            .map(|entry| entry.filename.as_deref())
            .collect();
        assert_eq!(names, [Some("Quartalsübersicht 2026.xlsx"), Some("b.zip")]);
    }

    #[test]
    fn title_in_oem_codepage() {
        let mut container = build(&[]);
        push_attribute(
            &mut container,
            LEVEL_ATTACHMENT,
            ATT_ATTACH_REND_DATA,
            &[1, 0, 0, 0],
        );
        push_attribute(
            &mut container,
            LEVEL_ATTACHMENT,
            ATT_ATTACH_TITLE,
            b"r\xe9sum\xe9.doc\0",
        );
        let entries = read(&container).expect("valid container");
        assert_eq!(entries[0].filename.as_deref(), Some("résumé.doc"));
    }

    #[test]
    fn bad_signature() {
        assert_eq!(
            read(b"PK\x03\x04rest"),
            Err(TnefError::BadSignature(Some(0x0403_4B50)))
        );
        assert_eq!(read(b"\x78\x9f"), Err(TnefError::BadSignature(None)));
    }

    #[test]
    fn truncated_attribute() {
        let container = build(&[("a.txt", None, b"0123456789")]);
        let cut = &container[..container.len() - 5];
        assert!(matches!(read(cut), Err(TnefError::Truncated { .. })));
    }

    #[test]
    fn huge_length_does_not_allocate() {
        let mut container = build(&[]);
        container.push(LEVEL_ATTACHMENT);
        container.extend_from_slice(&ATT_ATTACH_DATA.to_le_bytes());
        container.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read(&container), Err(TnefError::Truncated { .. })));
    }

    #[test]
    fn unknown_level() {
        let mut container = build(&[]);
        container.push(7);
        container.extend_from_slice(&[0; 10]);
        assert!(matches!(
            read(&container),
            Err(TnefError::UnknownLevel { level: 7, .. })
        ));
    }
}
