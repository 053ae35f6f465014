//! The machine-readable part of `multipart/report` messages (RFC 6522): delivery status
//! notifications (RFC 3464), read receipts (RFC 8098) and the headers of the message a
//! report is about.

use crate::headers;
use crate::message::{RecipientStatus, Report};
use crate::parse::Context;

/// Reads the report of a `multipart/report` message; `None` for any other message.
pub(crate) fn read(context: &mut Context<'_, '_>) -> Option<Report> {
    let root = context.message.root_part();
    if context.media_type(root).as_deref() != Some("multipart/report") {
        return None;
    }
    let report_type = context
        .content_type_parameter(root, "report-type")
        .unwrap_or_default()
        .to_ascii_lowercase();

    let mut report = Report {
        report_type,
        original_message_id: None,
        recipients: Vec::new(),
    };
    for id in 1..context.message.parts.len() as u32 {
        let Some(part) = context.part(id) else {
            continue;
        };
        let media_type = context.media_type(part).unwrap_or_default();
        match media_type.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                let bytes = context.part_bytes(id);
                report.recipients.extend(delivery_status(&bytes));
            }
            "message/disposition-notification" | "message/global-disposition-notification" => {
                let bytes = context.part_bytes(id);
                if report.original_message_id.is_none() {
                    report.original_message_id =
                        first_id(&field_groups(&bytes), "original-message-id");
                }
            }
            "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global-headers"
            | "message/rfc822"
            | "message/global" => {
                let bytes = context.part_bytes(id);
                if report.original_message_id.is_none() {
                    report.original_message_id = first_id(&field_groups(&bytes), "message-id");
                }
            }
            _ => {}
        }
    }
    Some(report)
}

/// Reads the per-recipient groups of a `message/delivery-status` part: every group of
/// fields that has a `Final-Recipient` or `Original-Recipient`.
fn delivery_status(bytes: &[u8]) -> Vec<RecipientStatus> {
    field_groups(bytes)
        .iter()
        .filter(|group| {
            group
                .iter()
                .any(|(name, _)| name == "final-recipient" || name == "original-recipient")
        })
        .map(|group| {
            let field = |name: &str| {
                group
                    .iter()
                    .find(|(field, _)| field == name)
                    .map(|(_, value)| value.clone())
                    .filter(|value| !value.is_empty())
            };
            RecipientStatus {
                final_recipient: field("final-recipient")
                    .or_else(|| field("original-recipient"))
                    .map(|value| strip_address_type(&value)),
                action: field("action").map(|value| value.to_ascii_lowercase()),
                status: field("status")
                    .and_then(|value| value.split_whitespace().next().map(str::to_string)),
                diagnostic: field("diagnostic-code"),
            }
        })
        .collect()
}

/// Removes the address type of a DSN address field: `rfc822; user@example.org` becomes
/// `user@example.org`.
fn strip_address_type(value: &str) -> String {
    let address = match value.split_once(';') {
        Some((_, address)) => address,
        None => value,
    };
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn first_id(groups: &[Vec<(String, String)>], name: &str) -> Option<String> {
    groups.first()?.iter().find_map(|(field, value)| {
        (field == name)
            .then(|| headers::message_ids(value.as_bytes()).into_iter().next())
            .flatten()
    })
}

/// Splits header-style text into groups of `(lower-case name, unfolded value)` fields;
/// blank lines separate the groups.
fn field_groups(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(bytes);
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\nAction: Failed\r\nStatus: 5.1.1 (bad mailbox)\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n  in virtual table\r\n\r\nFinal-Recipient: RFC822; <late@example.org>\r\nAction: delayed\r\nStatus: 4.4.1\r\n";

    #[test]
    fn recipients_of_delivery_status() {
        let recipients = delivery_status(STATUS);
        assert_eq!(recipients.len(), 2);
        assert_eq!(
            recipients[0].final_recipient.as_deref(),
            Some("gone@example.org")
        );
        assert_eq!(recipients[0].action.as_deref(), Some("failed"));
        assert_eq!(recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            recipients[0].diagnostic.as_deref(),
            Some("smtp; 550 5.1.1 User unknown in virtual table")
        );
        assert_eq!(
            recipients[1].final_recipient.as_deref(),
            Some("late@example.org")
        );
        assert_eq!(recipients[1].action.as_deref(), Some("delayed"));
    }

    #[test]
    fn message_id_of_returned_headers() {
        let groups = field_groups(b"From: helpdesk@example.com\nMessage-ID:\n <notif-48-3@helpdesk.example.com>\n\nbody: not a header\n");
        assert_eq!(
            first_id(&groups, "message-id").as_deref(),
            Some("notif-48-3@helpdesk.example.com")
        );
    }
}
