//! The email plugin sends messages about a record that an administrator lists in a YAML
//! file, such as `plugins/email/email.yaml`. Each message is one action, with its own
//! parameters, roles and approval, because the plugin API checks those per action: a
//! supplier escalation may need an approval that a status update to the requester does
//! not. A run renders the message's handlebars subject and bodies with the record, the
//! run's parameters, the actor and the run id. Values are data and never template
//! source, so `{{7*7}}` in a ticket's title is sent as written.
//!
//! The plugin does not connect to an SMTP server itself. It returns the rendered message
//! in [`ActionOutcome::mail`], and Tend queues it in its outbox in the same write as the
//! run's `action_finished` journal entry. The message thus takes the path of
//! notifications. It gets the sender and Message-ID domain of the mailbox of the record's
//! process, and `In-Reply-To` and `References` to the record's earlier mail, so replies
//! thread back to the record. Its subject gets the record tag. Addresses flagged after
//! bounces get nothing, and the outbox worker retries while the SMTP server is down.
//! Sending from the plugin with its own SMTP client would have duplicated all of that,
//! and a reply could not find its record unless the plugin also stored its Message-IDs
//! where the intake looks. `ActionOutcome::mail` is never read from an external plugin's
//! JSON, so only built-in plugins can send mail this way.
//!
//! Recipients are people on the record (requester, assignee, watchers), fixed addresses
//! in the file, and addresses given in parameters. An address from a parameter must
//! belong to one of the message's `allowed_domains`, because a run's parameters are
//! typed by a person and the message carries the record's content.

mod config;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, MailRecipient, OutgoingMail,
    Plugin, PluginError,
};

pub use config::DEFAULT_TIMEOUT_SECONDS;
use config::{Message, RecordRole, Renderer, check_address, parse_config};
pub use tend_plugin_api::ConfigError;

/// The email plugin, loaded from its configuration file.
#[derive(Debug)]
pub struct EmailPlugin {
    file: PathBuf,
    messages: Vec<Message>,
    specs: Vec<ActionSpec>,
    renderer: Renderer,
}

impl EmailPlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "email";

    /// Loads the configuration file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the email plugin's configuration: {error}. Check the path, or create the file with a `messages:` list",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads a configuration from its text; `file` names it in messages.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let (messages, renderer) = parse_config(file, text)?;
        let specs = messages.iter().map(|m| m.spec.clone()).collect();
        Ok(EmailPlugin {
            file: file.to_path_buf(),
            messages,
            specs,
            renderer,
        })
    }

    /// Path of the configuration file the plugin was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Renders `message` for `request` and lists its recipients, or returns why it must
    /// not be sent.
    fn compose(&self, message: &Message, request: &ActionRequest) -> Result<OutgoingMail, String> {
        let name = &message.spec.name;
        let Some(record) = &request.record else {
            return Err(format!(
                "message `{name}` is about a record, and this run belongs to none. Run it from a record"
            ));
        };

        let mut recipients: Vec<MailRecipient> = message
            .roles
            .iter()
            .map(|role| match role {
                RecordRole::Requester => MailRecipient::Requester,
                RecordRole::Assignee => MailRecipient::Assignee,
                RecordRole::Watchers => MailRecipient::Watchers,
            })
            .collect();
        recipients.extend(
            message
                .addresses
                .iter()
                .cloned()
                .map(MailRecipient::Address),
        );
        for param in &message.address_params {
            for address in param_addresses(request.params.get(param)) {
                self.check_param_address(message, param, &address)?;
                recipients.push(MailRecipient::Address(address.to_lowercase()));
            }
        }

        let data = json!({
            "record": record,
            "params": request.params,
            "actor": request.actor,
            "run_id": request.run_id,
        });
        let render = |registry: &handlebars::Handlebars<'static>, template: String| {
            registry
                .render(&template, &data)
                .map_err(|error| format!("rendering `{template}` failed: {error}"))
        };
        let subject = render(&self.renderer.text, message.subject_template())?;
        let text = render(&self.renderer.text, message.text_template())?;
        let html = if message.has_html {
            Some(render(&self.renderer.html, message.html_template())?)
        } else {
            None
        };
        Ok(OutgoingMail {
            name: name.clone(),
            recipients,
            subject: one_line(&subject),
            text,
            html,
        })
    }

    /// Checks an address that a run gave in parameter `param`: its syntax, and that its
    /// domain is one of the message's allowed domains.
    fn check_param_address(
        &self,
        message: &Message,
        param: &str,
        address: &str,
    ) -> Result<(), String> {
        let name = &message.spec.name;
        if let Err(reason) = check_address(address) {
            return Err(format!(
                "parameter `{param}` is `{address}`, which is not an email address: {reason}. Give one address such as name@{}",
                message
                    .allowed_domains
                    .first()
                    .map_or("example.com", String::as_str)
            ));
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_lowercase())
            .unwrap_or_default();
        if !message.allowed_domains.contains(&domain) {
            return Err(format!(
                "parameter `{param}` is `{address}`, whose domain {domain} is not among the domains message `{name}` may send to ({}). Use an address of one of them, or add {domain} to the message's `allowed_domains` in {}",
                message.allowed_domains.join(", "),
                self.file.display()
            ));
        }
        Ok(())
    }
}

/// Returns the addresses in a parameter's value: one for a string, each element for a
/// list, none for an absent or empty value.
fn param_addresses(value: Option<&Value>) -> Vec<String> {
    let texts: Vec<&str> = match value {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    texts
        .into_iter()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Joins the lines of a rendered subject with spaces, because a subject is one header
/// line and a line break in a ticket's title must not end it.
fn one_line(subject: &str) -> String {
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[async_trait::async_trait]
impl Plugin for EmailPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Sends templated messages about the record through Tend's outbox"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        _cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let message = self
            .messages
            .iter()
            .find(|message| message.spec.name == request.action)
            .ok_or_else(|| PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: request.action.clone(),
            })?;
        match self.compose(message, &request) {
            Ok(mail) => {
                let mut outcome =
                    ActionOutcome::succeeded(format!("Queued message `{}`", mail.name), "");
                outcome.data = json!({ "message": mail.name, "subject": mail.subject });
                outcome.mail = vec![mail];
                Ok(outcome)
            }
            Err(reason) => Ok(ActionOutcome::failed(format!("Not sent: {reason}"), "")),
        }
    }
}
