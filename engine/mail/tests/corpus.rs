//! Parses real third-party messages: every `.eml` file of the shared e-mail corpus, and a
//! few copies of it kept in `tests/fixtures/emails/` whose facts were checked by reading
//! them.
//!
//! The corpus is looked up in `TEND_EMAIL_CORPUS`, then in `shared/data/emails` beside the
//! repository. Without it the corpus test prints why and passes; the fixture tests always
//! run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tend_mail::{InboundMessage, LoopMarker, RobotReason, Warning, parse, robot};

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus_directory() -> Option<PathBuf> {
    if let Some(directory) = std::env::var_os("TEND_EMAIL_CORPUS") {
        return Some(PathBuf::from(directory));
    }
    let beside = repository_root().join("../shared/data/emails");
    beside
        .is_dir()
        .then(|| std::fs::canonicalize(&beside).unwrap_or(beside))
}

fn fixture(name: &str) -> InboundMessage {
    let path = repository_root().join("tests/fixtures/emails").join(name);
    let raw = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    parse(&raw).unwrap_or_else(|error| panic!("{name} does not parse: {error}"))
}

/// Checks what must hold for any parsed message, nested ones included.
fn check_invariants(name: &str, message: &InboundMessage) {
    assert_eq!(message.raw_sha256.len(), 64, "{name}");
    assert!(!message.text.contains('\r'), "{name}: CR left in text");
    if let Some(html) = &message.html {
        let lowered = html.to_ascii_lowercase();
        assert!(!lowered.contains("<script"), "{name}: script in HTML view");
        assert!(
            !lowered.contains(" onload="),
            "{name}: event handler in HTML view"
        );
        assert!(
            !lowered.contains("src=\"http"),
            "{name}: remote source in HTML view"
        );
    }
    for attachment in &message.attachments {
        assert_eq!(attachment.size, attachment.data.len(), "{name}");
        assert_eq!(attachment.sha256.len(), 64, "{name}");
        if let Some(filename) = &attachment.filename {
            assert!(
                !filename.contains(['/', '\\']),
                "{name}: path in {filename:?}"
            );
        }
    }
    for warning in &message.warnings {
        assert!(!warning.to_string().is_empty(), "{name}");
    }
    for nested in &message.nested {
        check_invariants(&format!("{name} part {}", nested.part), &nested.message);
    }
}

fn with_line_ends(raw: &[u8], crlf: bool) -> Vec<u8> {
    let mut converted = Vec::with_capacity(raw.len() + raw.len() / 16);
    for &byte in raw {
        if byte == b'\r' {
            continue;
        }
        if byte == b'\n' && crlf {
            converted.push(b'\r');
        }
        converted.push(byte);
    }
    converted
}

#[test]
fn corpus_parses_without_panic() {
    let Some(directory) = corpus_directory() else {
        eprintln!(
            "skipped: no e-mail corpus; set TEND_EMAIL_CORPUS or place shared/data/emails beside the repository"
        );
        return;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no .eml files in {}",
        directory.display()
    );

    let (mut parsed, mut with_warnings, mut errors, mut robots) = (0, 0, 0, 0);
    let marker = LoopMarker::new("tend-corpus-test");
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("?");
        let raw = std::fs::read(path).expect("readable file");
        let result = catch_unwind(AssertUnwindSafe(|| parse(&raw)))
            .unwrap_or_else(|_| panic!("{name}: parse panicked"));
        match result {
            Ok(message) => {
                parsed += 1;
                if !message.warnings.is_empty() {
                    with_warnings += 1;
                }
                if robot(&message, &marker).is_some() {
                    robots += 1;
                }
                check_invariants(name, &message);
                // No corpus message contains a raw escape byte in its text, so one left over
                // means ISO-2022-JP was not decoded.
                assert!(
                    !message.text.contains('\u{1b}'),
                    "{name}: escape byte left in text"
                );
                check_line_ends_do_not_matter(name, &raw, &message);
            }
            Err(error) => {
                errors += 1;
                assert!(!error.to_string().trim().is_empty(), "{name}: empty error");
                eprintln!("{name}: {error}");
            }
        }
    }
    println!(
        "{} files in {}: {parsed} parsed, {with_warnings} with warnings, {errors} errors, {robots} classified as robots",
        paths.len(),
        directory.display()
    );
}

/// Checks that the same message with LF or CRLF line ends gives the same subject, body and
/// file names.
fn check_line_ends_do_not_matter(name: &str, raw: &[u8], message: &InboundMessage) {
    for crlf in [false, true] {
        let other = parse(&with_line_ends(raw, crlf))
            .unwrap_or_else(|error| panic!("{name} with crlf={crlf}: {error}"));
        assert_eq!(other.subject, message.subject, "{name} crlf={crlf}");
        assert_eq!(other.text, message.text, "{name} crlf={crlf}");
        let names = |message: &InboundMessage| -> Vec<Option<String>> {
            message
                .attachments
                .iter()
                .map(|attachment| attachment.filename.clone())
                .collect()
        };
        assert_eq!(names(&other), names(message), "{name} crlf={crlf}");
    }
}

#[test]
fn encoded_word_subject_and_rfc2231_name() {
    let message = fixture("mikel-mail__attachment_emails__attachment_with_quoted_filename.eml");
    assert_eq!(message.subject.as_deref(), Some("Eelanalüüsi päring"));
    assert_eq!(message.attachments.len(), 1);
    let image = &message.attachments[0];
    assert_eq!(image.filename.as_deref(), Some("Eelanalüüsi päring.jpg"));
    assert_eq!(image.content_type, "image/jpeg");
    assert!(image.inline);
    assert!(image.data.starts_with(&[0xFF, 0xD8]), "not JPEG data");
}

#[test]
fn iso_2022_jp_body_and_utf8_words() {
    let message = fixture("mikel-mail__multi_charset__japanese_iso_2022.eml");
    assert_eq!(message.subject.as_deref(), Some("まみむめも"));
    assert_eq!(message.text, "すみません。");
    assert_eq!(message.to.len(), 1);
    assert_eq!(message.to[0].name.as_deref(), Some("みける"));
    assert_eq!(message.to[0].address, "raasdnil@gmail.com");
    assert!(message.warnings.iter().all(|warning| !matches!(
        warning,
        Warning::CharsetMismatch { .. } | Warning::CharsetUnknown { .. }
    )));
}

#[test]
fn sendmail_bounce_is_robot() {
    let message = fixture("mikel-mail__multipart_report_emails__report_530.eml");
    let reason = robot(&message, &LoopMarker::new("tend-test")).expect("robot");
    assert_eq!(
        reason,
        RobotReason::Report {
            report_type: "delivery-status".into()
        }
    );
    let report = message.report.expect("report");
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("200712232303.lBNN3jDq002941@mail12.rrrr.com.au")
    );
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(
        report.recipients[0].final_recipient.as_deref(),
        Some("edwin@zzzzzzz.com")
    );
    assert_eq!(report.recipients[0].action.as_deref(), Some("failed"));
    assert_eq!(report.recipients[0].status.as_deref(), Some("5.3.0"));
    assert!(message.text.contains("User unknown"));
}

#[test]
fn raw_utf8_attachment_name() {
    let message = fixture("mikel-mail__attachment_emails__attachment_nonascii_filename.eml");
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(
        message.attachments[0].filename.as_deref(),
        Some("ciële.txt")
    );
    assert_eq!(message.attachments[0].data, b"Hi there.\r\n");
}

#[test]
fn japanese_name_in_rfc2231_continuations() {
    let message = fixture("mikel-mail__multi_charset__japanese_attachment_long_name.eml");
    let expected = format!("{}.txt", "かきくけこ".repeat(5));
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(
        message.attachments[0].filename.as_deref(),
        Some(expected.as_str())
    );
}

fn fixture_bytes() -> Vec<Vec<u8>> {
    let directory = repository_root().join("tests/fixtures/emails");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("fixture directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    files.sort();
    files.iter().map(|path| read(path)).collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

proptest! {
    // Failures are not saved to a regressions file: the crate has no source folder layout
    // proptest could find for it, and the printed input is enough to reproduce one.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(error) = parse(&bytes) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn damaged_fixtures_never_panic(
        index in 0usize..64,
        cut in 0.0f64..1.0,
        flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 0..16),
    ) {
        let fixtures = fixture_bytes();
        let mut raw = fixtures[index % fixtures.len()].clone();
        for (position, byte) in flips {
            let at = ((raw.len() as f64) * position) as usize;
            if at < raw.len() {
                raw[at] = byte;
            }
        }
        raw.truncate(((raw.len() as f64) * cut) as usize + 1);
        match parse(&raw) {
            Ok(message) => check_invariants("damaged fixture", &message),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}
