//! The configuration file of the email plugin, such as `plugins/email/email.yaml`: its
//! format, and the checks that run when it loads. Every problem of every message is
//! reported at once, each with the file, the message and the fix.

use std::path::Path;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, Template};
use indexmap::IndexMap;
use serde::Deserialize;
use tend_plugin_api::yaml::{YamlError, parse_yaml};
use tend_plugin_api::{ActionSpec, ConfigError, ParamSpec, ParamType, check_actions};

/// Seconds a run may take when a message sets no `timeout_seconds`. Rendering and
/// queueing take milliseconds, because the outbox worker sends the message later.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// Names a template variable may start with.
const ROOTS: [&str; 4] = ["record", "params", "actor", "run_id"];

/// Members of `record` in the template data.
const RECORD_MEMBERS: [&str; 6] = ["number", "process", "title", "state", "fields", "cis"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    messages: Vec<MessageFile>,
}

/// One message as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFile {
    name: String,
    label: String,
    #[serde(default)]
    description: String,
    subject: String,
    text: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    params: IndexMap<String, ParamSpec>,
    #[serde(default)]
    to: RecipientsFile,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    needs_approval: bool,
}

/// The recipients of a message as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientsFile {
    #[serde(default)]
    roles: Vec<RecordRole>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    params: Vec<String>,
}

/// A person on the record whom a message may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordRole {
    Requester,
    Assignee,
    Watchers,
}

/// One message, checked and ready to render.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub spec: ActionSpec,
    pub roles: Vec<RecordRole>,
    /// Fixed addresses, lowercase.
    pub addresses: Vec<String>,
    /// Names of `string` or `list` parameters whose values are recipient addresses.
    pub address_params: Vec<String>,
    /// Lowercase domains that addresses from parameters must belong to.
    pub allowed_domains: Vec<String>,
    pub has_html: bool,
}

impl Message {
    /// Name of the subject's template in the renderer.
    pub(crate) fn subject_template(&self) -> String {
        format!("{}.subject", self.spec.name)
    }

    pub(crate) fn text_template(&self) -> String {
        format!("{}.text", self.spec.name)
    }

    pub(crate) fn html_template(&self) -> String {
        format!("{}.html", self.spec.name)
    }
}

/// The templates of all messages: subjects and text bodies without escaping, because
/// they are plain text, and HTML bodies with HTML escaping of every value.
pub(crate) struct Renderer {
    pub text: Handlebars<'static>,
    pub html: Handlebars<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

/// Reads and checks a configuration file. `file` names the file in messages.
pub(crate) fn parse_config(
    file: &Path,
    text: &str,
) -> Result<(Vec<Message>, Renderer), ConfigError> {
    let file_name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        problems: vec![describe_yaml_error(file, text, &error)],
    })?;

    let mut renderer = Renderer {
        text: Handlebars::new(),
        html: Handlebars::new(),
    };
    renderer.text.register_escape_fn(handlebars::no_escape);
    let mut problems = Vec::new();
    if parsed.messages.is_empty() {
        problems.push(format!(
            "{file_name}: the file lists no messages. Add at least one under `messages:`, or remove the file to turn the email plugin off"
        ));
    }
    let mut messages = Vec::new();
    for message in parsed.messages {
        let at = format!("{file_name}: message `{}`", message.name);
        let mut own = Vec::new();
        let checked = check_message(message, &mut renderer, &mut own);
        problems.extend(own.into_iter().map(|problem| format!("{at}: {problem}")));
        messages.extend(checked);
    }

    let specs: Vec<ActionSpec> = messages.iter().map(|m| m.spec.clone()).collect();
    problems.extend(
        check_actions(&specs)
            .into_iter()
            .map(|problem| format!("{file_name}: {problem}")),
    );

    if problems.is_empty() {
        Ok((messages, renderer))
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Places a parse error: file, line and column, and the message by its name when the
/// error lies inside one.
fn describe_yaml_error(file: &Path, text: &str, error: &YamlError) -> String {
    let mut place = file.display().to_string();
    if let (Some(line), Some(column)) = (error.line, error.column) {
        place.push_str(&format!(":{line}:{column}"));
    }
    let field = if error.path.is_empty() {
        String::new()
    } else {
        format!("field `{}`: ", error.path)
    };
    let Some(index) = error.index_in("messages") else {
        return format!("{place}: {field}{}", error.message);
    };
    let name = serde_norway::from_str::<serde_norway::Value>(text)
        .ok()
        .and_then(|value| {
            let name = value.get("messages")?.get(index)?.get("name")?.as_str()?;
            Some(name.to_owned())
        });
    let message = match name {
        Some(name) => format!("message `{name}` (number {})", index + 1),
        None => format!("message number {}", index + 1),
    };
    format!("{place}: {message}: {field}{}", error.message)
}

/// Checks one message and builds it, registering its templates. Returns `None` when a
/// problem leaves nothing to build, with the problem pushed.
fn check_message(
    file: MessageFile,
    renderer: &mut Renderer,
    problems: &mut Vec<String>,
) -> Option<Message> {
    let param_names: Vec<&str> = file.params.keys().map(String::as_str).collect();

    if file.subject.trim().is_empty() {
        problems.push(String::from(
            "`subject` is empty. Write a subject, such as \"Update on {{record.title}}\"",
        ));
    }
    if file.text.trim().is_empty() {
        problems.push(String::from(
            "`text` is empty. Write the plain-text body; `html` may add an HTML version but never replaces it",
        ));
    }
    let subject = format!("{}.subject", file.name);
    let text = format!("{}.text", file.name);
    let html = format!("{}.html", file.name);
    compile(
        &mut renderer.text,
        "subject",
        &subject,
        &file.subject,
        &param_names,
        problems,
    );
    compile(
        &mut renderer.text,
        "text",
        &text,
        &file.text,
        &param_names,
        problems,
    );
    if let Some(source) = &file.html {
        compile(
            &mut renderer.html,
            "html",
            &html,
            source,
            &param_names,
            problems,
        );
    }

    let mut addresses = Vec::new();
    for address in &file.to.addresses {
        match check_address(address) {
            Ok(()) => addresses.push(address.to_lowercase()),
            Err(reason) => problems.push(format!(
                "`to.addresses` has `{address}`, which is not an email address: {reason}. Write it as name@example.com, without a display name"
            )),
        }
    }

    for name in &file.to.params {
        match file.params.get(name) {
            None => problems.push(format!(
                "`to.params` names parameter `{name}`, which the message does not declare. Declare it under `params` with type string or list"
            )),
            Some(spec) if !matches!(spec.kind, ParamType::String | ParamType::List) => {
                problems.push(format!(
                    "`to.params` names parameter `{name}`, whose type cannot hold an address. Give it type string (one address) or list (several)"
                ))
            }
            Some(_) => {}
        }
    }

    let mut allowed_domains = Vec::new();
    for domain in &file.allowed_domains {
        match check_domain(domain) {
            Ok(()) => allowed_domains.push(domain.to_lowercase()),
            Err(reason) => problems.push(format!(
                "`allowed_domains` has `{domain}`, which is not a domain name: {reason}. Write a name such as example.com, without `@` or a scheme"
            )),
        }
    }
    if !file.to.params.is_empty() && file.allowed_domains.is_empty() {
        problems.push(String::from(
            "`to.params` lets a run give addresses, but `allowed_domains` is empty, so every such address would be rejected. List the domains runs may send to, such as [example.com]",
        ));
    }
    if file.to.roles.is_empty() && file.to.addresses.is_empty() && file.to.params.is_empty() {
        problems.push(String::from(
            "the message has no recipients. Set `to.roles` (requester, assignee, watchers), `to.addresses` or `to.params`",
        ));
    }

    let timeout_seconds = file.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let spec = ActionSpec {
        name: file.name,
        label: file.label,
        description: file.description,
        params: file.params,
        timeout_seconds,
        roles: file.roles,
        needs_approval: file.needs_approval,
        // A run interrupted after the message was queued would send it twice.
        idempotent: false,
    };
    Some(Message {
        spec,
        roles: file.to.roles,
        addresses,
        address_params: file.to.params,
        allowed_domains,
        has_html: file.html.is_some(),
    })
}

/// Compiles one template into `registry` under `name`, and checks that its variables
/// start with a root of the template data and name declared parameters.
fn compile(
    registry: &mut Handlebars<'static>,
    field: &str,
    name: &str,
    source: &str,
    params: &[&str],
    problems: &mut Vec<String>,
) {
    let template = match Template::compile(source) {
        Ok(template) => template,
        Err(error) => {
            let place = match error.pos() {
                Some((line, column)) => format!(" at line {line}, column {column}"),
                None => String::new(),
            };
            problems.push(format!(
                "`{field}` is not a valid handlebars template{place}: {}. Check that braces match and that each block such as {{{{#if}}}} is closed",
                error.reason()
            ));
            return;
        }
    };
    let mut paths = Vec::new();
    collect_paths(&template.elements, &mut paths);
    for path in paths {
        if let Some(problem) = check_path(&path, params) {
            problems.push(format!("`{field}`: {problem}"));
        }
    }
    registry.register_template(name, template);
}

/// Collects the variables of a template's top level and of its `if` and `unless`
/// blocks. The insides of `each` and `with` refer to other data, so they are skipped.
fn collect_paths(elements: &[TemplateElement], paths: &mut Vec<String>) {
    for element in elements {
        match element {
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                if helper.params.is_empty() && helper.hash.is_empty() {
                    add_path(&helper.name, paths);
                }
                for parameter in &helper.params {
                    add_path(parameter, paths);
                }
            }
            TemplateElement::HelperBlock(helper) => {
                for parameter in &helper.params {
                    add_path(parameter, paths);
                }
                if matches!(helper.name.as_name(), Some("if" | "unless")) {
                    for block in [&helper.template, &helper.inverse].into_iter().flatten() {
                        collect_paths(&block.elements, paths);
                    }
                }
            }
            _ => {}
        }
    }
}

fn add_path(parameter: &Parameter, paths: &mut Vec<String>) {
    if let Parameter::Path(handlebars::Path::Relative(_)) = parameter
        && let Some(raw) = parameter.as_name()
        && !raw.starts_with(['@', '.'])
        && !raw.starts_with("this")
    {
        paths.push(raw.to_owned());
    }
}

/// Returns the problem of a variable that the template data cannot have.
fn check_path(path: &str, params: &[&str]) -> Option<String> {
    let mut segments = path.split(['.', '/']);
    let root = segments.next().unwrap_or_default();
    if !ROOTS.contains(&root) {
        return Some(format!(
            "`{{{{{path}}}}}` starts with `{root}`, which the template data does not have. Start it with record, params, actor or run_id"
        ));
    }
    let member = segments.next()?;
    match root {
        "params" if !params.contains(&member) => Some(format!(
            "`{{{{{path}}}}}` names parameter `{member}`, which the message does not declare. Declare it under `params`"
        )),
        "record" if !RECORD_MEMBERS.contains(&member) => Some(format!(
            "`{{{{{path}}}}}` names `{member}`, which a record does not have. Use number, process, title, state, fields or cis; a process field is record.fields.NAME"
        )),
        _ => None,
    }
}

/// Checks an address such as `ops@example.com`: one mailbox, no display name.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    let parsed: lettre::Address = address
        .parse()
        .map_err(|error: lettre::address::AddressError| error.to_string())?;
    check_domain(parsed.domain())
}

/// Checks a domain name: letters, digits, hyphens and dots, with a dot inside.
fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err(String::from("it is empty"));
    }
    if let Some(bad) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!("it contains `{}`", bad.escape_debug()));
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(String::from(
            "it needs a dot between labels, as in example.com",
        ));
    }
    Ok(())
}
