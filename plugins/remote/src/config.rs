//! The configuration file of the remote plugin, such as `plugins/remote/remote.yaml`: its
//! format, and the checks that run when it loads. Every problem is reported at once, each
//! with the file, the class and the fix.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use tend_plugin_api::yaml::parse_yaml;

use crate::link::{FORBIDDEN_SCHEMES, LinkTemplate, check_value, is_scheme};

/// Attributes every CI has, computed from its name and the record.
pub(crate) const BUILT_IN_ATTRIBUTES: [&str; 4] = ["name", "field", "fqdn", "host"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    roles: Vec<String>,
    allowed_schemes: Vec<String>,
    #[serde(default)]
    default_class: Option<String>,
    classes: IndexMap<String, ClassFile>,
}

/// One class of CIs as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    attributes: IndexMap<String, String>,
    links: IndexMap<String, String>,
}

/// A class of CIs, such as `server`, with the links its CIs get.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    pub name: String,
    /// Patterns with `*` and `?` that CI names of this class match, ignoring case.
    pub names: Vec<String>,
    /// Record fields whose CIs are of this class.
    pub fields: Vec<String>,
    /// Domain appended to a CI name without a dot to make its `fqdn`, without a leading
    /// dot.
    pub domain: Option<String>,
    /// Default attributes, such as `user`.
    pub attributes: IndexMap<String, String>,
    /// Link templates by protocol, such as `ssh`.
    pub links: IndexMap<String, LinkTemplate>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub roles: Vec<String>,
    pub classes: Vec<Class>,
    /// Index in `classes` of the class for CIs that match no other.
    pub default_class: Option<usize>,
    /// Every protocol some class offers, in the order of first appearance.
    pub protocols: Vec<String>,
}

pub use tend_plugin_api::ConfigError;

/// Reads and checks a configuration file. `file` names the file in messages.
pub(crate) fn parse_config(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let file_name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| {
        let place = match (error.line, error.column) {
            (Some(line), Some(column)) => format!("{file_name}:{line}:{column}"),
            _ => file_name.to_string(),
        };
        let field = if error.path.is_empty() {
            String::new()
        } else {
            format!("field `{}`: ", error.path)
        };
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!("{place}: {field}{}", error.message)],
        }
    })?;

    let mut problems = Vec::new();
    check_schemes(&parsed.allowed_schemes, &mut problems);

    let mut classes = Vec::new();
    let mut protocols: Vec<String> = Vec::new();
    if parsed.classes.is_empty() {
        problems.push(String::from(
            "`classes` is empty, so no CI would get a link. Add a class, such as `server` with an ssh link",
        ));
    }
    for (name, class) in parsed.classes {
        let mut own = Vec::new();
        let checked = check_class(&name, class, &parsed.allowed_schemes, &mut own);
        problems.extend(own.into_iter().map(|p| format!("class `{name}`: {p}")));
        for protocol in checked.links.keys() {
            if !protocols.contains(protocol) {
                protocols.push(protocol.clone());
            }
        }
        classes.push(checked);
    }

    let default_class = match &parsed.default_class {
        Some(name) => {
            let index = classes.iter().position(|class| &class.name == name);
            if index.is_none() {
                problems.push(format!(
                    "default_class `{name}` is not a class. Use one of {}, or remove it",
                    classes
                        .iter()
                        .map(|c| format!("`{}`", c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            index
        }
        None => None,
    };

    if problems.is_empty() {
        Ok(Config {
            roles: parsed.roles,
            classes,
            default_class,
            protocols,
        })
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems: problems
                .into_iter()
                .map(|problem| format!("{file_name}: {problem}"))
                .collect(),
        })
    }
}

fn check_schemes(schemes: &[String], problems: &mut Vec<String>) {
    if schemes.is_empty() {
        problems.push(String::from(
            "`allowed_schemes` is empty, so no link could be built. List the schemes of your links, such as [ssh, rdp, vnc]",
        ));
    }
    for scheme in schemes {
        if !is_scheme(scheme) || scheme.chars().any(|c| c.is_ascii_uppercase()) {
            problems.push(format!(
                "allowed scheme `{scheme}` is invalid. Write it in lowercase without `:` or `//`, such as ssh"
            ));
        } else if FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
            problems.push(format!(
                "allowed scheme `{scheme}` is never allowed, because a browser would run or read the link. Remove it"
            ));
        }
    }
}

/// Checks a name of a class, protocol or attribute: a lowercase letter, then
/// lowercase letters, digits and `_`.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

fn check_class(
    name: &str,
    file: ClassFile,
    allowed_schemes: &[String],
    problems: &mut Vec<String>,
) -> Class {
    if !is_name(name) {
        problems.push(String::from(
            "the class name is invalid. Use lowercase letters, digits and underscores, such as server",
        ));
    }
    for pattern in &file.names {
        if pattern.is_empty() {
            problems.push(String::from(
                "`names` contains an empty pattern. Remove it, or write one such as srv-*",
            ));
        }
    }

    let domain = file
        .domain
        .map(|domain| domain.trim_start_matches('.').to_owned());
    if let Some(domain) = &domain
        && let Err(problem) = check_value(domain)
    {
        problems.push(format!(
            "domain `{domain}` {problem}. Write a DNS domain such as corp.example"
        ));
    }

    for (attribute, value) in &file.attributes {
        if BUILT_IN_ATTRIBUTES.contains(&attribute.as_str()) {
            problems.push(format!(
                "attribute `{attribute}` is computed from the CI and cannot be set here. Remove it, or use another name"
            ));
        } else if !is_name(attribute) {
            problems.push(format!(
                "attribute name `{attribute}` is invalid. Use lowercase letters, digits and underscores, such as user"
            ));
        }
        if let Err(problem) = check_value(value) {
            problems.push(format!(
                "attribute `{attribute}` is {value:?}, which {problem}. Links carry only letters, digits, `.`, `-` and `_`"
            ));
        }
    }

    let mut known: Vec<&str> = BUILT_IN_ATTRIBUTES.to_vec();
    known.extend(file.attributes.keys().map(String::as_str));
    if file.links.is_empty() {
        problems.push(String::from(
            "`links` is empty. Add a link, such as `ssh: \"ssh://{{fqdn}}\"`",
        ));
    }
    let mut links = IndexMap::new();
    for (protocol, source) in &file.links {
        if !is_name(protocol) {
            problems.push(format!(
                "protocol `{protocol}` is invalid. Use lowercase letters, digits and underscores, such as ssh"
            ));
        }
        match LinkTemplate::parse(source, allowed_schemes, &known) {
            Ok(template) => {
                links.insert(protocol.clone(), template);
            }
            Err(found) => {
                problems.extend(found.into_iter().map(|p| format!("link `{protocol}`: {p}")))
            }
        }
    }

    Class {
        name: name.to_owned(),
        names: file.names,
        fields: file.fields,
        domain,
        attributes: file.attributes,
        links,
    }
}
