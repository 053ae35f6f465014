//! Email notifications. The `notify:` block of a definition names the templates that a
//! record's events send, and to whom. The handlebars templates live under
//! `workflows/notifications/NAME/`: `subject.hbs`, `text.hbs` and optional `html.hbs`, and
//! the same files under a locale directory such as `fr/` for recipients of that locale.
//!
//! Templates are compiled when the definitions load, so a syntax error is a load error
//! with its file and line. The subject and the text part are rendered without escaping
//! and the HTML part with HTML escaping. Record values are only ever template data, never
//! template source: a description holding `{{ 7*7 }}` comes out as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use handlebars::{Handlebars, Template};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diagnostic::Diagnostic;
use crate::load::FileReport;
use crate::model::Definition;

/// Events a definition can notify on besides its transitions (`on_<transition>`).
pub const NOTIFY_EVENTS: [&str; 3] = ["on_create", "on_comment", "on_assign"];

/// One entry of a `notify:` event: a template sent to the people of some roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    pub to: Vec<RecipientRole>,
    /// Name of a directory under `workflows/notifications/`.
    pub template: String,
}

/// The role of a notification's recipients, relative to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientRole {
    /// The user in the record's `requester` field.
    Requester,
    /// The user in the record's `assignee` field.
    Assignee,
    /// The members of the group in the record's `assignment_group` field.
    Group,
    /// The addresses and users in the record's `watchers` field.
    Watchers,
    /// The approvers of the record's pending approval round.
    Approvers,
}

impl RecipientRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientRole::Requester => "requester",
            RecipientRole::Assignee => "assignee",
            RecipientRole::Group => "group",
            RecipientRole::Watchers => "watchers",
            RecipientRole::Approvers => "approvers",
        }
    }
}

/// The three parts of a rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// None when the template has no `html.hbs`.
    pub html: Option<String>,
}

/// A failed rendering, with the template file it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rendering notification template `{template}` ({part}) failed: {reason}")]
pub struct RenderError {
    pub template: String,
    pub part: &'static str,
    pub reason: String,
}

/// The compiled notification templates of a definition set.
#[derive(Clone, Default)]
pub struct Notifications {
    /// Template names, each with the locales that have their own variant.
    templates: BTreeMap<String, BTreeSet<String>>,
    /// Subjects and text parts, without escaping.
    plain: Arc<Handlebars<'static>>,
    /// HTML parts, with HTML escaping.
    html: Arc<Handlebars<'static>>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

impl Notifications {
    /// Checks whether a template of that name exists.
    pub fn contains(&self, template: &str) -> bool {
        self.templates.contains_key(template)
    }

    /// Returns the template names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Renders `template` with `data`, in the variant of `locale` when it has one (`fr`
    /// also matches a locale such as `fr-CH`), else in the default variant.
    pub fn render(
        &self,
        template: &str,
        locale: Option<&str>,
        data: &Value,
    ) -> Result<Rendered, RenderError> {
        let failed = |part: &'static str, reason: String| RenderError {
            template: template.to_owned(),
            part,
            reason,
        };
        let Some(locales) = self.templates.get(template) else {
            return Err(failed(
                "subject",
                "no such template under workflows/notifications/".into(),
            ));
        };
        let variant = locale
            .and_then(|locale| {
                let locale = locale.to_ascii_lowercase();
                let language = locale
                    .split(['-', '_'])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                [locale, language]
                    .into_iter()
                    .find(|candidate| locales.contains(candidate))
            })
            .map_or_else(
                || template.to_owned(),
                |found| format!("{template}/{found}"),
            );
        let subject = self
            .plain
            .render(&format!("{variant}/subject"), data)
            .map_err(|error| failed("subject", error.to_string()))?;
        // A subject is one header line: line breaks from the template or the data would
        // end the header early.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = self
            .plain
            .render(&format!("{variant}/text"), data)
            .map_err(|error| failed("text", error.to_string()))?;
        let html_name = format!("{variant}/html");
        let html = if self.html.has_template(&html_name) {
            Some(
                self.html
                    .render(&html_name, data)
                    .map_err(|error| failed("html", error.to_string()))?,
            )
        } else {
            None
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }
}

/// The parts of a template, as file names; `html.hbs` is optional.
const PARTS: [(&str, bool); 3] = [("subject", true), ("text", true), ("html", false)];

/// Loads and compiles the templates under `dir` (`workflows/notifications`); a missing
/// directory means no templates.
pub(crate) fn load_notifications(
    dir: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> Notifications {
    let mut plain = Handlebars::new();
    plain.register_escape_fn(handlebars::no_escape);
    let mut html = Handlebars::new();
    let mut templates = BTreeMap::new();
    for template_dir in subdirectories(dir) {
        let Some(name) = file_name(&template_dir) else {
            continue;
        };
        let mut locales = BTreeSet::new();
        compile_variant(
            &template_dir,
            &name,
            (&mut plain, &mut html),
            hasher,
            diagnostics,
        );
        for locale_dir in subdirectories(&template_dir) {
            let Some(locale) = file_name(&locale_dir) else {
                continue;
            };
            compile_variant(
                &locale_dir,
                &format!("{name}/{}", locale.to_ascii_lowercase()),
                (&mut plain, &mut html),
                hasher,
                diagnostics,
            );
            locales.insert(locale.to_ascii_lowercase());
        }
        templates.insert(name, locales);
    }
    Notifications {
        templates,
        plain: Arc::new(plain),
        html: Arc::new(html),
    }
}

/// Compiles the part files in `dir` as the variant `variant` (`NAME` or `NAME/LOCALE`).
fn compile_variant(
    dir: &Path,
    variant: &str,
    (plain, html): (&mut Handlebars<'static>, &mut Handlebars<'static>),
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (part, required) in PARTS {
        let file = dir.join(format!("{part}.hbs"));
        let source = match std::fs::read_to_string(&file) {
            Ok(source) => source,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if required {
                    diagnostics.push(Diagnostic {
                        file: file.clone(),
                        line: 0,
                        column: 0,
                        message: format!(
                            "notification template `{variant}` has no {part}.hbs: add it (subject.hbs and text.hbs are required, html.hbs is optional)"
                        ),
                    });
                }
                continue;
            }
            Err(error) => {
                diagnostics.push(Diagnostic {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                    message: format!("reading the template failed: {error}"),
                });
                continue;
            }
        };
        // The name within workflows/notifications/, not the full path: the same files
        // written to another directory are the same version.
        hasher.update(format!("{variant}/{part}").as_bytes());
        hasher.update(source.as_bytes());
        match Template::compile(&source) {
            Ok(compiled) => {
                let registry = if part == "html" {
                    &mut *html
                } else {
                    &mut *plain
                };
                registry.register_template(&format!("{variant}/{part}"), compiled);
            }
            Err(error) => {
                let (line, column) = error.pos().unwrap_or((0, 0));
                diagnostics.push(Diagnostic {
                    file,
                    line,
                    column,
                    message: format!(
                        "handlebars syntax error: {}; fix the template",
                        error.reason()
                    ),
                });
            }
        }
    }
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .filter(|path| file_name(path).is_some_and(|name| !name.starts_with('.')))
        .collect();
    dirs.sort();
    dirs
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_owned)
}

/// Checks the `notify:` block of `definition`: each event is `on_create`, `on_comment`,
/// `on_assign` or `on_` followed by one of its transitions, and each template exists.
pub(crate) fn check_notify(
    definition: &Definition,
    notifications: &Notifications,
    report: &mut FileReport<'_>,
) {
    check_events(&definition.notify, definition, report);
    for (event, rules) in &definition.notify {
        for (i, rule) in rules.iter().enumerate() {
            if rule.to.is_empty() {
                report.error(
                    &format!("notify.{event}[{i}].to"),
                    format!(
                        "notification `{event}` with template `{}` goes to nobody: list at least one of requester, assignee, group, watchers, approvers",
                        rule.template
                    ),
                );
            }
            if !notifications.contains(&rule.template) {
                let known: Vec<&str> = notifications.names().collect();
                report.error(
                    &format!("notify.{event}[{i}].template"),
                    format!(
                        "unknown notification template `{}`: add workflows/notifications/{}/subject.hbs and text.hbs, or use one of {}",
                        rule.template,
                        rule.template,
                        if known.is_empty() {
                            "(none: workflows/notifications/ has no templates)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }
}

fn check_events(
    notify: &IndexMap<String, Vec<NotifyRule>>,
    definition: &Definition,
    report: &mut FileReport<'_>,
) {
    for event in notify.keys() {
        if NOTIFY_EVENTS.contains(&event.as_str()) {
            continue;
        }
        let transition = event.strip_prefix("on_").unwrap_or_default();
        if definition.transition(transition).is_some() {
            continue;
        }
        let transitions: Vec<String> = definition
            .transitions
            .iter()
            .map(|step| format!("on_{}", step.name))
            .collect();
        report.error(
            &format!("notify.{event}"),
            format!(
                "unknown notification event `{event}` in process `{}`: use on_create, on_comment, on_assign or on_ followed by a transition ({})",
                definition.process,
                transitions.join(", ")
            ),
        );
    }
}
