//! The outbound half: building a notification as a MIME message with the headers that
//! keep threads together and robots quiet, and sending it over SMTP with lettre 0.11.
//!
//! Every message carries its Message-ID, `In-Reply-To` and `References` as given, the
//! loop header [`DEFAULT_LOOP_HEADER`] so Tend's intake never replies to its own mail, and, unless a
//! person wrote it, `Auto-Submitted` (RFC 3834) with `X-Auto-Response-Suppress: All`
//! (which Exchange honours) so that out-of-office robots do not answer it.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox as Address, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::robots::DEFAULT_LOOP_HEADER;

/// How long one SMTP conversation may take before it counts as failed.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A notification ready to send. Message-IDs are without angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub from_address: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// Oldest first.
    pub references: Vec<String>,
    /// The `Auto-Submitted` value (`auto-replied` or `auto-generated`), or none for mail a
    /// person wrote.
    pub auto_submitted: Option<String>,
    /// The value of the loop header, which names the Tend instance.
    pub loop_instance: String,
}

/// A message that could not be built or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message itself is wrong (an invalid address); sending it again cannot help.
    #[error("{0}")]
    Invalid(String),
    /// The SMTP server rejected the message for good (a 5xx reply).
    #[error("the SMTP server rejected the message: {0}")]
    Permanent(String),
    /// The SMTP server could not be reached or replied with a temporary failure (4xx).
    #[error("sending failed, to be tried again: {0}")]
    Temporary(String),
}

impl SendError {
    /// Checks whether another attempt may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, SendError::Temporary(_))
    }
}

/// Builds the MIME message of `mail`: text only, or text and HTML as alternatives.
pub fn build_message(mail: &OutgoingMail) -> Result<Message, SendError> {
    let address = |what: &str, text: &str, name: Option<&String>| -> Result<Address, SendError> {
        let email = text.parse().map_err(|error| {
            SendError::Invalid(format!(
                "the {what} address `{text}` is invalid ({error}): correct it"
            ))
        })?;
        Ok(Address::new(name.cloned(), email))
    };
    let mut builder = Message::builder()
        .from(address(
            "sender",
            &mail.from_address,
            mail.from_name.as_ref(),
        )?)
        .to(address("recipient", &mail.to, None)?)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .date_now();
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(address("reply-to", reply_to, None)?);
    }
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !mail.references.is_empty() {
        let references: Vec<String> = mail.references.iter().map(|id| format!("<{id}>")).collect();
        builder = builder.references(references.join(" "));
    }
    builder = builder.raw_header(header(DEFAULT_LOOP_HEADER, &mail.loop_instance)?);
    if let Some(kind) = &mail.auto_submitted {
        builder = builder
            .raw_header(header("Auto-Submitted", kind)?)
            .raw_header(header("X-Auto-Response-Suppress", "All")?);
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone());
    let built = match &mail.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    built.map_err(|error| SendError::Invalid(format!("the message cannot be built: {error}")))
}

fn header(name: &str, value: &str) -> Result<HeaderValue, SendError> {
    let name = HeaderName::new_from_ascii(name.to_owned())
        .map_err(|error| SendError::Invalid(format!("invalid header name `{name}`: {error}")))?;
    Ok(HeaderValue::new(name, value.to_owned()))
}

/// An SMTP connection pool for one server.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The URL without its password, for logs.
    display: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("url", &self.display)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Creates a sender for `url` in lettre's form: `smtp://host:port` (plain),
    /// `smtp://host:port?tls=required` (STARTTLS), `smtps://host:port` (TLS), with
    /// `user:password@` before the host for authentication.
    pub fn from_url(url: &str) -> Result<SmtpSender, SendError> {
        let display = redact(url);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| {
                SendError::Invalid(format!(
                    "invalid SMTP URL `{display}` ({error}): write it as smtp://host:port, smtp://host:port?tls=required for STARTTLS or smtps://host:port for TLS, with user:password@ before the host for authentication"
                ))
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(SmtpSender { transport, display })
    }

    /// Returns the URL without its password.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    /// Sends `mail` and returns the server's reply.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<String, SendError> {
        let message = build_message(mail)?;
        match self.transport.send(message).await {
            Ok(response) => Ok(response.message().collect::<Vec<_>>().join(" ")),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Temporary(error.to_string())),
        }
    }
}

/// Replaces the password of `user:password@` in a URL with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(auto: Option<&str>) -> OutgoingMail {
        OutgoingMail {
            from_address: "support@example.com".into(),
            from_name: Some("Service desk".into()),
            reply_to: None,
            to: "user@example.org".into(),
            subject: "[INC0000001] We received: Printer".into(),
            text: "Body with {{ 7*7 }}".into(),
            html: Some("<p>Body</p>".into()),
            message_id: "tend.1.abc@example.com".into(),
            in_reply_to: Some("orig@mail.example.org".into()),
            references: vec!["orig@mail.example.org".into()],
            auto_submitted: auto.map(str::to_owned),
            loop_instance: "tend".into(),
        }
    }

    fn formatted(mail: &OutgoingMail) -> String {
        String::from_utf8(build_message(mail).expect("the message builds").formatted())
            .expect("the message is UTF-8")
    }

    #[test]
    fn automatic_mail_has_loop_headers() {
        let text = formatted(&mail(Some("auto-replied")));
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
        assert!(text.contains("X-Auto-Response-Suppress: All\r\n"), "{text}");
        assert!(text.contains("X-Tend-Loop: tend\r\n"), "{text}");
        assert!(
            text.contains("Message-ID: <tend.1.abc@example.com>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <orig@mail.example.org>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("References: <orig@mail.example.org>\r\n"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[test]
    fn personal_mail_has_no_auto_submitted() {
        let text = formatted(&mail(None));
        assert!(!text.contains("Auto-Submitted"), "{text}");
        assert!(!text.contains("X-Auto-Response-Suppress"), "{text}");
    }

    #[test]
    fn invalid_recipient_names_the_address() {
        let mut broken = mail(None);
        broken.to = "not an address".into();
        let error = build_message(&broken).expect_err("the address is invalid");
        assert!(error.to_string().contains("`not an address`"), "{error}");
        assert!(!error.is_temporary());
    }

    #[test]
    fn url_password_is_redacted() {
        assert_eq!(
            redact("smtps://tend:secret@mail.example.com:465"),
            "smtps://tend:***@mail.example.com:465"
        );
        assert_eq!(redact("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    }
}
