//! Behaviour on the faults that public bug reports describe in other help desks and mail
//! parsers. Each test starts from the minimal message in `tests/fixtures/emails/` (or one
//! built here) and checks the whole kind of fault, not only that input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tend_mail::{
    LoopMarker, ParseError, ReturnPath, RobotReason, Warning, parse, replies_to_automatic, robot,
    robot_reasons, strip_reply_prefixes, subject_tags,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/emails")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn parse_fixture(name: &str) -> tend_mail::InboundMessage {
    parse(&fixture(name)).unwrap_or_else(|error| panic!("{name} does not parse: {error}"))
}

#[test]
fn split_base64_subject_is_whole() {
    let message = parse_fixture("subject-split-base64.eml");
    let subject = message.subject.expect("subject");
    assert_eq!(subject, "Störung im Netzwerk: Büroräume ohne Zugriff");
    assert!(!subject.contains('\u{FFFD}'));
}

#[test]
fn split_q_subject_is_whole() {
    let message = parse_fixture("subject-split-q.eml");
    assert_eq!(
        message.subject.as_deref(),
        Some("Užklausa dėl spausdintuvo gedimo")
    );
}

#[test]
fn split_words_of_different_charsets_decode_separately() {
    let raw =
        b"From: a@example.org\nSubject: =?iso-8859-1?Q?Caf=E9?=\n =?utf-8?B?IGNyw6htZQ==?=\n\nx\n";
    let message = parse(raw).expect("parses");
    assert_eq!(message.subject.as_deref(), Some("Café crème"));
}

#[test]
fn iso_2022_jp_without_charset() {
    let message = parse_fixture("iso-2022-jp-no-charset.eml");
    assert_eq!(
        message.text,
        "お世話になっております。\n三階のプリンターが動きません。\nよろしくお願いいたします。"
    );
    assert!(!message.text.contains('\u{1b}'));
    assert_eq!(message.subject.as_deref(), Some("プリンター故障"));
    assert!(message.warnings.iter().any(|warning| matches!(
        warning,
        Warning::CharsetMissing { used, .. } if used == "ISO-2022-JP"
    )));
}

#[test]
fn iso_2022_jp_labelled_us_ascii() {
    let raw = b"From: a@example.org\nContent-Type: text/plain; charset=us-ascii\n\n\x1b$B%W%j%s%?!<\x1b(B\n";
    let message = parse(raw).expect("parses");
    assert_eq!(message.text, "プリンター");
}

#[test]
fn utf8_body_labelled_iso_2022_jp() {
    let message = parse_fixture("iso-2022-jp-label-utf8-body.eml");
    assert_eq!(message.text, "プリンターが動きません");
    assert!(!message.text.contains('\u{FFFD}'));
    let warning = message
        .warnings
        .iter()
        .find(|warning| matches!(warning, Warning::CharsetMismatch { .. }))
        .expect("mismatch warning");
    assert!(warning.to_string().contains("does not match content"));
}

#[test]
fn unknown_charset_labels_never_reject() {
    let message = parse_fixture("unknown-charset-labels.eml");
    assert_eq!(message.subject.as_deref(), Some("SV: Spørsmål om faktura"));
    assert_eq!(
        message.text,
        "Hei, fakturaen for januar mangler – kan dere sende den på nytt?"
    );
    let labels: Vec<&str> = message
        .warnings
        .iter()
        .filter_map(|warning| match warning {
            Warning::CharsetUnknown { label, .. } => Some(label.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(labels, ["unknown-8bit", "x-mac-cyrillic-legacy"]);
    let html = message.html.expect("HTML view");
    assert!(html.contains("Hei, fakturaen for januar mangler."));
}

#[test]
fn unknown_label_on_latin1_bytes() {
    let raw = b"From: a@example.org\nContent-Type: text/plain; charset=x-nonsense\n\nR\xe9sum\xe9 de la facture\n";
    let message = parse(raw).expect("parses");
    assert_eq!(message.text, "Résumé de la facture");
    assert!(
        message
            .warnings
            .iter()
            .any(|warning| warning.to_string().contains("x-nonsense"))
    );
}

#[test]
fn missing_message_id_gets_content_key() {
    let raw = fixture("no-message-id.eml");
    let message = parse(&raw).expect("parses");
    assert_eq!(message.message_id, None);
    assert!(message.warnings.contains(&Warning::MissingHeader {
        name: "Message-ID".into()
    }));
    let key = message.dedup_key();
    assert_eq!(
        key,
        format!("sha256-{}@generated.invalid", message.raw_sha256)
    );

    let again = parse(&raw).expect("parses");
    assert_eq!(again.dedup_key(), key);

    let mut changed = raw.clone();
    let last_letter = changed
        .iter()
        .rposition(u8::is_ascii_alphabetic)
        .expect("letter");
    changed[last_letter] ^= 0x20;
    let other = parse(&changed).expect("parses");
    assert_ne!(other.dedup_key(), key);
}

#[test]
fn missing_from_names_no_requester() {
    let message = parse_fixture("no-from.eml");
    assert_eq!(message.from, None);
    assert_eq!(message.return_path, Some(ReturnPath::Null));
    assert_eq!(message.requester_address(), None);
    assert!(message.warnings.contains(&Warning::MissingHeader {
        name: "From".into()
    }));
    assert_eq!(message.text, "Volume D: is at 97%.");
}

#[test]
fn missing_from_falls_back_to_sender() {
    let raw = b"Sender: Monitor <monitor@example.org>\nReturn-Path: <bounce@example.org>\nSubject: Disk\n\nfull\n";
    let message = parse(raw).expect("parses");
    assert_eq!(message.requester_address(), Some("monitor@example.org"));
}

#[test]
fn tnef_attachment_is_listed_and_unpacked() {
    let message = parse_fixture("tnef-winmail.eml");
    assert_eq!(
        message.text,
        "The ledger app crashed again, report attached."
    );
    assert_eq!(message.attachments.len(), 1);
    let winmail = &message.attachments[0];
    assert_eq!(winmail.filename.as_deref(), Some("winmail.dat"));
    assert_eq!(winmail.content_type, "application/ms-tnef");
    let files = winmail.tnef.as_ref().expect("flagged as TNEF");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename.as_deref(), Some("crash-report.txt"));
    assert_eq!(files[0].data, b"app=ledger build=4.2.1 fault=0xC0000005\n");
    assert_eq!(files[0].size, 40);
}

#[test]
fn damaged_tnef_is_kept_as_one_file() {
    let raw = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee attached.\n--b\nContent-Type: application/ms-tnef; name=winmail.dat\nContent-Transfer-Encoding: base64\n\nAAAAAAAA\n--b--\n";
    let message = parse(raw).expect("parses");
    let winmail = &message.attachments[0];
    assert_eq!(winmail.tnef.as_deref(), Some(&[][..]));
    assert_eq!(winmail.size, 6);
    assert!(
        message
            .warnings
            .iter()
            .any(|warning| matches!(warning, Warning::UnreadableTnef { .. }))
    );
}

#[test]
fn encoded_and_raw_filenames() {
    let message = parse_fixture("encoded-and-raw-filenames.eml");
    let names: Vec<Option<&str>> = message
        .attachments
        .iter()
        .map(|attachment| attachment.filename.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("Relevé décembre.pdf"), Some("Facture_été.pdf")]
    );
    assert_eq!(message.text, "Deux documents.");
    assert!(
        message
            .attachments
            .iter()
            .all(|attachment| attachment.size == 22)
    );
}

#[test]
fn undecodable_filename_degrades_with_warning() {
    let raw = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"Re\xe7u \xe9t\xe9.pdf\"\n\n%PDF\n--b--\n";
    let message = parse(raw).expect("parses");
    assert_eq!(
        message.attachments[0].filename.as_deref(),
        Some("Reçu été.pdf")
    );
    assert!(message.warnings.iter().any(|warning| matches!(
        warning,
        Warning::CharsetMissing { context, .. } if context.starts_with("file name")
    )));
}

/// Builds a message whose HTML body has 60,000 `&nbsp;` over 3,000 lines, then `depth`
/// nested `<div>`.
fn heavy_html_message(depth: usize) -> Vec<u8> {
    let mut html = String::from("<html><body><p>Hello,</p><p>");
    for _ in 0..3000 {
        html.push_str(&"&nbsp; ".repeat(20));
        html.push('\n');
    }
    html.push_str("</p>");
    html.push_str(&"<div>".repeat(depth));
    html.push_str("deep text");
    html.push_str(&"</div>".repeat(depth));
    html.push_str("<p>Regards</p></body></html>");
    let mut raw = b"From: Newsletter <news@example.net>\nTo: helpdesk@example.com\nSubject: Monthly digest\nContent-Type: text/html; charset=utf-8\n\n".to_vec();
    raw.extend_from_slice(html.as_bytes());
    raw
}

#[test]
fn pathological_html_finishes_fast() {
    for depth in [3_000, 50_000] {
        let raw = heavy_html_message(depth);
        let started = Instant::now();
        let message = parse(&raw).expect("parses");
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(2),
            "depth {depth} took {elapsed:?}"
        );
        assert!(message.text.starts_with("Hello,"), "depth {depth}");
        assert!(message.text.contains("deep text"), "depth {depth}");
        assert!(message.text.ends_with("Regards"), "depth {depth}");
        assert!(
            message.text.len() < 200,
            "white space kept: {} bytes",
            message.text.len()
        );
        assert_eq!(message.html, None);
        assert!(
            message
                .warnings
                .iter()
                .any(|warning| matches!(warning, Warning::HtmlFallback { .. }))
        );
    }
}

#[test]
fn moderately_nested_html_keeps_view() {
    let mut raw = heavy_html_message(300);
    let links: String = (0..2000)
        .map(|index| format!("<a href=\"https://example.org/{index}\">link {index}</a> "))
        .collect();
    let closing = raw.len() - "</body></html>".len();
    raw.splice(closing..closing, links.bytes());
    let started = Instant::now();
    let message = parse(&raw).expect("parses");
    assert!(started.elapsed() < Duration::from_secs(5));
    let html = message.html.expect("HTML view");
    assert!(html.contains("Regards"));
    assert!(message.text.contains("link 1999"));
}

#[test]
fn oversized_html_uses_linear_extraction() {
    let paragraph = "<p>Row of a very long report</p>\n";
    let html = paragraph.repeat(3 * 1024 * 1024 / paragraph.len());
    let mut raw = b"From: a@example.org\nContent-Type: text/html\n\n".to_vec();
    raw.extend_from_slice(html.as_bytes());
    let message = parse(&raw).expect("parses");
    assert_eq!(message.html, None);
    assert!(message.text.starts_with("Row of a very long report"));
    assert!(message
        .warnings
        .iter()
        .any(|warning| matches!(warning, Warning::HtmlFallback { reason, .. } if reason.contains("bytes"))));
}

#[test]
fn localized_reply_prefixes_keep_tag() {
    let message = parse_fixture("localized-reply-prefix.eml");
    let subject = message.subject.expect("subject");
    let prefixes = ["Ticket", "INC", "REQ"];
    assert_eq!(
        subject_tags(&subject, &prefixes),
        ["Ticket2026020110000042"]
    );
    assert_eq!(
        strip_reply_prefixes(&subject),
        "[Ticket#2026020110000042] Tulostin ei toimi"
    );

    for reply_prefix in [
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
    ] {
        let subject = format!("{reply_prefix} [Ticket#2026020110000042] Tulostin ei toimi");
        assert_eq!(
            subject_tags(&subject, &prefixes),
            ["Ticket2026020110000042"],
            "{reply_prefix}"
        );
        assert_eq!(
            strip_reply_prefixes(&subject),
            "[Ticket#2026020110000042] Tulostin ei toimi",
            "{reply_prefix}"
        );
    }
}

#[test]
fn bounce_is_robot_with_original_id() {
    let message = parse_fixture("delivery-status-bounce.eml");
    let marker = LoopMarker::new("tend-test");
    let headers: Vec<String> = robot_reasons(&message, &marker)
        .iter()
        .map(|reason| reason.header().to_string())
        .collect();
    assert_eq!(
        headers,
        ["Content-Type", "Auto-Submitted", "Return-Path", "From"]
    );
    assert_eq!(
        robot(&message, &marker),
        Some(RobotReason::Report {
            report_type: "delivery-status".into()
        })
    );

    let report = message.report.expect("report");
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("notif-48-3@helpdesk.example.com")
    );
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(
        report.recipients[0].final_recipient.as_deref(),
        Some("gone@example.org")
    );
    assert_eq!(report.recipients[0].action.as_deref(), Some("failed"));
    assert_eq!(report.recipients[0].status.as_deref(), Some("5.1.1"));
    assert_eq!(message.return_path, Some(ReturnPath::Null));
    assert_eq!(
        message.text,
        "Your message could not be delivered to gone@example.org."
    );
}

#[test]
fn plain_text_bounce_is_robot_by_sender() {
    let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\nTo: helpdesk@example.com\nSubject: Returned mail\n\nUser unknown\n";
    let message = parse(raw).expect("parses");
    let reason = robot(&message, &LoopMarker::new("tend-test")).expect("robot");
    assert_eq!(reason.header(), "From");
    assert_eq!(reason.value(), "MAILER-DAEMON@mx.example.org");
}

#[test]
fn helpdesk_ping_pong_is_never_answered() {
    let raw = fixture("helpdesk-ping-pong.eml");
    let message = parse(&raw).expect("parses");
    let marker = LoopMarker::new("tend-test");
    // The vendor's acknowledgement carries no standard auto-reply header ...
    assert_eq!(robot(&message, &marker), None);
    // ... but it replies to Tend's own acknowledgement, so it gets no acknowledgement back.
    let is_own_acknowledgement =
        |id: &str| id.starts_with("autoreply-") && id.ends_with("@helpdesk.example.com");
    assert_eq!(
        replies_to_automatic(&message, is_own_acknowledgement),
        Some("autoreply-117904@helpdesk.example.com")
    );
    let subject = message.subject.expect("subject");
    assert_eq!(subject_tags(&subject, &["#"]), ["#117904", "#117896"]);

    // The same message carrying this instance's loop header is Tend's own mail.
    let mut own = b"X-Tend-Loop: tend-test\r\n".to_vec();
    own.extend_from_slice(&raw);
    let own = parse(&own).expect("parses");
    assert_eq!(
        robot(&own, &marker),
        Some(RobotReason::OwnMessage {
            header: "X-Tend-Loop".into(),
            value: "tend-test".into()
        })
    );
}

#[test]
fn multipart_with_only_closing_delimiter() {
    let raw = b"From: a@example.org\nSubject: Empty form\nContent-Type: multipart/mixed; boundary=\"boundary\"\n\n--boundary--\n";
    let message = parse(raw).expect("parses");
    assert_eq!(message.text, "");
    assert!(message.attachments.is_empty());
    assert!(
        message
            .warnings
            .iter()
            .any(|warning| matches!(warning, Warning::BrokenMultipart { .. }))
    );
}

#[test]
fn multipart_cut_off_inside_part() {
    let raw = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nThe printer on floor 3 is";
    let message = parse(raw).expect("parses");
    assert_eq!(message.text, "The printer on floor 3 is");
    assert!(message.warnings.iter().any(|warning| matches!(
        warning,
        Warning::BrokenMultipart { detail, .. } if detail.contains("closing delimiter")
    )));
}

#[test]
fn not_a_message_is_an_error_with_reason() {
    assert_eq!(parse(b""), Err(ParseError::Empty));
    for input in [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
        b"Hello, this is just text.\n",
        b"\0\0\0\0",
    ] {
        let error = parse(input).expect_err("not a message");
        assert!(matches!(error, ParseError::NoHeader { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("does not start with a header field")
        );
    }
    let error = parse(b"X-Only: custom\n\nbody").expect_err("no message field");
    assert!(error.to_string().contains("X-Only"));
}

#[test]
fn deep_attached_messages_become_files() {
    let mut raw = b"From: innermost@example.org\nSubject: level 5\n\ninnermost text\n".to_vec();
    for level in (0..5).rev() {
        let boundary = format!("level{level}");
        let mut outer = format!(
            "From: level{level}@example.org\nSubject: level {level}\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\nContent-Type: text/plain\n\nforwarding\n--{boundary}\nContent-Type: message/rfc822\n\n"
        )
        .into_bytes();
        outer.extend_from_slice(&raw);
        outer.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
        raw = outer;
    }
    let mut message = parse(&raw).expect("parses");
    for level in 1..=3 {
        assert_eq!(message.nested.len(), 1, "level {level}");
        message = *message.nested.remove(0).message;
        assert_eq!(message.subject, Some(format!("level {level}")));
    }
    assert!(message.nested.is_empty());
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(message.attachments[0].content_type, "message/rfc822");
    assert!(
        message
            .warnings
            .iter()
            .any(|warning| matches!(warning, Warning::UnreadableNestedMessage { .. }))
    );
}
