//! Telling mail written by machines from mail written by people, so that Tend sends no
//! reply to a bounce, an auto-reply, a mailing list or itself.
//!
//! [`robot_reasons`] checks, in this order:
//!
//! 1. the loop header Tend puts on everything it sends, with this instance's id;
//! 2. a `multipart/report` body (delivery status notifications, bounces, read receipts);
//! 3. `Auto-Submitted` with any value but `no` (RFC 3834);
//! 4. `X-Auto-Response-Suppress` with any value but `None` (Microsoft Exchange);
//! 5. `Precedence: bulk`, `junk`, `list`, `auto_reply` or `auto-reply`;
//! 6. `List-Id` and `List-Unsubscribe` (RFC 2919, RFC 2369);
//! 7. `X-Autoreply`, `X-Autorespond`, `X-Autoresponder`, `X-Autoreply-From` and
//!    `X-Mail-Autoreply`, with any non-empty value;
//! 8. a null `Return-Path` (`<>`), which RFC 5321 reserves for automatic mail;
//! 9. a `From`, `Sender` or `Return-Path` whose local part (before any `+tag`) is one of
//!    [`ROBOT_LOCAL_PARTS`], or starts with `noreply`, `no-reply`, `donotreply` or
//!    `do-not-reply`.
//!
//! Subjects such as "Out of office" are not used: they are localised without end and
//! people write them too.

use std::fmt;

use crate::message::{InboundMessage, ReturnPath};

/// The header name Tend uses to mark mail it sent, unless configured otherwise.
pub const DEFAULT_LOOP_HEADER: &str = "X-Tend-Loop";

/// Local parts of addresses that only machines send from (compared without case).
pub const ROBOT_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "bounce",
    "bounces",
    "autoreply",
    "auto-reply",
];

/// Prefixes of local parts that only machines send from, such as `noreply-billing`.
const ROBOT_LOCAL_PREFIXES: &[&str] = &["noreply", "no-reply", "donotreply", "do-not-reply"];

const PRECEDENCE_VALUES: &[&str] = &["bulk", "junk", "list", "auto_reply", "auto-reply"];

const AUTO_REPLY_HEADERS: &[&str] = &[
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Autoreply-From",
    "X-Mail-Autoreply",
];

/// The header that marks mail sent by this Tend instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopMarker {
    /// The header name, such as [`DEFAULT_LOOP_HEADER`].
    pub header: String,
    /// The value this instance writes into it; mail carrying another value came from
    /// another Tend instance and is judged by the other rules.
    pub instance_id: String,
}

impl LoopMarker {
    /// Creates a marker with [`DEFAULT_LOOP_HEADER`] and the given instance id.
    pub fn new(instance_id: impl Into<String>) -> Self {
        LoopMarker {
            header: DEFAULT_LOOP_HEADER.to_string(),
            instance_id: instance_id.into(),
        }
    }
}

/// Reason a message counts as machine-made. Each reason names the header that showed it, for
/// the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotReason {
    /// This Tend instance sent the message.
    OwnMessage {
        header: String,
        value: String,
    },
    /// The message is a `multipart/report`, such as a bounce.
    Report {
        report_type: String,
    },
    AutoSubmitted {
        value: String,
    },
    AutoResponseSuppress {
        value: String,
    },
    Precedence {
        value: String,
    },
    /// `List-Id` or `List-Unsubscribe` is present.
    MailingList {
        header: String,
        value: String,
    },
    /// One of the vendor auto-reply headers is present.
    AutoReplyHeader {
        header: String,
        value: String,
    },
    /// `Return-Path: <>`.
    NullReturnPath,
    /// `From`, `Sender` or `Return-Path` is a machine address such as `mailer-daemon@`.
    RobotSender {
        header: String,
        address: String,
    },
}

impl RobotReason {
    /// Returns the name of the header that showed the reason.
    pub fn header(&self) -> &str {
        match self {
            RobotReason::OwnMessage { header, .. }
            | RobotReason::MailingList { header, .. }
            | RobotReason::AutoReplyHeader { header, .. }
            | RobotReason::RobotSender { header, .. } => header,
            RobotReason::Report { .. } => "Content-Type",
            RobotReason::AutoSubmitted { .. } => "Auto-Submitted",
            RobotReason::AutoResponseSuppress { .. } => "X-Auto-Response-Suppress",
            RobotReason::Precedence { .. } => "Precedence",
            RobotReason::NullReturnPath => "Return-Path",
        }
    }

    /// Returns the header value that showed the reason.
    pub fn value(&self) -> String {
        match self {
            RobotReason::OwnMessage { value, .. }
            | RobotReason::AutoSubmitted { value }
            | RobotReason::AutoResponseSuppress { value }
            | RobotReason::Precedence { value }
            | RobotReason::MailingList { value, .. }
            | RobotReason::AutoReplyHeader { value, .. } => value.clone(),
            RobotReason::Report { report_type } => {
                format!("multipart/report; report-type={report_type}")
            }
            RobotReason::NullReturnPath => "<>".to_string(),
            RobotReason::RobotSender { address, .. } => address.clone(),
        }
    }
}

impl fmt::Display for RobotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.header(), self.value())
    }
}

/// Returns the first reason the message counts as machine-made, or `None` for mail that
/// looks written by a person.
pub fn robot(message: &InboundMessage, marker: &LoopMarker) -> Option<RobotReason> {
    robot_reasons(message, marker).into_iter().next()
}

/// Returns every reason the message counts as machine-made, strongest first.
pub fn robot_reasons(message: &InboundMessage, marker: &LoopMarker) -> Vec<RobotReason> {
    let mut reasons = Vec::new();

    for value in message.header_values(&marker.header) {
        if value.trim().eq_ignore_ascii_case(marker.instance_id.trim()) {
            reasons.push(RobotReason::OwnMessage {
                header: marker.header.clone(),
                value: value.to_string(),
            });
            break;
        }
    }

    if let Some(report) = &message.report {
        reasons.push(RobotReason::Report {
            report_type: report.report_type.clone(),
        });
    }

    if let Some(value) = message.header("Auto-Submitted") {
        let keyword = first_token(value);
        if !keyword.is_empty() && keyword != "no" {
            reasons.push(RobotReason::AutoSubmitted {
                value: value.to_string(),
            });
        }
    }

    if let Some(value) = message.header("X-Auto-Response-Suppress") {
        let suppresses = value
            .split([',', ' '])
            .map(str::trim)
            .any(|flag| !flag.is_empty() && !flag.eq_ignore_ascii_case("none"));
        if suppresses {
            reasons.push(RobotReason::AutoResponseSuppress {
                value: value.to_string(),
            });
        }
    }

    if let Some(value) = message.header("Precedence")
        && PRECEDENCE_VALUES.contains(&first_token(value).as_str())
    {
        reasons.push(RobotReason::Precedence {
            value: value.to_string(),
        });
    }

    for header in ["List-Id", "List-Unsubscribe"] {
        if let Some(value) = message
            .header(header)
            .filter(|value| !value.trim().is_empty())
        {
            reasons.push(RobotReason::MailingList {
                header: header.to_string(),
                value: value.to_string(),
            });
        }
    }

    for header in AUTO_REPLY_HEADERS {
        if let Some(value) = message
            .header(header)
            .filter(|value| !value.trim().is_empty())
        {
            reasons.push(RobotReason::AutoReplyHeader {
                header: header.to_string(),
                value: value.to_string(),
            });
        }
    }

    if message.return_path == Some(ReturnPath::Null) {
        reasons.push(RobotReason::NullReturnPath);
    }

    let senders = [
        (
            "From",
            message
                .from
                .as_ref()
                .map(|mailbox| mailbox.address.as_str()),
        ),
        (
            "Sender",
            message
                .sender
                .as_ref()
                .map(|mailbox| mailbox.address.as_str()),
        ),
        (
            "Return-Path",
            match &message.return_path {
                Some(ReturnPath::Address(address)) => Some(address.as_str()),
                _ => None,
            },
        ),
    ];
    for (header, address) in senders {
        if let Some(address) = address.filter(|address| is_robot_address(address)) {
            reasons.push(RobotReason::RobotSender {
                header: header.to_string(),
                address: address.to_string(),
            });
        }
    }
    reasons
}

/// Returns whether the local part of `address` (before `@` and any `+tag`) names a machine sender.
pub fn is_robot_address(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    let local = local
        .split('+')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ROBOT_LOCAL_PARTS.contains(&local.as_str())
        || ROBOT_LOCAL_PREFIXES
            .iter()
            .any(|prefix| local.starts_with(prefix))
}

/// Returns the first id in `In-Reply-To` or `References` for which `is_own_automatic`
/// returns true, which marks a reply to an acknowledgement or notification that Tend sent
/// automatically. A person may have written such a reply, so it is not a robot. It must
/// still get no automatic reply, because two help desks would otherwise acknowledge each
/// other without end.
pub fn replies_to_automatic(
    message: &InboundMessage,
    is_own_automatic: impl Fn(&str) -> bool,
) -> Option<&str> {
    message
        .in_reply_to
        .iter()
        .chain(&message.references)
        .map(String::as_str)
        .find(|id| is_own_automatic(id))
}

/// Returns the first `;`- or space-separated token of a header value, lower case.
fn first_token(value: &str) -> String {
    value
        .split([';', ' ', '\t', ','])
        .find(|token| !token.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn with_headers(headers: &str) -> InboundMessage {
        let raw = format!(
            "From: Requester <user@example.org>\nTo: helpdesk@example.com\nSubject: Test\nMessage-ID: <t@example.org>\n{headers}\n\nBody\n"
        );
        parse(raw.as_bytes()).expect("test message parses")
    }

    fn marker() -> LoopMarker {
        LoopMarker::new("tend-prod-1")
    }

    #[test]
    fn person_is_not_robot() {
        assert_eq!(
            robot(&with_headers("X-Mailer: Thunderbird"), &marker()),
            None
        );
    }

    #[test]
    fn auto_submitted_values() {
        let reason = robot(&with_headers("Auto-Submitted: auto-replied"), &marker());
        assert_eq!(
            reason,
            Some(RobotReason::AutoSubmitted {
                value: "auto-replied".into()
            })
        );
        assert_eq!(robot(&with_headers("Auto-Submitted: No"), &marker()), None);
        assert!(
            robot(
                &with_headers("Auto-Submitted: auto-generated; owner=x"),
                &marker()
            )
            .is_some()
        );
    }

    #[test]
    fn auto_response_suppress_values() {
        assert!(robot(&with_headers("X-Auto-Response-Suppress: All"), &marker()).is_some());
        assert!(
            robot(
                &with_headers("X-Auto-Response-Suppress: OOF, AutoReply"),
                &marker()
            )
            .is_some()
        );
        assert_eq!(
            robot(&with_headers("X-Auto-Response-Suppress: None"), &marker()),
            None
        );
    }

    #[test]
    fn precedence_values() {
        for value in ["bulk", "Junk", "list", "auto_reply"] {
            let message = with_headers(&format!("Precedence: {value}"));
            assert_eq!(
                robot(&message, &marker())
                    .map(|r| r.header().to_string())
                    .as_deref(),
                Some("Precedence"),
                "{value}"
            );
        }
        assert_eq!(
            robot(&with_headers("Precedence: first-class"), &marker()),
            None
        );
    }

    #[test]
    fn list_headers() {
        let reason = robot(
            &with_headers("List-Id: <users.lists.example.org>"),
            &marker(),
        )
        .expect("robot");
        assert_eq!(reason.header(), "List-Id");
        let reason = robot(
            &with_headers("List-Unsubscribe: <mailto:leave@example.org>"),
            &marker(),
        )
        .expect("robot");
        assert_eq!(reason.header(), "List-Unsubscribe");
    }

    #[test]
    fn vendor_auto_reply_headers() {
        for header in AUTO_REPLY_HEADERS {
            let reason = robot(&with_headers(&format!("{header}: yes")), &marker()).expect("robot");
            assert_eq!(reason.header(), *header);
        }
    }

    #[test]
    fn null_return_path() {
        let reason = robot(&with_headers("Return-Path: <>"), &marker()).expect("robot");
        assert_eq!(reason, RobotReason::NullReturnPath);
        assert_eq!(reason.to_string(), "Return-Path: <>");
    }

    #[test]
    fn robot_senders() {
        for address in [
            "MAILER-DAEMON@mx.example.org",
            "postmaster@example.org",
            "noreply@example.org",
            "no-reply+abc@example.org",
            "noreply-billing@example.org",
            "do_not_reply@example.org",
        ] {
            assert!(is_robot_address(address), "{address}");
        }
        for address in [
            "user@example.org",
            "replyto@example.org",
            "bouncer-fan@example.org",
        ] {
            assert!(!is_robot_address(address), "{address}");
        }
    }

    #[test]
    fn sender_header_named() {
        let message = with_headers("Sender: <mailer-daemon@example.org>");
        let reason = robot(&message, &marker()).expect("robot");
        assert_eq!(reason.header(), "Sender");
    }

    #[test]
    fn own_loop_header() {
        let message = with_headers("X-Tend-Loop: tend-prod-1");
        let reasons = robot_reasons(&message, &marker());
        assert_eq!(
            reasons.first(),
            Some(&RobotReason::OwnMessage {
                header: "X-Tend-Loop".into(),
                value: "tend-prod-1".into()
            })
        );
        let other = with_headers("X-Tend-Loop: tend-vendor-7");
        assert_eq!(robot(&other, &marker()), None);
    }

    #[test]
    fn configured_loop_header_name() {
        let marker = LoopMarker {
            header: "X-Helpdesk-Origin".into(),
            instance_id: "abc".into(),
        };
        let message = with_headers("X-Helpdesk-Origin: abc");
        assert_eq!(
            robot(&message, &marker)
                .map(|r| r.header().to_string())
                .as_deref(),
            Some("X-Helpdesk-Origin")
        );
    }

    #[test]
    fn all_reasons_listed() {
        let message =
            with_headers("Auto-Submitted: auto-replied\nPrecedence: bulk\nReturn-Path: <>");
        let headers: Vec<String> = robot_reasons(&message, &marker())
            .iter()
            .map(|reason| reason.header().to_string())
            .collect();
        assert_eq!(headers, ["Auto-Submitted", "Precedence", "Return-Path"]);
    }

    #[test]
    fn reply_to_own_automatic_message() {
        let message = with_headers(
            "In-Reply-To: <autoreply-117904@helpdesk.example.com>\nReferences: <x@vendor.example.net> <autoreply-117904@helpdesk.example.com>",
        );
        let found = replies_to_automatic(&message, |id| id.starts_with("autoreply-"));
        assert_eq!(found, Some("autoreply-117904@helpdesk.example.com"));
        assert_eq!(replies_to_automatic(&message, |_| false), None);
    }
}
