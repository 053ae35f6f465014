//! Reads every inventory sample of the data folder that sits beside the repository
//! checkout on development machines. The samples are not part of the repository,
//! because some have no licence. Without the folder the test prints a note and checks
//! nothing.

use std::path::{Path, PathBuf};

use tend_inventory::{DEFAULT_MAX_BYTES, ItemKind, Message, read};

/// What a sample reads to: kind, name, serial number and software count.
struct Sample {
    file: &'static str,
    kind: ItemKind,
    name: Option<&'static str>,
    serial: Option<&'static str>,
    software: Option<usize>,
}

const fn sample(
    file: &'static str,
    kind: ItemKind,
    name: Option<&'static str>,
    serial: Option<&'static str>,
    software: Option<usize>,
) -> Sample {
    Sample {
        file,
        kind,
        name,
        serial,
        software,
    }
}

/// Values looked up by hand in the files. Samples not listed here only have to read or
/// fail with a sentence.
const EXPECTED: [Sample; 29] = [
    sample(
        "glpi-inventory-format__examples__computer_1.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        Some(6),
    ),
    sample(
        "glpi-inventory-format__examples__computer_1_partial_batteries.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__computer_1_partial_cpu.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__computer_1_partial_memory.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__computer_1_partial_softs.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        Some(6),
    ),
    sample(
        "glpi-inventory-format__examples__computer_1_partial_volumes.json",
        ItemKind::Computer,
        Some("glpixps"),
        Some("640HP72"),
        None,
    ),
    // The files list 3033 and 3184 entries, but multi-arch packages repeat name, version
    // and publisher and count once.
    sample(
        "glpi-inventory-format__examples__computer_3.json",
        ItemKind::Computer,
        Some("LF014"),
        Some("8C554721F"),
        Some(3005),
    ),
    sample(
        "glpi-inventory-format__examples__computer_3_updated.json",
        ItemKind::Computer,
        Some("LF014"),
        Some("8C554721F"),
        Some(3155),
    ),
    sample(
        "glpi-inventory-format__examples__networkequipment_1.json",
        ItemKind::NetworkDevice,
        Some("ucs6248up-cluster-pa3-B"),
        Some("SSI1912014B"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__networkequipment_2.json",
        ItemKind::NetworkDevice,
        Some("3k-1-pa3"),
        Some("FOC1243W0ED"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__networkequipment_5.json",
        ItemKind::NetworkDevice,
        Some("DGS-3420-52T"),
        Some("R3843D1000001"),
        None,
    ),
    sample(
        "glpi-inventory-format__examples__phone_1.json",
        ItemKind::Phone,
        Some("Mi9TPro-TéléphoneM"),
        Some("af8d8fcfa6fa4794"),
        Some(3),
    ),
    sample(
        "glpi-inventory-format__examples__printer_1.json",
        ItemKind::Printer,
        Some("NPIF2BE10"),
        Some("PHCVN191TG"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__1.xml",
        ItemKind::Computer,
        Some("LF014"),
        Some("9E113232I"),
        Some(42),
    ),
    sample(
        "glpi-inventory-format__tests__data__10.xml",
        ItemKind::NetworkDevice,
        Some("swdc-07-01-dc1"),
        None,
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__12.xml",
        ItemKind::Computer,
        Some("pc-arg-23"),
        Some("CZC0479792"),
        Some(8),
    ),
    sample(
        "glpi-inventory-format__tests__data__15.xml",
        ItemKind::NetworkDevice,
        None,
        None,
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__16.xml",
        ItemKind::NetworkDevice,
        Some("J9803A"),
        Some("cn3afrt37n"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__17.xml",
        ItemKind::NetworkDevice,
        Some("J9803A"),
        Some("cn3afrt37n"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__19.xml",
        ItemKind::Computer,
        Some("SYN14"),
        Some("01234567890AAA"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__2.xml",
        ItemKind::Computer,
        Some("pc-arg-23"),
        Some("CZC0479792"),
        Some(8),
    ),
    sample(
        "glpi-inventory-format__tests__data__3.xml",
        ItemKind::Computer,
        Some("MacBook-de-teclib"),
        Some("W87051UGVUV"),
        Some(40),
    ),
    sample(
        "glpi-inventory-format__tests__data__4.xml",
        ItemKind::Computer,
        Some("iMac de Marie"),
        Some("C02NG5A5FY11"),
        Some(7),
    ),
    sample(
        "glpi-inventory-format__tests__data__5-good.xml",
        ItemKind::NetworkDevice,
        Some("WR21"),
        Some("486280"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__5.xml",
        ItemKind::NetworkDevice,
        Some("WR21"),
        Some("486280"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__6.xml",
        ItemKind::NetworkDevice,
        Some("ucs6248up-cluster-pa3-B"),
        Some("SSI1912014B"),
        None,
    ),
    sample(
        "glpi-inventory-format__tests__data__7.xml",
        ItemKind::NetworkDevice,
        Some("ucs6248up-cluster-pa3-B"),
        Some("SSI1912014B"),
        None,
    ),
    sample(
        "lshw__computerspende__lshw.json",
        ItemKind::Computer,
        Some("wuffinotebook"),
        Some("DSCM522786"),
        None,
    ),
    // Output of `lshw -sanitize`: no host name and no serial number.
    sample(
        "lshw__dl360p__lshw.json",
        ItemKind::Computer,
        None,
        None,
        None,
    ),
];

/// Samples that must be rejected, with a word the message must contain.
const REJECTED: [(&str, &str); 1] = [("glpi-inventory-format__inventory.schema.json", "schema")];

fn samples_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/inventory")
}

/// Checks that an error message is at least a sentence: several words, starting with a
/// letter.
fn is_sentence(message: &str) -> bool {
    message.split_whitespace().count() >= 6 && message.starts_with(|c: char| c.is_alphabetic())
}

#[test]
fn every_sample_reads_or_explains() {
    let folder = samples_folder();
    let Ok(entries) = std::fs::read_dir(&folder) else {
        println!(
            "note: {} is absent, so no sample was read",
            folder.display()
        );
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();

    for path in &paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let result = read(&bytes, DEFAULT_MAX_BYTES);
        println!("read {file}");

        if let Some((_, word)) = REJECTED.iter().find(|(name, _)| *name == file) {
            let error = result.expect_err(&file).to_string();
            assert!(error.contains(word), "{file}: {error}");
            assert!(is_sentence(&error), "{file}: {error}");
            continue;
        }
        let Some(expected) = EXPECTED.iter().find(|sample| sample.file == file) else {
            if let Err(error) = result {
                let message = error.to_string();
                assert!(is_sentence(&message), "{file}: {message}");
            }
            continue;
        };

        let document = match result {
            Ok(Message::Inventory(document)) => document,
            other => panic!("{file}: expected an inventory, got {other:?}"),
        };
        assert_eq!(document.items.len(), 1, "{file}: item count");
        let item = &document.items[0];
        assert_eq!(item.kind, expected.kind, "{file}: kind");
        assert_eq!(item.name.as_deref(), expected.name, "{file}: name");
        assert_eq!(
            item.text("serial_number"),
            expected.serial,
            "{file}: serial"
        );
        assert_eq!(
            item.software.as_ref().map(Vec::len),
            expected.software,
            "{file}: software count"
        );
    }
    println!("read {} samples from {}", paths.len(), folder.display());
}
