//! Loading a definitions directory: `workflows/*.yaml` (process definitions),
//! `workflows/calendars/*.yaml` (business-hours calendars), `workflows/links/*.yaml`
//! (link types), `workflows/mailboxes/*.yaml` (inbound mail) and `workflows/alerts/*.yaml`
//! (alert sources), `workflows/cmdb/` (CI classes and relationship types), with the rules
//! they name under `rules/`. Everything is validated before
//! anything is used, and every problem is reported at once with file, line and column.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::alerts::{AlertSource, AlertSourceFile};
use crate::calendar::Calendar;
use crate::catalog::{CatalogFile, CatalogItem};
use crate::cmdb::CmdbSchema;
use crate::diagnostic::{Diagnostic, LoadError};
use crate::jobs::{OpenRecord, RuleRun, ScheduleAction, ScheduleFile, ScheduledJob};
use crate::links::{LinkType, LinkTypeFile};
use crate::mailbox::{Mailbox, MailboxFile};
use crate::model::{Definition, GroupDef, GroupFile};
use crate::rules::{RuleCheckError, RuleRunner};
use crate::schedule::{FreezeFile, FreezeWindow};
use crate::sla::{SlaFile, SlaPolicy};
use crate::validate::validate_definition;
use crate::yaml_index::YamlIndex;

/// A validated set of definitions, identified by a hash of their content.
#[derive(Debug, Clone)]
pub struct DefinitionSet {
    pub root: PathBuf,
    /// Hex SHA-256 (first 16 characters) over every loaded file and rule script.
    pub version: String,
    pub definitions: BTreeMap<String, Arc<Definition>>,
    pub calendars: BTreeMap<String, Calendar>,
    /// Link types by name, in file order and then in the order each file lists them.
    pub link_types: IndexMap<String, LinkType>,
    /// Groups of users by name, from `workflows/groups/*.yaml`.
    pub groups: BTreeMap<String, GroupDef>,
    /// Service catalog items by name, from `workflows/catalog/*.yaml`.
    pub catalog: IndexMap<String, CatalogItem>,
    /// Freeze windows by name, from `workflows/freeze/*.yaml`.
    pub freeze_windows: IndexMap<String, FreezeWindow>,
    /// Scheduled jobs by name, from `workflows/schedules/*.yaml`.
    pub schedules: IndexMap<String, ScheduledJob>,
    /// Service level policies by name, from `workflows/sla/*.yaml`.
    pub sla_policies: IndexMap<String, SlaPolicy>,
    /// Mailboxes by name (the file name), from `workflows/mailboxes/*.yaml`.
    pub mailboxes: IndexMap<String, Mailbox>,
    /// Alert sources by name (the file name), from `workflows/alerts/*.yaml`.
    pub alert_sources: IndexMap<String, AlertSource>,
    /// Email notification templates, from `workflows/notifications/`.
    pub notifications: crate::notify::Notifications,
    /// CI classes and relationship types, from `workflows/cmdb/`.
    pub cmdb: Arc<CmdbSchema>,
}

impl DefinitionSet {
    pub fn get(&self, process: &str) -> Option<&Arc<Definition>> {
        self.definitions.get(process)
    }

    pub fn link_type(&self, name: &str) -> Option<&LinkType> {
        self.link_types.get(name)
    }
}

/// Collects diagnostics for one file, locating serde paths through the file's index.
pub(crate) struct FileReport<'a> {
    pub file: &'a Path,
    pub index: &'a YamlIndex,
    pub diagnostics: &'a mut Vec<Diagnostic>,
    /// Paths removed after type errors; problems inside them would repeat those errors.
    pub pruned: &'a [String],
}

impl FileReport<'_> {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        if self
            .pruned
            .iter()
            .any(|pruned| crate::prune::overlaps(pruned, path))
        {
            return;
        }
        let position = self.index.position(path);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: position.line,
            column: position.column,
            message: message.into(),
        });
    }
}

/// Loads and validates the definitions under `root`. Rule names are checked through
/// `rules`, which must look for scripts under the same root.
pub fn load_dir(root: &Path, rules: &dyn RuleRunner) -> Result<DefinitionSet, LoadError> {
    let mut diagnostics = Vec::new();
    let mut hasher = Sha256::new();
    let workflows = root.join("workflows");

    let definition_files = yaml_files(&workflows, &mut diagnostics);
    let calendar_files = yaml_files(&workflows.join("calendars"), &mut Vec::new());
    let link_files = yaml_files(&workflows.join("links"), &mut Vec::new());
    let group_files = yaml_files(&workflows.join("groups"), &mut Vec::new());
    let catalog_files = yaml_files(&workflows.join("catalog"), &mut Vec::new());
    let freeze_files = yaml_files(&workflows.join("freeze"), &mut Vec::new());
    let schedule_files = yaml_files(&workflows.join("schedules"), &mut Vec::new());
    let sla_files = yaml_files(&workflows.join("sla"), &mut Vec::new());
    let mailbox_files = yaml_files(&workflows.join("mailboxes"), &mut Vec::new());
    let alert_files = yaml_files(&workflows.join("alerts"), &mut Vec::new());
    let groups = load_groups(&group_files, &mut hasher, &mut diagnostics);
    let notifications = crate::notify::load_notifications(
        &workflows.join("notifications"),
        &mut hasher,
        &mut diagnostics,
    );
    if definition_files.is_empty() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic {
            file: workflows.clone(),
            line: 0,
            column: 0,
            message: "no process definitions found: add at least one workflows/NAME.yaml".into(),
        });
    }

    let mut definitions: BTreeMap<String, Arc<Definition>> = BTreeMap::new();
    let mut origins: HashMap<String, PathBuf> = HashMap::new();
    for file in &definition_files {
        let Some((_, index, definition, pruned)) =
            parse_file::<Definition>(file, &mut hasher, &mut diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics: &mut diagnostics,
            pruned: &pruned,
        };
        validate_definition(&definition, file, &mut report);
        check_approvers(&definition, &groups, &mut report);
        crate::notify::check_notify(&definition, &notifications, &mut report);
        for (i, trend) in definition.trends.iter().enumerate() {
            let known = definition_files
                .iter()
                .filter_map(|f| f.file_stem()?.to_str())
                .any(|stem| stem == trend.open);
            if !known {
                report.error(
                    &format!("trends[{i}].open"),
                    format!(
                        "trend `{}` opens records of unknown process `{}`: add workflows/{}.yaml or name another process",
                        trend.name, trend.open, trend.open
                    ),
                );
            }
        }
        check_rules(&definition, root, rules, &mut report, &mut hasher);
        if let Some(first) = origins.get(&definition.process) {
            report.error(
                "process",
                format!(
                    "process `{}` is already defined in {}: give each process one file",
                    definition.process,
                    first.display()
                ),
            );
            continue;
        }
        origins.insert(definition.process.clone(), file.clone());
        definitions.insert(definition.process.clone(), Arc::new(definition));
    }

    let mut calendars = BTreeMap::new();
    for file in &calendar_files {
        let Some((_, index, calendar, pruned)) =
            parse_file::<Calendar>(file, &mut hasher, &mut diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics: &mut diagnostics,
            pruned: &pruned,
        };
        for (path, message) in calendar.problems() {
            report.error(&path, message);
        }
        if calendars.contains_key(&calendar.calendar) {
            report.error(
                "calendar",
                format!(
                    "calendar `{}` is defined twice: rename one",
                    calendar.calendar
                ),
            );
        }
        calendars.insert(calendar.calendar.clone(), calendar);
    }
    check_includes(&calendars, &calendar_files, &mut diagnostics);

    // A definition file that failed to parse still names its process (the file name must
    // match it), so that one broken definition does not also fail every link type naming it.
    let mut processes: BTreeSet<String> = definitions.keys().cloned().collect();
    processes.extend(
        definition_files
            .iter()
            .filter_map(|file| file.file_stem()?.to_str().map(str::to_owned)),
    );
    let link_types = load_link_types(&link_files, &processes, &mut hasher, &mut diagnostics);
    for (process, definition) in &definitions {
        for step in &definition.transitions {
            let Some(calendar) = &step.calendar else {
                continue;
            };
            let problem = if step.after.is_none() {
                Some(format!(
                    "transition `{}` of {process} names calendar `{calendar}` but has no `after`: the calendar only counts the time of `after`; add `after` or remove `calendar`",
                    step.name
                ))
            } else if !calendars.contains_key(calendar) {
                Some(format!(
                    "transition `{}` of {process} counts `after` in unknown calendar `{calendar}`: {}",
                    step.name,
                    crate::validate::choices(calendar, calendars.keys())
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                diagnostics.push(Diagnostic {
                    file: origins[process].clone(),
                    line: 0,
                    column: 0,
                    message,
                });
            }
        }
        for trend in &definition.trends {
            let fits = link_types
                .get(&trend.link_type)
                .is_some_and(|link| link.allows_source(process) && link.allows_target(&trend.open));
            if !fits {
                diagnostics.push(Diagnostic {
                    file: origins[process].clone(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "trend `{}` links {process} records to {} records with link type `{}`, which is not defined for them: declare it in workflows/links/ with `from: [{process}]` and `to: [{}]`",
                        trend.name, trend.open, trend.link_type, trend.open
                    ),
                });
            }
        }
    }
    let freeze_windows = load_freeze_windows(&freeze_files, &mut hasher, &mut diagnostics);
    let schedules = load_schedules(
        &schedule_files,
        &definitions,
        &origins,
        rules,
        root,
        &mut hasher,
        &mut diagnostics,
    );
    let sla_policies = load_sla_policies(
        &sla_files,
        &definitions,
        &calendars,
        rules,
        root,
        &mut hasher,
        &mut diagnostics,
    );
    let mailboxes = load_mailboxes(
        &mailbox_files,
        (&definitions, &origins),
        &link_types,
        rules,
        root,
        &mut hasher,
        &mut diagnostics,
    );
    let alert_sources = load_alert_sources(
        &alert_files,
        &definitions,
        (rules, root),
        &mut hasher,
        &mut diagnostics,
    );
    let cmdb = crate::cmdb::load_cmdb(&workflows, rules, root, &mut hasher, &mut diagnostics);
    let catalog = load_catalog(
        &catalog_files,
        &definitions,
        &groups,
        rules,
        root,
        &mut hasher,
        &mut diagnostics,
    );

    if !diagnostics.is_empty() {
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        // A rule used by a definition and by a schedule is checked for both; its problems
        // are reported once.
        diagnostics.dedup();
        return Err(LoadError { diagnostics });
    }
    let version = hex::encode(hasher.finalize())[..16].to_owned();
    Ok(DefinitionSet {
        root: root.to_path_buf(),
        version,
        definitions,
        calendars,
        link_types,
        groups,
        catalog,
        freeze_windows,
        schedules,
        sla_policies,
        mailboxes,
        alert_sources,
        notifications,
        cmdb: Arc::new(cmdb),
    })
}

/// Loads the alert sources and checks their processes, the fields their templates fill
/// and the transitions they take.
fn load_alert_sources(
    files: &[PathBuf],
    definitions: &BTreeMap<String, Arc<Definition>>,
    (rules, root): (&dyn RuleRunner, &Path),
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, AlertSource> {
    let mut sources = IndexMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) =
            parse_file::<AlertSourceFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let name = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        if !crate::validate::is_identifier(&name) {
            report.error(
                "",
                format!("invalid alert source name `{name}`: name the file with lower-case letters, digits and underscores, such as prometheus.yaml"),
            );
        }
        for (path, message) in parsed.problems() {
            report.error(&path, message);
        }
        if let Some(rule) = &parsed.rule {
            check_rule_script(rule, "rule", rules, root, &mut report, hasher, true);
        }
        // (path prefix, process, field templates, resolved action, reopen transition)
        let mut targets = vec![(
            String::new(),
            &parsed.process,
            vec![("fields", &parsed.fields)],
            &parsed.resolved,
            &parsed.reopen_transition,
        )];
        for (position, route) in parsed.routes.iter().enumerate() {
            targets.push((
                format!("routes[{position}]."),
                &route.process,
                vec![("fields", &route.fields), ("", &parsed.fields)],
                route.resolved.as_ref().unwrap_or(&parsed.resolved),
                route
                    .reopen_transition
                    .as_ref()
                    .unwrap_or(&parsed.reopen_transition),
            ));
        }
        for (prefix, process, field_sets, resolved, reopen) in targets {
            let Some(definition) = definitions.get(process) else {
                report.error(
                    &format!("{prefix}process"),
                    format!(
                        "alert source `{name}` opens records of unknown process `{process}`: {}",
                        crate::validate::choices(process, definitions.keys())
                    ),
                );
                continue;
            };
            let mut checks: Vec<(String, &String, &String)> = Vec::new();
            for (key, fields) in field_sets {
                // The source's own fields are checked once, at the top level.
                if key.is_empty() {
                    continue;
                }
                for (field, template) in fields {
                    checks.push((format!("{prefix}{key}.{field}"), field, template));
                }
            }
            let resolved_prefix = if prefix.is_empty() || !std::ptr::eq(resolved, &parsed.resolved)
            {
                format!("{prefix}resolved")
            } else {
                "resolved".to_owned()
            };
            if resolved.action == crate::alerts::ResolvedKind::Resolve {
                for (field, template) in &resolved.fields {
                    checks.push((format!("{resolved_prefix}.fields.{field}"), field, template));
                }
                if definition.transition(&resolved.transition).is_none() {
                    report.error(
                        &format!("{resolved_prefix}.transition"),
                        format!(
                            "`{process}` has no transition `{}`: {}",
                            resolved.transition,
                            crate::validate::choices(
                                &resolved.transition,
                                definition.transitions.iter().map(|t| &t.name)
                            )
                        ),
                    );
                }
            }
            if definition.transition(reopen).is_none() {
                let path = if prefix.is_empty() || !std::ptr::eq(reopen, &parsed.reopen_transition)
                {
                    format!("{prefix}reopen_transition")
                } else {
                    "reopen_transition".to_owned()
                };
                report.error(
                    &path,
                    format!(
                        "`{process}` has no transition `{reopen}`: {}",
                        crate::validate::choices(
                            reopen,
                            definition.transitions.iter().map(|t| &t.name)
                        )
                    ),
                );
            }
            // The configuration item and severity fields must exist in the source's own
            // process. A route's process receives only those it declares.
            if prefix.is_empty() {
                if let Some(ci) = &parsed.ci
                    && !definition.fields.contains_key(&ci.field)
                {
                    report.error(
                        "ci.field",
                        format!(
                            "`{process}` declares no field `{}`: {}",
                            ci.field,
                            crate::validate::choices(&ci.field, definition.fields.keys())
                        ),
                    );
                }
                if let Some(severity) = &parsed.severity {
                    for (value, fields) in &severity.values {
                        for (field, template) in fields {
                            checks.push((
                                format!("severity.values.{value}.{field}"),
                                field,
                                template,
                            ));
                        }
                    }
                    for (field, template) in &severity.default {
                        checks.push((format!("severity.default.{field}"), field, template));
                    }
                }
            }
            for (path, field, template) in checks {
                match definition.fields.get(field) {
                    None => report.error(
                        &path,
                        format!(
                            "`{process}` declares no field `{field}`: {}",
                            crate::validate::choices(field, definition.fields.keys())
                        ),
                    ),
                    Some(declared) => {
                        if crate::alerts::is_constant(template) {
                            let value = crate::alerts::constant_value(declared, template);
                            if let Err(message) = crate::values::check_value(declared, &value) {
                                report.error(
                                    &path,
                                    format!("invalid value for `{field}`: {message}"),
                                );
                            }
                        }
                    }
                }
            }
        }
        sources.insert(name.clone(), AlertSource { name, file: parsed });
    }
    sources
}

/// Loads the mailboxes and checks their processes, fields, tag prefixes, link type,
/// addresses (each in one mailbox only) and `on_email` rules. `known` contains the loaded
/// definitions and the files they came from.
#[allow(clippy::too_many_arguments)]
fn load_mailboxes(
    files: &[PathBuf],
    known: (
        &BTreeMap<String, Arc<Definition>>,
        &HashMap<String, PathBuf>,
    ),
    link_types: &IndexMap<String, LinkType>,
    rules: &dyn RuleRunner,
    root: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, Mailbox> {
    let (definitions, origins) = known;
    let mut mailboxes = IndexMap::new();
    let mut owners: HashMap<String, String> = HashMap::new();
    let prefixes: BTreeSet<String> = definitions
        .values()
        .map(|definition| definition.number_prefix.clone())
        .collect();
    for file in files {
        let Some((_, index, parsed, pruned)) = parse_file::<MailboxFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let name = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        if !crate::validate::is_identifier(&name) {
            report.error(
                "",
                format!("invalid mailbox name `{name}`: name the file with lower-case letters, digits and underscores, such as support.yaml"),
            );
        }
        for (path, message) in parsed.problems() {
            report.error(&path, message);
        }
        for (position, address) in parsed.addresses.iter().enumerate() {
            let key = address.trim().to_lowercase();
            if let Some(owner) = owners.get(&key) {
                report.error(
                    &format!("addresses[{position}]"),
                    format!("`{address}` is already an address of mailbox `{owner}`: give each address one mailbox"),
                );
            } else {
                owners.insert(key, name.clone());
            }
        }
        for (position, tag) in parsed.tags.iter().enumerate() {
            if !prefixes.contains(tag) {
                report.error(
                    &format!("tags[{position}]"),
                    format!(
                        "no process numbers its records with `{tag}`: {}",
                        crate::validate::choices(tag, prefixes.iter())
                    ),
                );
            }
        }
        match link_types.get(&parsed.stranger_link) {
            None => report.error(
                "stranger_link",
                format!(
                    "unknown link type `{}`: {}",
                    parsed.stranger_link,
                    crate::validate::choices(&parsed.stranger_link, link_types.keys())
                ),
            ),
            Some(link) if !link.allows_source(&parsed.process) => report.error(
                "stranger_link",
                format!(
                    "link type `{}` does not go from {} records: choose a link type whose `from` allows {}",
                    parsed.stranger_link, parsed.process, parsed.process
                ),
            ),
            Some(_) => {}
        }
        match definitions.get(&parsed.process) {
            None => report.error(
                "process",
                format!(
                    "mailbox `{name}` opens records of unknown process `{}`: {}",
                    parsed.process,
                    crate::validate::choices(&parsed.process, definitions.keys())
                ),
            ),
            Some(definition) => {
                for (field, value) in &parsed.fields {
                    match definition.fields.get(field) {
                        None => report.error(
                            &format!("fields.{field}"),
                            format!(
                                "`{}` declares no field `{field}`: {}",
                                parsed.process,
                                crate::validate::choices(field, definition.fields.keys())
                            ),
                        ),
                        Some(declared) => {
                            if let Err(message) = crate::values::check_value(declared, value) {
                                report.error(
                                    &format!("fields.{field}"),
                                    format!("invalid value for `{field}`: {message}"),
                                );
                            }
                        }
                    }
                }
                if let Some(rule) = &parsed.on_email {
                    let declared_in = match origins.get(&parsed.process) {
                        Some(file) => file.display().to_string(),
                        None => format!("the definition of `{}`", parsed.process),
                    };
                    if check_rule_script(rule, "on_email", rules, root, &mut report, hasher, true) {
                        check_fields_used(definition, rule, rules, &declared_in, &mut report);
                    }
                }
            }
        }
        mailboxes.insert(name.clone(), Mailbox { name, file: parsed });
    }
    mailboxes
}

/// Loads the service level policies and checks their processes, calendars, states,
/// fields and rules.
fn load_sla_policies(
    files: &[PathBuf],
    definitions: &BTreeMap<String, Arc<Definition>>,
    calendars: &BTreeMap<String, Calendar>,
    rules: &dyn RuleRunner,
    root: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, SlaPolicy> {
    let mut policies = IndexMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) = parse_file::<SlaFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut problems = Vec::new();
        for (name, policy) in &parsed.policies {
            let path = format!("policies.{name}");
            if !calendars.contains_key(&policy.calendar) {
                problems.push((
                    format!("{path}.calendar"),
                    format!(
                        "policy `{name}` counts in unknown calendar `{}`: {}",
                        policy.calendar,
                        crate::validate::choices(&policy.calendar, calendars.keys())
                    ),
                ));
            }
            match definitions.get(&policy.process) {
                None => problems.push((
                    format!("{path}.process"),
                    format!(
                        "policy `{name}` covers unknown process `{}`: {}",
                        policy.process,
                        crate::validate::choices(&policy.process, definitions.keys())
                    ),
                )),
                Some(definition) => {
                    for (inner, message) in policy.problems(definition) {
                        problems.push((format!("{path}.{inner}"), message));
                    }
                }
            }
            if policies.contains_key(name) {
                problems.push((
                    path,
                    format!("policy `{name}` is defined twice: rename one"),
                ));
                continue;
            }
            policies.insert(name.clone(), policy.clone());
        }
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (path, message) in problems {
            report.error(&path, message);
        }
        for (name, policy) in &parsed.policies {
            for (number, threshold) in policy.thresholds.iter().enumerate() {
                if let Some(rule) = &threshold.rule {
                    let path = format!("policies.{name}.thresholds[{number}].rule");
                    check_rule_script(rule, &path, rules, root, &mut report, hasher, true);
                }
            }
        }
    }
    policies
}

/// Loads the group files. A group defined in two files is reported at the second one.
fn load_groups(
    files: &[PathBuf],
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, GroupDef> {
    let mut groups = BTreeMap::new();
    let mut origins: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) = parse_file::<GroupFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, group) in parsed.groups {
            let path = format!("groups.{name}");
            if !crate::validate::is_identifier(&name) {
                report.error(
                    &path,
                    format!("invalid group name `{name}`: use lower-case letters, digits and underscores"),
                );
            }
            if group.members.is_empty() {
                report.error(
                    &format!("{path}.members"),
                    format!("group `{name}` has no members: list the user names of its members"),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, member) in group.members.iter().enumerate() {
                if !seen.insert(member) {
                    report.error(
                        &format!("{path}.members[{i}]"),
                        format!("`{member}` is listed twice in group `{name}`: keep one"),
                    );
                }
            }
            if let Some(first) = origins.get(&name) {
                report.error(
                    &path,
                    format!(
                        "group `{name}` is already defined in {}: keep one of them or rename this one",
                        first.display()
                    ),
                );
                continue;
            }
            origins.insert(name.clone(), file.clone());
            groups.insert(name, group);
        }
    }
    groups
}

/// Checks that every calendar a calendar includes exists and that includes form no cycle.
fn check_includes(
    calendars: &BTreeMap<String, Calendar>,
    files: &[PathBuf],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file_of = |name: &str| {
        files
            .iter()
            .find(|file| file.file_stem().and_then(|s| s.to_str()) == Some(name))
            .cloned()
            .unwrap_or_else(|| PathBuf::from("workflows/calendars"))
    };
    for (name, calendar) in calendars {
        for included in &calendar.include {
            if !calendars.contains_key(included) {
                diagnostics.push(Diagnostic {
                    file: file_of(name),
                    line: 0,
                    column: 0,
                    message: format!(
                        "calendar `{name}` includes unknown calendar `{included}`: {}",
                        crate::validate::choices(included, calendars.keys())
                    ),
                });
            }
        }
        // Follow the includes from this calendar; meeting it again is a cycle.
        let mut seen = vec![name.clone()];
        let mut next: Vec<&String> = calendar.include.iter().collect();
        while let Some(included) = next.pop() {
            if included == name {
                diagnostics.push(Diagnostic {
                    file: file_of(name),
                    line: 0,
                    column: 0,
                    message: format!(
                        "calendar `{name}` includes itself through {}: remove one of the includes",
                        seen.join(" -> ")
                    ),
                });
                break;
            }
            if seen.contains(included) {
                continue;
            }
            seen.push(included.clone());
            if let Some(other) = calendars.get(included) {
                next.extend(other.include.iter());
            }
        }
    }
}

/// Loads the scheduled jobs and checks their time zones, the records they open and the
/// rules they run.
fn load_schedules(
    files: &[PathBuf],
    definitions: &BTreeMap<String, Arc<Definition>>,
    origins: &HashMap<String, PathBuf>,
    rules: &dyn RuleRunner,
    root: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, ScheduledJob> {
    let mut schedules = IndexMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) =
            parse_file::<ScheduleFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, job) in parsed.schedules {
            let path = format!("schedules.{name}");
            if job.timezone.parse::<chrono_tz::Tz>().is_err() {
                report.error(
                    &format!("{path}.timezone"),
                    format!(
                        "unknown time zone `{}`: use an IANA name such as Europe/Berlin or UTC",
                        job.timezone
                    ),
                );
            }
            match job.action() {
                Err(message) => report.error(&path, format!("schedule `{name}`: {message}")),
                Ok(ScheduleAction::Open(open)) => {
                    check_scheduled_open(&name, open, definitions, &mut report);
                }
                // Plugins belong to the server, which checks the action when it runs.
                Ok(ScheduleAction::RunAction(_)) => {}
                Ok(ScheduleAction::RunRule(run)) => {
                    let declared_in = match origins.get(&run.process) {
                        Some(file) => file.display().to_string(),
                        None => format!("the definition of `{}`", run.process),
                    };
                    let known = (definitions, rules, root);
                    check_scheduled_rule(&name, run, known, &declared_in, &mut report, hasher);
                }
            }
            if schedules.contains_key(&name) {
                report.error(
                    &path,
                    format!("schedule `{name}` is defined twice: rename one"),
                );
                continue;
            }
            schedules.insert(name, job);
        }
    }
    schedules
}

/// Checks the process and field values of the record a schedule opens.
fn check_scheduled_open(
    name: &str,
    open: &OpenRecord,
    definitions: &BTreeMap<String, Arc<Definition>>,
    report: &mut FileReport<'_>,
) {
    let path = format!("schedules.{name}.open");
    let Some(definition) = definitions.get(&open.process) else {
        report.error(
            &format!("{path}.process"),
            format!(
                "schedule `{name}` opens records of unknown process `{}`: {}",
                open.process,
                crate::validate::choices(&open.process, definitions.keys())
            ),
        );
        return;
    };
    for (field, value) in &open.fields {
        match definition.fields.get(field) {
            None => report.error(
                &format!("{path}.fields.{field}"),
                format!(
                    "`{}` declares no field `{field}`: {}",
                    open.process,
                    crate::validate::choices(field, definition.fields.keys())
                ),
            ),
            Some(declared) => {
                if let Err(message) = crate::values::check_value(declared, value) {
                    report.error(
                        &format!("{path}.fields.{field}"),
                        format!("invalid value for `{field}`: {message}"),
                    );
                }
            }
        }
    }
}

/// Checks the process, states and rule of a schedule's `run_rule`, and the fields the rule
/// names.
/// `known` contains the loaded definitions, the rule runner and the root of `rules/`.
fn check_scheduled_rule(
    name: &str,
    run: &RuleRun,
    known: (&BTreeMap<String, Arc<Definition>>, &dyn RuleRunner, &Path),
    declared_in: &str,
    report: &mut FileReport<'_>,
    hasher: &mut Sha256,
) {
    let (definitions, rules, root) = known;
    let path = format!("schedules.{name}.run_rule");
    let Some(definition) = definitions.get(&run.process) else {
        report.error(
            &format!("{path}.process"),
            format!(
                "schedule `{name}` runs its rule over records of unknown process `{}`: {}",
                run.process,
                crate::validate::choices(&run.process, definitions.keys())
            ),
        );
        return;
    };
    for (position, state) in run.states.iter().enumerate() {
        if !definition.states.contains_key(state) {
            report.error(
                &format!("{path}.states[{position}]"),
                format!(
                    "`{}` has no state `{state}`: {}",
                    run.process,
                    crate::validate::choices(state, definition.states.keys())
                ),
            );
        }
    }
    let rule_path = format!("{path}.rule");
    if check_rule_script(&run.rule, &rule_path, rules, root, report, hasher, true) {
        check_fields_used(definition, &run.rule, rules, declared_in, report);
    }
}

/// Loads the freeze window files.
fn load_freeze_windows(
    files: &[PathBuf],
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, FreezeWindow> {
    let mut windows = IndexMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) = parse_file::<FreezeFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, window) in parsed.freeze_windows {
            if window.end <= window.start {
                report.error(
                    &format!("freeze_windows.{name}.end"),
                    format!("freeze window `{name}` ends before it starts: make `end` later than `start`"),
                );
            }
            if windows.contains_key(&name) {
                report.error(
                    &format!("freeze_windows.{name}"),
                    format!("freeze window `{name}` is defined twice: rename one"),
                );
                continue;
            }
            windows.insert(name, window);
        }
    }
    windows
}

/// Checks that rule `rule`, named at `path`, has a script that compiles, and adds the
/// script to the version hash. Returns whether the rule is usable; problems are reported
/// only when `report_errors` is set, so that a rule named twice is reported once.
pub(crate) fn check_rule_script(
    rule: &str,
    path: &str,
    rules: &dyn RuleRunner,
    root: &Path,
    report: &mut FileReport<'_>,
    hasher: &mut Sha256,
    report_errors: bool,
) -> bool {
    match rules.check(rule) {
        Ok(()) => {
            if let Ok(bytes) = std::fs::read(root.join("rules").join(format!("{rule}.rhai"))) {
                hasher.update(rule.as_bytes());
                hasher.update(&bytes);
            }
            true
        }
        Err(RuleCheckError::Missing { expected, .. }) => {
            if report_errors {
                report.error(
                    path,
                    format!("rule `{rule}` has no script: create {}", expected.display()),
                );
            }
            false
        }
        Err(RuleCheckError::Compile(error)) => {
            if report_errors {
                report.error(path, format!("rule `{rule}` does not compile: {error}"));
            }
            false
        }
    }
}

/// Loads the catalog files and checks each item against the definitions and groups. An
/// item name used in two files is reported at the second one.
#[allow(clippy::too_many_arguments)]
fn load_catalog(
    files: &[PathBuf],
    definitions: &BTreeMap<String, Arc<Definition>>,
    groups: &BTreeMap<String, GroupDef>,
    rules: &dyn RuleRunner,
    root: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, CatalogItem> {
    let mut catalog = IndexMap::new();
    let mut origins: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) = parse_file::<CatalogFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, item) in parsed.items {
            for (path, message) in item.problems(&name, definitions, groups) {
                report.error(&path, message);
            }
            if let Some(rule) = &item.entitlement {
                let path = format!("items.{name}.entitlement");
                check_rule_script(rule, &path, rules, root, &mut report, hasher, true);
            }
            if let Some(first) = origins.get(&name) {
                report.error(
                    &format!("items.{name}"),
                    format!(
                        "catalog item `{name}` is already defined in {}: keep one of them or rename this one",
                        first.display()
                    ),
                );
                continue;
            }
            origins.insert(name.clone(), file.clone());
            catalog.insert(name, item);
        }
    }
    catalog
}

/// Checks that the approvers a definition names exist: every `group:` and `board:` names a
/// group of `workflows/groups/`.
fn check_approvers(
    definition: &Definition,
    groups: &BTreeMap<String, GroupDef>,
    report: &mut FileReport<'_>,
) {
    for (i, transition) in definition.transitions.iter().enumerate() {
        let Some(approval) = &transition.approval else {
            continue;
        };
        let named = approval
            .approvers
            .iter()
            .enumerate()
            .map(|(j, a)| (format!("transitions[{i}].approval.approvers[{j}]"), a))
            .chain(
                approval
                    .escalate_to
                    .iter()
                    .enumerate()
                    .map(|(j, a)| (format!("transitions[{i}].approval.escalate_to[{j}]"), a)),
            );
        for (path, approver) in named {
            match crate::approval::Approver::parse(approver) {
                Err(message) => report.error(&path, message),
                Ok(
                    crate::approval::Approver::Group(group)
                    | crate::approval::Approver::Board(group),
                ) if !groups.contains_key(&group) => {
                    report.error(
                        &path,
                        format!(
                            "unknown group `{group}` in approver `{approver}`: {}",
                            if groups.is_empty() {
                                "define it in workflows/groups/NAME.yaml".to_owned()
                            } else {
                                crate::validate::choices(&group, groups.keys())
                            }
                        ),
                    );
                }
                Ok(_) => {}
            }
        }
    }
}

/// Loads the link type files and checks each type against the known `processes`. A name
/// defined in two files is reported at the second one.
fn load_link_types(
    files: &[PathBuf],
    processes: &BTreeSet<String>,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, LinkType> {
    let mut link_types = IndexMap::new();
    let mut origins: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let Some((_, index, parsed, pruned)) =
            parse_file::<LinkTypeFile>(file, hasher, diagnostics)
        else {
            continue;
        };
        let mut report = FileReport {
            file,
            index: &index,
            diagnostics,
            pruned: &pruned,
        };
        for (name, link_type) in parsed.link_types {
            for (path, message) in link_type.problems(&name, processes) {
                report.error(&path, message);
            }
            if let Some(first) = origins.get(&name) {
                report.error(
                    &format!("link_types.{name}"),
                    format!(
                        "link type `{name}` is already defined in {}: keep one of them or rename this one",
                        first.display()
                    ),
                );
                continue;
            }
            origins.insert(name.clone(), file.clone());
            link_types.insert(name, link_type);
        }
    }
    link_types
}

/// Parses one YAML string into `T`, reporting duplicate keys, syntax errors and type
/// errors with their positions. Exposed so that other file kinds share the same checks.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut hasher = Sha256::new();
    match parse_text(file, text, &mut hasher, &mut diagnostics) {
        Some((_, value, _)) if diagnostics.is_empty() => Ok(value),
        _ => Err(diagnostics),
    }
}

pub(crate) fn yaml_files(dir: &Path, diagnostics: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            diagnostics.push(Diagnostic {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the directory: {error}"),
            });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
        })
        .collect();
    files.sort();
    files
}

pub(crate) fn parse_file<T: DeserializeOwned>(
    file: &Path,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(String, YamlIndex, T, Vec<String>)> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            diagnostics.push(Diagnostic {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {error}"),
            });
            return None;
        }
    };
    let (index, value, pruned) = parse_text(file, &text, hasher, diagnostics)?;
    Some((text, index, value, pruned))
}

/// Parses a file's text. When type errors were found but the rest of the document could
/// still be read, returns the value with the pruned paths: the caller validates it further
/// but must not use it, since the errors are already reported.
fn parse_text<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    hasher: &mut Sha256,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(YamlIndex, T, Vec<String>)> {
    hasher.update(
        file.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    hasher.update(text.as_bytes());

    let index = YamlIndex::build(text).unwrap_or_default();
    if !index.duplicates.is_empty() {
        for duplicate in &index.duplicates {
            let place = if duplicate.path.is_empty() {
                String::new()
            } else {
                format!(" in `{}`", duplicate.path)
            };
            diagnostics.push(Diagnostic {
                file: file.to_path_buf(),
                line: duplicate.again.line,
                column: duplicate.again.column,
                message: format!(
                    "duplicate key `{}`{place} (first at line {}, again at line {}): keep one of them",
                    duplicate.key, duplicate.first.line, duplicate.again.line
                ),
            });
        }
        return None;
    }
    let mut value: serde_norway::Value = match serde_norway::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            let location = error.location();
            diagnostics.push(Diagnostic {
                file: file.to_path_buf(),
                line: location.as_ref().map_or(0, |l| l.line()),
                column: location.as_ref().map_or(0, |l| l.column()),
                message: format!("invalid YAML: {}", strip_location(&error.to_string())),
            });
            return None;
        }
    };
    if let Err(error) = value.apply_merge() {
        diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("invalid merge key: {error}"),
        });
        return None;
    }
    let tolerant = crate::prune::deserialize_tolerant::<T>(value);
    for error in &tolerant.errors {
        let position = index.position(&error.path);
        diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: position.line,
            column: position.column,
            message: explain_type_error(&error.path, &error.message),
        });
    }
    let parsed = tolerant.value?;
    Some((index, parsed, tolerant.pruned))
}

/// Reports fields that a rule names but the definition does not declare, at their place in
/// the script. `declared_in` names where the fields are declared, for the fix.
fn check_fields_used(
    definition: &Definition,
    rule: &str,
    rules: &dyn RuleRunner,
    declared_in: &str,
    report: &mut FileReport<'_>,
) {
    for used in rules.fields_used(rule) {
        let known = definition.fields.contains_key(&used.field)
            || crate::validate::RESERVED_NAMES.contains(&used.field.as_str());
        if known {
            continue;
        }
        let verb = match used.access {
            crate::rules::FieldAccess::Read => "reads",
            crate::rules::FieldAccess::Write => "sets",
        };
        report.diagnostics.push(Diagnostic {
            file: used.path.clone(),
            line: used.line,
            column: used.column,
            message: format!(
                "rule `{rule}` {verb} field `{}`, which the {} process does not declare: declare it under `fields` in {declared_in} or fix the name",
                used.field,
                definition.process,
            ),
        });
    }
}

/// Turns serde's wording into a sentence that names the field and the fix.
fn explain_type_error(path: &str, message: &str) -> String {
    let message = strip_location(message);
    let field = if path.is_empty() {
        String::from("the document")
    } else {
        format!("`{path}`")
    };
    if message.contains("expected a boolean") {
        return format!(
            "{field}: {message}; write true or false (words such as yes, no, on and off are text, not booleans)"
        );
    }
    if message.starts_with("unknown field") {
        return format!("{field}: {message}; fix the spelling or remove the key");
    }
    if message.starts_with("missing field") {
        return format!("{field}: {message}; add it");
    }
    if message.starts_with("unknown variant") {
        return format!("{field}: {message}");
    }
    format!("{field}: {message}")
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

fn check_rules(
    definition: &Definition,
    root: &Path,
    rules: &dyn RuleRunner,
    report: &mut FileReport<'_>,
    hasher: &mut Sha256,
) {
    let mut checked = std::collections::HashSet::new();
    let hooks = definition
        .rules
        .all()
        .into_iter()
        .map(|(hook, position, rule)| (format!("rules.{hook}[{position}]"), rule));
    let guards = definition
        .transitions
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.guard
                .as_ref()
                .map(|g| (format!("transitions[{i}].guard"), g))
        });
    let approval_rules = definition
        .transitions
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.approval
                .as_ref()
                .and_then(|a| a.rule.as_ref())
                .map(|r| (format!("transitions[{i}].approval.rule"), r))
        });
    for (path, rule) in hooks.chain(guards).chain(approval_rules) {
        // A rule used by several hooks is reported at its first use only.
        let first_use = checked.insert(rule);
        if check_rule_script(rule, &path, rules, root, report, hasher, first_use) && first_use {
            let declared_in = report.file.display().to_string();
            check_fields_used(definition, rule, rules, &declared_in, report);
        }
    }
}
