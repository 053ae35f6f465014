//! Stored mail in the console. The quarantine page lists the messages kept aside for a
//! person, with a retry button for each. The message page shows one stored message as it
//! was received: its headers, its text, its files and, when it had HTML, the sanitised HTML
//! in a sandboxed frame where inline images (`cid:` sources) show the files they name.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tend_store::mail::{AttachmentInfo, MailMessage, MailStatus};

use super::forms::{FormData, FormError};
use super::session::Viewer;
use super::{format_time, html_response};
use crate::AppState;
use crate::error::ApiError;

/// How many quarantined messages the page lists, newest first.
const QUARANTINE_PAGE: u64 = 200;

/// The frame that shows a message's HTML may load images from Tend and nothing else, and
/// runs no script: `sandbox` without `allow-scripts` also gives it an origin of its own.
const HTML_FRAME_POLICY: &str = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// The message page embeds the HTML frame; otherwise it is as strict as every page.
const MESSAGE_PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Image types a browser shows inline and that carry no script (SVG can, so it is not here).
const INLINE_IMAGE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

#[derive(Debug, Serialize)]
struct QuarantineRow {
    id: i64,
    href: String,
    raw_url: String,
    received: String,
    received_iso: String,
    status: String,
    mailbox: String,
    from: String,
    subject: String,
    reason: String,
    attempts: i64,
    retry_action: String,
}

#[derive(Debug, Serialize)]
struct QuarantinePage {
    rows: Vec<QuarantineRow>,
    notice: Option<String>,
    notice_error: bool,
}

/// `GET /mail/quarantine`: the messages kept aside, for staff.
pub async fn quarantine(State(state): State<AppState>, viewer: Viewer) -> Response {
    render_quarantine(&state, &viewer, StatusCode::OK, None).await
}

/// `POST /mail/quarantine/{id}/retry`: processes a kept message again and shows the list
/// with what became of it.
pub async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<FormData, FormError>,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(error) => return error.page(&state.web, Some(&viewer)),
    };
    if !viewer.csrf_valid(&headers, Some(&form)) {
        return state.web.csrf_rejected(&viewer);
    }
    if let Err(error) = require_staff(&viewer) {
        return state.web.error(Some(&viewer), &error);
    }
    let Ok(id) = id.parse::<i64>() else {
        let error = ApiError::NotFound {
            what: "mail message",
            key: id,
        };
        return state.web.error(Some(&viewer), &error);
    };
    let (status, notice) = match state.commands.retry_mail(id).await {
        Ok(outcome) => {
            let mut notice = format!("Message {id} was retried: {}", outcome.status);
            if let Some(record) = &outcome.record {
                notice.push_str(&format!(
                    ", {} {record}",
                    outcome.effect.as_deref().unwrap_or("reached")
                ));
            }
            if let Some(reason) = &outcome.reason {
                notice.push_str(&format!(". {reason}"));
            }
            (StatusCode::OK, (notice, false))
        }
        Err(error) => (
            error.status(),
            (
                format!("Message {id} was not retried: {}", error.public_message()),
                true,
            ),
        ),
    };
    render_quarantine(&state, &viewer, status, Some(notice)).await
}

async fn render_quarantine(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<(String, bool)>,
) -> Response {
    if let Err(error) = require_staff(viewer) {
        return state.web.error(Some(viewer), &error);
    }
    let messages = match state.commands.store.quarantined_mail(QUARANTINE_PAGE).await {
        Ok(messages) => messages,
        Err(error) => return state.web.error(Some(viewer), &error.into()),
    };
    let rows = messages
        .into_iter()
        .map(|message| QuarantineRow {
            id: message.id,
            href: format!("/mail/messages/{}", message.id),
            raw_url: format!("/api/v1/mail/messages/{}/raw", message.id),
            received: format_time(message.received_at),
            received_iso: message.received_at.to_rfc3339(),
            status: message.status.as_str().to_owned(),
            mailbox: message.mailbox,
            from: message.from_address.unwrap_or_else(|| "(no sender)".into()),
            subject: message.subject.unwrap_or_else(|| "(no subject)".into()),
            reason: message
                .reason
                .unwrap_or_else(|| "stored, and its processing never finished".into()),
            attempts: message.attempts,
            retry_action: format!("/mail/quarantine/{}/retry", message.id),
        })
        .collect();
    let (notice, notice_error) = notice.map_or((None, false), |(text, error)| (Some(text), error));
    state.web.page(
        status,
        "mail_quarantine",
        Some(viewer),
        "Mail quarantine",
        &QuarantinePage {
            rows,
            notice,
            notice_error,
        },
    )
}

/// The view of one stored file, shared with the record page.
#[derive(Debug, Serialize)]
pub(super) struct AttachmentRow {
    name: String,
    content_type: String,
    size: String,
    sha256: String,
    inline: bool,
    url: Option<String>,
    skipped: Option<String>,
    /// The message the file came with, on the record page.
    pub(super) message_href: Option<String>,
}

#[derive(Debug, Serialize)]
struct MessagePage {
    id: i64,
    subject: String,
    from: String,
    to: String,
    cc: String,
    date: String,
    message_id: String,
    mailbox: String,
    source: String,
    received: String,
    status: String,
    reason: Option<String>,
    record: Option<RecordLink>,
    text: String,
    html_url: Option<String>,
    attachments: Vec<AttachmentRow>,
    warnings: Vec<String>,
    raw_url: Option<String>,
    retry_action: Option<String>,
    parse_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecordLink {
    number: String,
    href: String,
    effect: String,
}

/// `GET /mail/messages/{id}`: one stored message, for staff and for the requester of the
/// record it reached.
pub async fn message(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (message, raw) = match readable_message(&state, &viewer, &id).await {
        Ok(found) => found,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let attachments = match state.commands.store.attachments_of_mail(message.id).await {
        Ok(attachments) => attachments,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let staff = viewer.actor().is_staff();
    let parsed = tokio::task::spawn_blocking(move || tend_mail::parse(&raw)).await;
    let (parsed, parse_error) = match parsed {
        Ok(Ok(parsed)) => (Some(parsed), None),
        Ok(Err(error)) => (None, Some(format!("The message does not parse: {error}"))),
        Err(panic) => (None, Some(format!("The mail parser failed: {panic}"))),
    };
    let list = |mailboxes: &[tend_mail::Mailbox]| {
        mailboxes
            .iter()
            .map(mailbox_text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let retry_action = (staff
        && matches!(
            message.status,
            MailStatus::Quarantined | MailStatus::Rejected | MailStatus::Received
        ))
    .then(|| format!("/mail/quarantine/{}/retry", message.id));
    let page = MessagePage {
        id: message.id,
        subject: message
            .subject
            .clone()
            .unwrap_or_else(|| "(no subject)".into()),
        from: parsed
            .as_ref()
            .and_then(|parsed| parsed.from.as_ref())
            .map(mailbox_text)
            .or_else(|| message.from_address.clone())
            .unwrap_or_else(|| "(no sender)".into()),
        to: parsed
            .as_ref()
            .map(|parsed| list(&parsed.to))
            .unwrap_or_default(),
        cc: parsed
            .as_ref()
            .map(|parsed| list(&parsed.cc))
            .unwrap_or_default(),
        date: parsed
            .as_ref()
            .and_then(|parsed| parsed.date)
            .map(|date| date.to_rfc2822())
            .unwrap_or_else(|| "(no date)".into()),
        message_id: message
            .message_id
            .clone()
            .unwrap_or_else(|| "(none)".into()),
        mailbox: message.mailbox.clone(),
        source: message.source.clone(),
        received: format_time(message.received_at),
        status: message.status.as_str().to_owned(),
        reason: message.reason.clone(),
        record: message.record_number.as_ref().map(|number| RecordLink {
            number: number.clone(),
            href: format!("/records/{number}"),
            effect: message.effect.clone().unwrap_or_else(|| "reached".into()),
        }),
        text: parsed
            .as_ref()
            .map(|parsed| parsed.text.clone())
            .unwrap_or_default(),
        html_url: parsed
            .as_ref()
            .and_then(|parsed| parsed.html.as_ref())
            .map(|_| format!("/mail/messages/{}/html", message.id)),
        attachments: attachments.iter().map(attachment_row).collect(),
        warnings: message.warnings.clone(),
        raw_url: staff.then(|| format!("/api/v1/mail/messages/{}/raw", message.id)),
        retry_action,
        parse_error,
    };
    let title = format!("Message {}", message.id);
    let mut response = state
        .web
        .page(StatusCode::OK, "mail_message", Some(&viewer), &title, &page);
    if response.status() == StatusCode::OK {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(MESSAGE_PAGE_POLICY),
        );
    }
    response
}

/// `GET /mail/messages/{id}/html`: the message's sanitised HTML, for the frame of the
/// message page. `cid:` sources point at the message's stored inline files.
pub async fn message_html(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let (message, raw) = match readable_message(&state, &viewer, &id).await {
        Ok(found) => found,
        Err(error) => return state.web.error(Some(&viewer), &error),
    };
    let attachments = match state.commands.store.attachments_of_mail(message.id).await {
        Ok(attachments) => attachments,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let html = tokio::task::spawn_blocking(move || tend_mail::parse(&raw).ok()?.html)
        .await
        .ok()
        .flatten();
    let Some(html) = html else {
        let error = ApiError::NotFound {
            what: "HTML part of mail message",
            key: id,
        };
        return state.web.error(Some(&viewer), &error);
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head><body>{}</body></html>",
        point_cid_sources(&html, &attachments)
    );
    let mut response = html_response(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HTML_FRAME_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// `GET /attachments/{id}/inline`: a stored image shown in place, for the HTML frame.
/// Other files are only offered for download by `/api/v1/attachments/{id}`.
pub async fn inline_attachment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let not_found = || ApiError::NotFound {
        what: "inline image",
        key: id.clone(),
    };
    let Ok(number) = id.parse::<i64>() else {
        return state.web.error(Some(&viewer), &not_found());
    };
    let found = match state.commands.store.attachment(number).await {
        Ok(found) => found,
        Err(error) => return state.web.error(Some(&viewer), &error.into()),
    };
    let Some((info, Some(content))) = found else {
        return state.web.error(Some(&viewer), &not_found());
    };
    let content_type = info.content_type.to_ascii_lowercase();
    if !INLINE_IMAGE_TYPES.contains(&content_type.as_str()) {
        return state.web.error(Some(&viewer), &not_found());
    }
    let visible = match info.mail_message_id {
        Some(mail) => readable_message(&state, &viewer, &mail.to_string())
            .await
            .is_ok(),
        None => false,
    };
    if !visible {
        return state.web.error(Some(&viewer), &not_found());
    }
    let mut response = (StatusCode::OK, content).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

/// Reads stored message `id` with its raw bytes when the viewer may read it: staff always,
/// others when it reached a record they may see. Anything else is "not found", so the page
/// does not tell which messages exist.
async fn readable_message(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> Result<(MailMessage, Vec<u8>), ApiError> {
    let not_found = || ApiError::NotFound {
        what: "mail message",
        key: id.to_owned(),
    };
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let store = &state.commands.store;
    let message = store.mail_message(number).await?.ok_or_else(not_found)?;
    if !viewer.actor().is_staff() {
        let record = message.record_number.as_deref().ok_or_else(not_found)?;
        state
            .commands
            .visible(viewer.actor(), record)
            .await
            .map_err(|_| not_found())?;
    }
    let raw = store.mail_raw(number).await?.ok_or_else(not_found)?;
    Ok((message, raw))
}

/// Writes a mailbox as `Name <address>`, or the address alone.
fn mailbox_text(mailbox: &tend_mail::Mailbox) -> String {
    match mailbox.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => format!("{name} <{}>", mailbox.address),
        _ => mailbox.address.clone(),
    }
}

fn require_staff(viewer: &Viewer) -> Result<(), ApiError> {
    if viewer.actor().is_staff() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the mail quarantine is for staff: log in as a technician, process owner or admin"
                .into(),
        ))
    }
}

/// Describes a stored file for the record page and the message page.
pub(super) fn attachment_row(attachment: &AttachmentInfo) -> AttachmentRow {
    AttachmentRow {
        name: attachment.file_name.clone(),
        content_type: attachment.content_type.clone(),
        size: byte_size(attachment.size),
        sha256: attachment.sha256.chars().take(12).collect(),
        inline: attachment.inline,
        url: attachment
            .stored
            .then(|| format!("/api/v1/attachments/{}", attachment.id)),
        skipped: attachment.skipped.clone(),
        message_href: None,
    }
}

/// Writes a size for people: bytes, KiB or MiB.
fn byte_size(bytes: i64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if value < KIB * KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{:.1} MiB", value / (KIB * KIB))
    }
}

/// Rewrites `src="cid:ID"` in sanitised HTML to the stored inline image with that
/// Content-ID. A `cid:` naming no stored image is left as it is and shows nothing, since the
/// frame may load images from Tend only.
fn point_cid_sources(html: &str, attachments: &[AttachmentInfo]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = find_ignore_case(rest, "src=\"cid:") {
        let value_start = start + "src=\"cid:".len();
        let Some(length) = rest[value_start..].find('"') else {
            break;
        };
        let id = &rest[value_start..value_start + length];
        out.push_str(&rest[..start]);
        let target = decode_entities(id);
        match attachments.iter().find(|attachment| {
            attachment.stored
                && attachment
                    .content_id
                    .as_deref()
                    .is_some_and(|cid| cid.eq_ignore_ascii_case(target.trim()))
        }) {
            Some(attachment) => {
                out.push_str(&format!("src=\"/attachments/{}/inline\"", attachment.id));
            }
            None => out.push_str(&rest[start..value_start + length + 1]),
        }
        rest = &rest[value_start + length + 1..];
    }
    out.push_str(rest);
    out
}

/// Undoes the entity escaping the sanitiser applies to attribute values, enough to compare
/// a Content-ID (which may hold `&` or `%`).
fn decode_entities(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn image(id: i64, cid: &str, stored: bool) -> AttachmentInfo {
        AttachmentInfo {
            id,
            record_id: Some(1),
            mail_message_id: Some(1),
            file_name: "logo.png".into(),
            content_type: "image/png".into(),
            size: 10,
            sha256: "0".repeat(64),
            content_id: Some(cid.into()),
            inline: true,
            stored,
            skipped: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn cid_sources_point_at_stored_images() {
        let html = r#"<p>Hi</p><img src="cid:logo@example.org" alt="logo"><IMG SRC="cid:gone@x"><img src="cid:big@x">"#;
        let files = [image(7, "logo@example.org", true), image(8, "big@x", false)];
        let out = point_cid_sources(html, &files);
        assert_eq!(
            out,
            r#"<p>Hi</p><img src="/attachments/7/inline" alt="logo"><IMG SRC="cid:gone@x"><img src="cid:big@x">"#
        );
    }

    #[test]
    fn cid_with_escaped_ampersand_matches() {
        let html = r#"<img src="cid:a&amp;b@x">"#;
        let out = point_cid_sources(html, &[image(3, "a&b@x", true)]);
        assert_eq!(out, r#"<img src="/attachments/3/inline">"#);
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(byte_size(512), "512 B");
        assert_eq!(byte_size(2048), "2.0 KiB");
        assert_eq!(byte_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
