//! The two kinds of templates of an endpoint.
//!
//! - The URL may hold plain variables such as `{{record.number}}` in its path, query and
//!   fragment, never in its scheme, host or port. Each value is percent-encoded, so it
//!   stays inside one path segment or query value and cannot add `/`, `?`, `#` or `@`.
//! - The body is a JSON value tree whose string leaves are handlebars templates. A leaf
//!   renders to one JSON string, and `serde_json` writes that string with its own
//!   escaping, so a quote, backslash or line break in a ticket's title stays inside the
//!   string. A leaf that is exactly one variable, such as `"{{params.count}}"`, takes the
//!   variable's JSON value and type instead (a number stays a number).
//!
//! Both read the same data: `record`, `params`, `actor` and `run_id`.

use std::fmt::Write as _;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, Template, TemplateErrorReason};
use indexmap::IndexMap;
use reqwest::Url;
use serde_json::{Map, Value};

/// Names a template may start a variable with.
pub(crate) const ROOTS: [&str; 4] = ["record", "params", "actor", "run_id"];

/// Members of `record`, as `RecordContext` serializes them.
const RECORD_MEMBERS: [&str; 6] = ["number", "process", "title", "state", "fields", "cis"];

/// A variable such as `record.fields.priority`, as its dot-separated segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable(Vec<String>);

impl Variable {
    /// Parses the inside of `{{ ... }}`: names of letters, digits, `_` and `-`, joined by
    /// dots. Returns `None` for anything else, such as a helper call.
    fn parse(text: &str) -> Option<Self> {
        let segments: Vec<String> = text.trim().split('.').map(str::to_owned).collect();
        let valid = segments.iter().all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        valid.then_some(Variable(segments))
    }

    /// Finds the variable's value in the template data; `None` when a segment is absent.
    pub(crate) fn lookup<'a>(&self, data: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(data, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    fn dotted(&self) -> String {
        self.0.join(".")
    }
}

/// Checks that a variable path starts with a known root and, for `params` and `record`,
/// names a declared parameter or a member of the record. Returns the problem, if any.
pub(crate) fn check_path(path: &str, params: &[&str]) -> Option<String> {
    let mut segments = path.split(['.', '/']);
    let root = segments.next().unwrap_or_default();
    if !ROOTS.contains(&root) {
        return Some(format!(
            "`{{{{{path}}}}}` starts with `{root}`, which the template data does not have. Start it with {}",
            quoted(&ROOTS)
        ));
    }
    // A bare root such as `{{record}}` is fine.
    let member = segments.next()?;
    match root {
        "params" if !params.contains(&member) => Some(if params.is_empty() {
            format!(
                "`{{{{{path}}}}}` names parameter `{member}`, but the endpoint declares no parameters. Declare it under `params`"
            )
        } else {
            format!(
                "`{{{{{path}}}}}` names parameter `{member}`, which the endpoint does not declare. Declared: {}",
                quoted(params)
            )
        }),
        "record" if !RECORD_MEMBERS.contains(&member) => Some(format!(
            "`{{{{{path}}}}}` names `record.{member}`, which records do not have. Use {}",
            quoted(&RECORD_MEMBERS)
        )),
        _ => None,
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A piece of a URL template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlPart {
    Text(String),
    Variable(Variable),
}

/// Splits a URL template into text and variables. Only plain variables are allowed:
/// helpers, blocks and `{{{triple}}}` braces are rejected.
fn split_url(source: &str) -> Result<Vec<UrlPart>, String> {
    let mut parts = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(UrlPart::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "`{{{{` at character {} is not closed. Close it with `}}}}`",
                source.len() - rest.len() + start + 1
            ));
        };
        let inside = &after[..end];
        let variable = Variable::parse(inside).ok_or_else(|| {
            format!(
                "`{{{{{inside}}}}}` is not a plain variable. A URL takes only variables such as {{{{record.number}}}} or {{{{params.id}}}}, without helpers, blocks or triple braces"
            )
        })?;
        parts.push(UrlPart::Variable(variable));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        if rest.contains("}}") {
            return Err(String::from(
                "`}}` has no opening `{{`. Remove it, or percent-encode braces as %7D",
            ));
        }
        parts.push(UrlPart::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// A URL with variables in its path, query or fragment.
#[derive(Debug, Clone)]
pub(crate) struct UrlTemplate {
    parts: Vec<UrlPart>,
    /// Scheme, host and port, fixed by the configuration.
    origin: reqwest::Url,
}

impl UrlTemplate {
    /// Parses and checks a URL template. `params` are the endpoint's declared parameters.
    pub(crate) fn parse(source: &str, params: &[&str]) -> Result<Self, Vec<String>> {
        let parts = split_url(source).map_err(|problem| vec![problem])?;

        // The fixed text before the first variable must hold the whole authority, and the
        // authority must end there with `/`, `?` or `#`.
        let prefix = match parts.first() {
            Some(UrlPart::Text(text)) => text.as_str(),
            _ => "",
        };
        let has_variables = parts.iter().any(|p| matches!(p, UrlPart::Variable(_)));
        if has_variables {
            let authority_closed = prefix
                .split_once("://")
                .is_some_and(|(_, after)| after.contains(['/', '?', '#']));
            if !authority_closed {
                return Err(vec![String::from(
                    "template variables are not allowed in the scheme, host or port, so a record cannot redirect the call. Write the host as fixed text and put variables in the path or query, as in https://hooks.example.com/tickets/{{record.number}}",
                )]);
            }
        }

        let sample: String = parts
            .iter()
            .map(|part| match part {
                UrlPart::Text(text) => text.as_str(),
                UrlPart::Variable(_) => "x",
            })
            .collect();
        let url = check_url(&sample)?;

        let problems: Vec<String> = parts
            .iter()
            .filter_map(|part| match part {
                UrlPart::Variable(variable) => check_path(&variable.dotted(), params),
                UrlPart::Text(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }

        Ok(UrlTemplate { parts, origin: url })
    }

    /// Renders the URL for one run. Each value is percent-encoded; a variable without a
    /// value, or with an object or list value, is an error.
    pub(crate) fn render(&self, data: &Value) -> Result<Url, String> {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                UrlPart::Text(fixed) => text.push_str(fixed),
                UrlPart::Variable(variable) => {
                    let value = match variable.lookup(data) {
                        Some(Value::String(value)) => value.clone(),
                        Some(Value::Number(number)) => number.to_string(),
                        Some(Value::Bool(flag)) => flag.to_string(),
                        Some(Value::Null) | None => {
                            return Err(format!(
                                "the URL variable `{{{{{}}}}}` has no value in this run. Give it a value, or remove it from the URL",
                                variable.dotted()
                            ));
                        }
                        Some(Value::Array(_) | Value::Object(_)) => {
                            return Err(format!(
                                "the URL variable `{{{{{}}}}}` is a list or object, which a URL cannot carry. Use one of its text or number members",
                                variable.dotted()
                            ));
                        }
                    };
                    percent_encode(&value, &mut text);
                }
            }
        }
        let url = Url::parse(&text).map_err(|error| {
            format!("the rendered URL {text} is invalid: {error}. Check the URL template")
        })?;
        // Values are percent-encoded, so they cannot leave the path or query. This check
        // keeps that promise even if the encoding were wrong.
        if url.origin() != self.origin.origin() {
            return Err(format!(
                "the rendered URL {url} leaves the configured host {}. The call was not sent",
                self.origin.origin().ascii_serialization()
            ));
        }
        Ok(url)
    }
}

/// Checks a URL without variables, or a sample rendering of a template: http or https,
/// with a host, and without a user name or password.
pub(crate) fn check_url(text: &str) -> Result<Url, Vec<String>> {
    let url = Url::parse(text).map_err(|error| {
        vec![format!(
            "`{text}` is not a valid URL: {error}. Write a full URL such as https://hooks.example.com/tend"
        )]
    })?;
    let mut problems = Vec::new();
    if !matches!(url.scheme(), "http" | "https") {
        problems.push(format!(
            "the scheme `{}` is not supported. Use http or https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        problems.push(String::from(
            "the URL has no host. Write one, as in https://hooks.example.com/tend",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(String::from(
            "the URL contains a user name or password, which would show in the journal. Remove it and send credentials in `secret_headers`",
        ));
    }
    if problems.is_empty() {
        Ok(url)
    } else {
        Err(problems)
    }
}

/// Percent-encodes all but the unreserved characters of RFC 3986 (letters, digits,
/// `-._~`), so a value cannot end a path segment or start a query.
fn percent_encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// A node of a body template.
#[derive(Debug, Clone)]
enum BodyNode {
    /// A value without templates, sent as written.
    Literal(Value),
    /// A string leaf with template text, rendered by the named registered template.
    Text(String),
    /// A string leaf that is exactly one variable: the variable's JSON value.
    Variable(Variable),
    Array(Vec<BodyNode>),
    Object(IndexMap<String, BodyNode>),
}

/// The JSON body of an endpoint.
#[derive(Debug, Clone)]
pub(crate) struct BodyTemplate {
    root: BodyNode,
}

/// Compiles body templates and renders them without any escaping: the rendered text
/// becomes a JSON string, which `serde_json` escapes.
pub(crate) struct BodyRenderer {
    registry: Handlebars<'static>,
    next_id: usize,
}

impl std::fmt::Debug for BodyRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyRenderer")
            .field("templates", &self.next_id)
            .finish()
    }
}

impl BodyRenderer {
    pub(crate) fn new() -> Self {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        BodyRenderer {
            registry,
            next_id: 0,
        }
    }

    /// Compiles a body given as a JSON value. Each problem names the leaf's path, such as
    /// `body.ticket.title`.
    pub(crate) fn compile(
        &mut self,
        body: &Value,
        params: &[&str],
    ) -> Result<BodyTemplate, Vec<String>> {
        let mut problems = Vec::new();
        let root = self.compile_node(body, "body", params, &mut problems);
        if problems.is_empty() {
            Ok(BodyTemplate { root })
        } else {
            Err(problems)
        }
    }

    fn compile_node(
        &mut self,
        value: &Value,
        at: &str,
        params: &[&str],
        problems: &mut Vec<String>,
    ) -> BodyNode {
        match value {
            Value::String(text) if text.contains("{{") => {
                self.compile_text(text, at, params, problems)
            }
            Value::Array(items) => BodyNode::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.compile_node(item, &format!("{at}[{i}]"), params, problems))
                    .collect(),
            ),
            Value::Object(map) => BodyNode::Object(
                map.iter()
                    .map(|(key, item)| {
                        if key.contains("{{") {
                            problems.push(format!(
                                "{at}: the key `{key}` contains a template, but keys are sent as written. Use a fixed key and put the template in its value"
                            ));
                        }
                        let node = self.compile_node(item, &format!("{at}.{key}"), params, problems);
                        (key.clone(), node)
                    })
                    .collect(),
            ),
            other => BodyNode::Literal(other.clone()),
        }
    }

    fn compile_text(
        &mut self,
        text: &str,
        at: &str,
        params: &[&str],
        problems: &mut Vec<String>,
    ) -> BodyNode {
        let whole = text
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            .filter(|inside| !inside.contains(['{', '}']))
            .and_then(Variable::parse);
        if let Some(variable) = whole {
            if let Some(problem) = check_path(&variable.dotted(), params) {
                problems.push(format!("{at}: {problem}"));
            }
            return BodyNode::Variable(variable);
        }

        let template = match Template::compile(text) {
            Ok(template) => template,
            Err(error) => {
                problems.push(format!("{at}: {}", describe_template_error(&error)));
                return BodyNode::Literal(Value::Null);
            }
        };
        let mut paths = Vec::new();
        collect_paths(&template.elements, &mut paths);
        for path in paths {
            if let Some(problem) = check_path(&path, params) {
                problems.push(format!("{at}: {problem}"));
            }
        }
        let name = format!("body{}", self.next_id);
        self.next_id += 1;
        self.registry.register_template(&name, template);
        BodyNode::Text(name)
    }

    /// Renders a body for one run.
    pub(crate) fn render(&self, body: &BodyTemplate, data: &Value) -> Result<Value, String> {
        self.render_node(&body.root, data)
    }

    fn render_node(&self, node: &BodyNode, data: &Value) -> Result<Value, String> {
        Ok(match node {
            BodyNode::Literal(value) => value.clone(),
            BodyNode::Variable(variable) => variable.lookup(data).cloned().unwrap_or(Value::Null),
            BodyNode::Text(name) => {
                let text = self.registry.render(name, data).map_err(|error| {
                    format!("the body template could not be rendered: {error}. Check the endpoint's `body`")
                })?;
                Value::String(text)
            }
            BodyNode::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_node(item, data))
                    .collect::<Result<_, _>>()?,
            ),
            BodyNode::Object(map) => {
                let mut object = Map::new();
                for (key, item) in map {
                    object.insert(key.clone(), self.render_node(item, data)?);
                }
                Value::Object(object)
            }
        })
    }
}

/// Describes a template that does not compile, in one line. The parser's list of
/// expected tokens is left out, because it names grammar rules rather than the mistake.
fn describe_template_error(error: &handlebars::TemplateError) -> String {
    let place = match error.pos() {
        Some((line, column)) => format!(" at line {line}, column {column}"),
        None => String::new(),
    };
    let reason = match error.reason() {
        TemplateErrorReason::InvalidSyntax(_) => String::from(
            "the syntax is invalid. Check that braces match and that each block such as {{#each}} is closed, as with {{/each}}",
        ),
        other => format!("{other}. Check the template"),
    };
    format!("the template is invalid{place}: {reason}")
}

/// Collects the variable paths of a template's top level and of its `if` and `unless`
/// blocks, which read the same data. Blocks such as `each` and `with` change what a
/// path refers to, so their insides are not checked.
fn collect_paths(elements: &[TemplateElement], paths: &mut Vec<String>) {
    for element in elements {
        match element {
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                if helper.params.is_empty() && helper.hash.is_empty() {
                    push_path(&helper.name, paths);
                } else {
                    helper
                        .params
                        .iter()
                        .for_each(|param| push_path(param, paths));
                }
            }
            TemplateElement::HelperBlock(helper) => {
                helper
                    .params
                    .iter()
                    .for_each(|param| push_path(param, paths));
                let name = helper.name.as_name().unwrap_or_default();
                if matches!(name, "if" | "unless") {
                    for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                        collect_paths(&inner.elements, paths);
                    }
                }
            }
            _ => {}
        }
    }
}

fn push_path(parameter: &Parameter, paths: &mut Vec<String>) {
    if let Parameter::Path(path) = parameter
        && let Some(raw) = parameter.as_name()
        && !raw.starts_with(['@', '.'])
        && !raw.starts_with("this")
        && matches!(path, handlebars::Path::Relative(_))
    {
        paths.push(raw.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data() -> Value {
        json!({
            "record": {"number": "INC0000012", "title": "a/b?c#d", "fields": {"count": 3}},
            "params": {"id": "x y"},
            "actor": "alice",
            "run_id": 7,
        })
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let template = UrlTemplate::parse(
            "https://h.example/t/{{record.title}}?id={{params.id}}",
            &["id"],
        )
        .unwrap();

        let url = template.render(&data()).unwrap();

        assert_eq!(url.as_str(), "https://h.example/t/a%2Fb%3Fc%23d?id=x%20y");
    }

    #[test]
    fn url_host_variable_is_rejected() {
        for source in [
            "https://{{params.host}}/hook",
            "https://hooks.example{{params.id}}/hook",
            "https://hooks.example:{{params.id}}/hook",
            "{{params.id}}://hooks.example/hook",
            "https://{{params.id}}@hooks.example/hook",
        ] {
            let problems = UrlTemplate::parse(source, &["id", "host"]).unwrap_err();

            assert!(
                problems[0].contains("not allowed in the scheme, host or port"),
                "{source}: {problems:?}"
            );
        }
    }

    #[test]
    fn url_rejects_helpers_and_triple_braces() {
        for source in [
            "https://h.example/{{{record.title}}}",
            "https://h.example/{{lookup record 'title'}}",
            "https://h.example/{{#if actor}}x{{/if}}",
        ] {
            let problems = UrlTemplate::parse(source, &[]).unwrap_err();

            assert!(
                problems[0].contains("not a plain variable"),
                "{source}: {problems:?}"
            );
        }
    }

    #[test]
    fn url_missing_value_is_named() {
        let template = UrlTemplate::parse("https://h.example/{{record.fields.site}}", &[]).unwrap();

        let error = template.render(&data()).unwrap_err();

        assert!(
            error.contains("`{{record.fields.site}}` has no value"),
            "{error}"
        );
    }

    #[test]
    fn url_number_is_written_plainly() {
        let template = UrlTemplate::parse(
            "http://127.0.0.1:9/runs/{{run_id}}/{{record.fields.count}}",
            &[],
        )
        .unwrap();

        assert_eq!(
            template.render(&data()).unwrap().as_str(),
            "http://127.0.0.1:9/runs/7/3"
        );
    }

    #[test]
    fn url_checks_scheme_and_credentials() {
        let ftp = UrlTemplate::parse("ftp://h.example/x", &[]).unwrap_err();
        let user = UrlTemplate::parse("https://me:pw@h.example/x", &[]).unwrap_err();

        assert!(ftp[0].contains("scheme `ftp`"), "{ftp:?}");
        assert!(user[0].contains("user name or password"), "{user:?}");
    }

    #[test]
    fn paths_are_checked_against_roots() {
        assert_eq!(check_path("record.title", &[]), None);
        assert_eq!(check_path("params.id", &["id"]), None);
        assert!(
            check_path("recrod.title", &[])
                .unwrap()
                .contains("starts with `recrod`")
        );
        assert!(
            check_path("params.idd", &["id"])
                .unwrap()
                .contains("Declared: `id`")
        );
        assert!(
            check_path("record.name", &[])
                .unwrap()
                .contains("`record.name`")
        );
    }

    #[test]
    fn body_keeps_types_of_whole_variables() {
        let mut renderer = BodyRenderer::new();
        let body = renderer
            .compile(
                &json!({
                    "count": "{{record.fields.count}}",
                    "spaced": " {{record.fields.count}}",
                    "text": "n={{record.fields.count}}",
                    "fixed": [1, true],
                }),
                &[],
            )
            .unwrap();

        let rendered = renderer.render(&body, &data()).unwrap();

        assert_eq!(
            rendered,
            json!({"count": 3, "spaced": " 3", "text": "n=3", "fixed": [1, true]})
        );
    }

    #[test]
    fn body_checks_paths_inside_if_blocks() {
        let mut renderer = BodyRenderer::new();

        let problems = renderer
            .compile(
                &json!({"a": {"b": "{{#if record}}{{record.titel}}{{/if}}"}}),
                &[],
            )
            .unwrap_err();

        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("body.a.b: "), "{problems:?}");
        assert!(problems[0].contains("`record.titel`"), "{problems:?}");
    }

    #[test]
    fn body_rejects_template_keys_and_bad_syntax() {
        let mut renderer = BodyRenderer::new();

        let problems = renderer
            .compile(&json!({"{{actor}}": 1, "x": "{{#each record.cis}}"}), &[])
            .unwrap_err();

        // serde_json sorts object keys, and `x` sorts before `{`.
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0],
            "body.x: the template is invalid at line 1, column 21: the syntax is invalid. Check that braces match and that each block such as {{#each}} is closed, as with {{/each}}"
        );
        assert!(
            problems[1].contains("keys are sent as written"),
            "{problems:?}"
        );
    }

    #[test]
    fn body_each_block_renders() {
        let mut renderer = BodyRenderer::new();
        let body = renderer
            .compile(&json!("{{#each record.cis}}{{name}};{{/each}}"), &[])
            .unwrap();
        let data = json!({"record": {"cis": [{"name": "a\"b"}, {"name": "c"}]}});

        assert_eq!(renderer.render(&body, &data).unwrap(), json!("a\"b;c;"));
    }
}
