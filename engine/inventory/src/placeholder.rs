//! Values that firmware and agents report when the real value is missing. Matching by
//! one of them would merge every machine of a model into one CI, so they are kept as
//! reported values only.

/// Texts that boards, BIOSes and agents write in place of a serial number, asset tag,
/// UUID or model, compared trimmed and ignoring case.
const PLACEHOLDERS: [&str; 33] = [
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "system product name",
    "system manufacturer",
    "system version",
    "base board serial number",
    "chassis serial number",
    "not specified",
    "not applicable",
    "not available",
    "none",
    "null",
    "n/a",
    "na",
    "unknown",
    "invalid",
    "no asset information",
    "no asset tag",
    "asset tag",
    "asset-1234567890",
    "0",
    "00000000",
    "000000000000",
    "0000000000000000",
    "123456789",
    "1234567890",
    "xxxxxxxxxx",
    "oem",
    // Android build tags: the GLPI Android agent reports Build.TAGS as the asset tag,
    // and every production build has the same one.
    "release-keys",
    "test-keys",
    "dev-keys",
];

/// Checks whether `value` is a placeholder rather than a real identifier: one of the
/// known texts, or a run of one repeated character (`0000`, `....`, `FFFFFFFF`, the
/// all-zero UUID).
pub fn is_placeholder(value: &str) -> bool {
    let value = value.trim().to_lowercase();
    if value.is_empty() {
        return true;
    }
    if PLACEHOLDERS.contains(&value.as_str()) {
        return true;
    }
    let significant: Vec<char> = value.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    significant.len() >= 2 && significant.iter().all(|c| *c == significant[0])
}

/// Checks whether a normalised MAC address (`aa:bb:cc:dd:ee:ff`) is one that many
/// devices share: all zeros, broadcast, or the fixed address of some virtual adapters.
pub fn is_placeholder_mac(mac: &str) -> bool {
    matches!(
        mac,
        "00:00:00:00:00:00"
            | "ff:ff:ff:ff:ff:ff"
            | "02:00:4c:4f:4f:50"
            | "00:50:56:c0:00:01"
            | "00:50:56:c0:00:08"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_case_placeholders_are_recognised() {
        // C64: the list the field case asks for, in any case and with spaces around.
        for value in [
            "To Be Filled By O.E.M.",
            "Default string",
            "System Serial Number",
            "Not Specified",
            "None",
            "0",
            "00000000",
            "123456789",
            "No Asset Information",
            "No Asset Tag",
            "Chassis Serial Number",
            "  to be filled by o.e.m.  ",
            "DEFAULT STRING",
        ] {
            assert!(is_placeholder(value), "{value:?} should be a placeholder");
        }
    }

    #[test]
    fn real_identifiers_are_kept() {
        for value in [
            "5CG1234XYZ",
            "4C4C4544-0042-3510-8052-B4C04F4E3132",
            "CZC1234ABC",
            "VMware-42 1a 2b 3c",
            "01",
        ] {
            assert!(!is_placeholder(value), "{value:?} is a real identifier");
        }
    }

    #[test]
    fn dummy_uuid_is_a_placeholder() {
        assert!(is_placeholder("00000000-0000-0000-0000-000000000000"));
        assert!(is_placeholder("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"));
    }

    #[test]
    fn shared_macs_are_placeholders() {
        assert!(is_placeholder_mac("00:00:00:00:00:00"));
        assert!(!is_placeholder_mac("52:54:00:12:34:56"));
    }
}
