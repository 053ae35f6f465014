//! The remote plugin builds connection links (ssh, rdp, vnc) for the configuration items
//! (CIs) of a record, from URL templates per class of CI in a YAML file such as
//! `plugins/remote/remote.yaml`. Its one action, `connect`, returns the links in the
//! outcome's `data` for the record to show; it starts no program and opens no connection.
//!
//! Until Tend has a CMDB, a CI is what the record gives: its `name` and the record `field`
//! that named it. The configuration assigns each CI to a class by name pattern or field,
//! and gives the attributes a link needs: `fqdn` and `host` (the name plus the class's
//! domain), and defaults such as `user`. String attributes that a CI carries itself,
//! and its `class`, take precedence, so CMDB attributes replace these defaults once CIs
//! carry them.
//!
//! Every value put into a link must consist of ASCII letters, digits, `.`, `-` and `_`,
//! and must not start with `-` or `.`. A CI named `host;rm -rf`, `evil.com@good` or
//! `ѕrv1` (with a Cyrillic `ѕ`) gets no link, and the outcome names the character at
//! fault.

mod config;
mod link;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, ParamSpec, ParamType, Plugin,
    PluginError, RecordContext, check_actions, validate_params,
};

pub use config::ConfigError;
use config::{Class, Config, parse_config};
use link::check_value;

/// Name of the plugin's one action.
pub const CONNECT: &str = "connect";

/// Seconds a `connect` run may take. Building links takes microseconds; the limit only
/// bounds a run if something goes badly wrong.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;

/// One connection link, as the outcome's `data.links` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// Name of the CI the link connects to.
    pub ci: String,
    /// Protocol, such as `ssh`.
    pub protocol: String,
    pub url: String,
    /// Text for the link, such as `SSH to srv-db1`.
    pub label: String,
}

/// The remote plugin, loaded from its configuration file.
#[derive(Debug, Clone)]
pub struct RemotePlugin {
    file: PathBuf,
    config: Config,
    specs: Vec<ActionSpec>,
}

impl RemotePlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "remote";

    /// Loads the configuration file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the remote plugin's configuration: {error}. Check the path, or create the file with `allowed_schemes` and `classes`",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads a configuration from its text; `file` names it in messages.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let config = parse_config(file, text)?;
        let specs = vec![connect_spec(&config)];
        let problems = check_actions(&specs);
        if !problems.is_empty() {
            return Err(ConfigError {
                file: file.to_path_buf(),
                problems: problems
                    .into_iter()
                    .map(|problem| format!("{}: {problem}", file.display()))
                    .collect(),
            });
        }
        Ok(RemotePlugin {
            file: file.to_path_buf(),
            config,
            specs,
        })
    }

    /// Path of the configuration file the plugin was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Builds the links of a `connect` run from validated parameters, or returns why
    /// there are none.
    pub fn links(
        &self,
        record: Option<&RecordContext>,
        params: &Map<String, Value>,
    ) -> Result<Vec<Link>, String> {
        let record = record.ok_or_else(|| {
            String::from(
                "this run has no record, as runs of a schedule have none. Run connect from a record that names a configuration item",
            )
        })?;
        let number = &record.number;
        let ci = choose_ci(record, params.get("ci").and_then(Value::as_str))?;
        let name = ci
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a configuration item of {number} has no name. Check the record's configuration-item fields"))?;
        check_value(name).map_err(|problem| {
            format!(
                "the configuration item name {name:?} {problem}, so no link is built. Names in links may contain only ASCII letters, digits, `.`, `-` and `_`, and may not start with `-` or `.`. Correct the name on {number}"
            )
        })?;
        let field = ci.get("field").and_then(Value::as_str).unwrap_or_default();

        let class = self.class_of(ci, name, field).ok_or_else(|| {
            let source = if field.is_empty() {
                String::new()
            } else {
                format!(" (from field `{field}`)")
            };
            format!(
                "the configuration item `{name}`{source} belongs to no class in {}. Add a pattern that matches it under `names`, or the field under `fields`, of a class, or set `default_class`",
                self.file.display()
            )
        })?;

        let protocols: Vec<&String> = match params.get("protocol").and_then(Value::as_str) {
            Some(protocol) => {
                let Some((key, _)) = class.links.get_key_value(protocol) else {
                    return Err(format!(
                        "class `{}` of `{name}` has no `{protocol}` link. It offers {}",
                        class.name,
                        class
                            .links
                            .keys()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                vec![key]
            }
            None => class.links.keys().collect(),
        };

        let attributes = attributes(class, ci, name, field);
        let value_of = |attribute: &str| -> Result<String, String> {
            let value = attributes.get(attribute).ok_or_else(|| {
                format!("attribute `{attribute}` of `{name}` has no value. Give class `{}` a default under `attributes`", class.name)
            })?;
            check_value(value).map_err(|problem| {
                format!(
                    "attribute `{attribute}` of `{name}` is {value:?}, which {problem}, so no link is built. Values in links may contain only ASCII letters, digits, `.`, `-` and `_`, and may not start with `-` or `.`"
                )
            })?;
            Ok(value.clone())
        };

        let mut links = Vec::new();
        for protocol in protocols {
            let template = &class.links[protocol];
            let url = template.render(value_of)?;
            // The scheme is fixed text of the template, which loading checked; this keeps
            // the promise even if rendering changed.
            if !url.starts_with(&format!("{}:", template.scheme())) {
                return Err(format!(
                    "the {protocol} link of `{name}` lost its scheme. Check the template"
                ));
            }
            links.push(Link {
                ci: name.to_owned(),
                protocol: protocol.clone(),
                url,
                label: format!("{} to {name}", protocol.to_ascii_uppercase()),
            });
        }
        Ok(links)
    }

    /// Finds a CI's class: the CI's own `class` when the configuration has it, then the
    /// first class in file order whose `fields` or `names` match, then `default_class`.
    fn class_of(&self, ci: &Value, name: &str, field: &str) -> Option<&Class> {
        let classes = &self.config.classes;
        if let Some(own) = ci.get("class").and_then(Value::as_str)
            && let Some(class) = classes.iter().find(|class| class.name == own)
        {
            return Some(class);
        }
        classes
            .iter()
            .find(|class| {
                class.fields.iter().any(|f| !field.is_empty() && f == field)
                    || class.names.iter().any(|p| link::matches_pattern(p, name))
            })
            .or_else(|| self.config.default_class.map(|index| &classes[index]))
    }
}

/// Picks the CI that a run requests, or the record's first.
fn choose_ci<'a>(record: &'a RecordContext, requested: Option<&str>) -> Result<&'a Value, String> {
    let number = &record.number;
    let Some(first) = record.cis.first() else {
        return Err(format!(
            "{number} names no configuration item. Fill in its configuration-item field, then run connect again"
        ));
    };
    let Some(requested) = requested else {
        return Ok(first);
    };
    record
        .cis
        .iter()
        .find(|ci| ci.get("name").and_then(Value::as_str) == Some(requested))
        .ok_or_else(|| {
            let names: Vec<String> = record
                .cis
                .iter()
                .filter_map(|ci| ci.get("name").and_then(Value::as_str))
                .map(|name| format!("`{name}`"))
                .collect();
            format!(
                "`{requested}` is not a configuration item of {number}. Choose one of {}",
                names.join(", ")
            )
        })
}

/// Collects the attributes of a CI: built-in ones, then the class's defaults, then the
/// CI's own string attributes, each replacing the one before.
fn attributes(class: &Class, ci: &Value, name: &str, field: &str) -> IndexMap<String, String> {
    let fqdn = match &class.domain {
        Some(domain) if !name.contains('.') => format!("{name}.{domain}"),
        _ => name.to_owned(),
    };
    let mut attributes = IndexMap::new();
    attributes.insert(String::from("name"), name.to_owned());
    attributes.insert(String::from("field"), field.to_owned());
    attributes.insert(String::from("fqdn"), fqdn.clone());
    attributes.insert(String::from("host"), fqdn);
    for (key, value) in &class.attributes {
        attributes.insert(key.clone(), value.clone());
    }
    if let Value::Object(own) = ci {
        for (key, value) in own {
            if matches!(key.as_str(), "name" | "field" | "class") {
                continue;
            }
            if let Value::String(value) = value {
                attributes.insert(key.clone(), value.clone());
            }
        }
    }
    attributes
}

fn connect_spec(config: &Config) -> ActionSpec {
    let mut params = IndexMap::new();
    params.insert(
        String::from("ci"),
        ParamSpec {
            kind: ParamType::String,
            label: String::from("Configuration item"),
            description: String::from(
                "Name of one of the record's configuration items; the first one when empty",
            ),
            required: false,
            default: None,
            values: Vec::new(),
            max_length: Some(link::MAX_VALUE_CHARS),
        },
    );
    params.insert(
        String::from("protocol"),
        ParamSpec {
            kind: ParamType::Enum,
            label: String::from("Protocol"),
            description: String::from("Link to build; every link of the item's class when empty"),
            required: false,
            default: None,
            values: config.protocols.clone(),
            max_length: None,
        },
    );
    ActionSpec {
        name: CONNECT.to_owned(),
        label: String::from("Connect"),
        description: String::from(
            "Builds connection links for a configuration item of the record. Starts no program",
        ),
        params,
        timeout_seconds: CONNECT_TIMEOUT_SECONDS,
        roles: config.roles.clone(),
        needs_approval: false,
        idempotent: true,
    }
}

fn outcome(links: &[Link]) -> ActionOutcome {
    let summary = match links {
        [link] => format!("{}: {}", link.label, link.url),
        _ => format!(
            "{} links for {}: {}",
            links.len(),
            links.first().map_or("", |link| link.ci.as_str()),
            links
                .iter()
                .map(|link| link.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let output = links
        .iter()
        .map(|link| format!("{}: {}", link.label, link.url))
        .collect::<Vec<_>>()
        .join("\n");
    let mut outcome = ActionOutcome::succeeded(summary, output);
    outcome.data = json!({ "links": links });
    outcome
}

#[async_trait::async_trait]
impl Plugin for RemotePlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Builds ssh, rdp and vnc links for the configuration items of a record"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        if request.action != CONNECT {
            return Err(PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: request.action,
            });
        }
        if cancel.is_cancelled() {
            return Err(PluginError::Cancelled);
        }
        let params = validate_params(&self.specs[0], &request.params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;
        Ok(match self.links(request.record.as_ref(), &params) {
            Ok(links) => outcome(&links),
            Err(problem) => ActionOutcome::failed(format!("No link built: {problem}"), ""),
        })
    }
}
