//! The plan of importing one item: the CI to create or update with the attribute
//! changes that the class's ownership and source precedence allow, the software to
//! link and unlink, and the connections to record.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tend_inventory::{Item, ItemKind, Software};
use tend_store::cmdb::{self as store, ChangeSource, Ci};
use tend_store::inventory::{self as discovered, Reported};
use tend_workflow::cmdb::{AttributeOwner, CmdbSchema, ResolvedClass};

use super::matching::{self, Match};

/// Class of the CIs that software is recorded as.
pub const SOFTWARE_CLASS: &str = "software_package";
/// Relationship from a software package to the computer it is installed on.
pub const INSTALLED_ON: &str = "installed_on";
/// Relationship from a device to the network device it is plugged into.
pub const CONNECTED_TO: &str = "connected_to";
/// Key under which the host name is kept among the discovered values.
pub const NAME: &str = "name";
/// Key under which the number of packages a source reported is kept among the discovered
/// values, so that a source ranked lower does not replace the software list of a source
/// ranked higher.
pub const SOFTWARE: &str = "@software";

/// An attribute value the import reported but did not write, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub attribute: String,
    pub reported: Value,
    pub current: Value,
    pub reason: String,
}

/// The software part of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SoftwarePlan {
    /// Packages the document lists.
    pub reported: usize,
    /// Packages to link, as `name version`.
    pub added: Vec<String>,
    /// Packages to unlink because the document no longer lists them.
    pub removed: Vec<String>,
    /// Software package CIs to create first.
    pub new_packages: usize,
    #[serde(skip)]
    pub(super) link: Vec<PackageRef>,
    #[serde(skip)]
    pub(super) unlink: Vec<i64>,
}

/// A package to link: an existing CI, or one to create.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PackageRef {
    Existing(i64),
    New(Software),
}

/// The connections part of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectionPlan {
    /// Devices to record as connected, as `port: CI id (name)`.
    pub added: Vec<String>,
    /// Connections the device no longer reports.
    pub removed: usize,
    /// MAC addresses seen on ports that match no single CI.
    pub unknown_macs: usize,
    #[serde(skip)]
    pub(super) link: Vec<i64>,
    #[serde(skip)]
    pub(super) unlink: Vec<i64>,
}

/// The changes that importing one item makes, or would make in a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemPlan {
    /// `create`, `update`, `unchanged`, `conflict` or `rejected`.
    pub action: &'static str,
    pub class: String,
    pub name: String,
    /// Id of the matched CI.
    pub ci_id: Option<i64>,
    /// The key the CI was matched by.
    pub matched_by: Option<String>,
    /// Attribute (or `name`) → `{"before": …, "after": …}`.
    pub changes: Map<String, Value>,
    pub kept: Vec<Kept>,
    pub software: SoftwarePlan,
    pub connections: ConnectionPlan,
    /// Reason a conflict or a rejected item is not applied.
    pub message: Option<String>,
    /// Values the source reported, saved for precedence and the audit.
    #[serde(skip)]
    pub(super) reported: BTreeMap<String, Reported>,
    /// Attributes a new CI gets.
    #[serde(skip)]
    pub(super) attributes: Map<String, Value>,
}

impl ItemPlan {
    fn refused(action: &'static str, class: String, item: &Item, message: String) -> ItemPlan {
        ItemPlan {
            action,
            class,
            name: display_name(item),
            ci_id: None,
            matched_by: None,
            changes: Map::new(),
            kept: Vec::new(),
            software: SoftwarePlan::default(),
            connections: ConnectionPlan::default(),
            message: Some(message),
            reported: BTreeMap::new(),
            attributes: Map::new(),
        }
    }

    /// Checks whether applying the plan writes anything to the CMDB.
    pub fn changes_anything(&self) -> bool {
        !self.changes.is_empty()
            || !self.software.link.is_empty()
            || !self.software.unlink.is_empty()
            || !self.connections.link.is_empty()
            || !self.connections.unlink.is_empty()
    }
}

/// Returns the name a new CI gets: the host name, else an identifier, else the kind.
fn display_name(item: &Item) -> String {
    if let Some(name) = item
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return name.to_owned();
    }
    for attribute in ["fqdn", "serial_number", "uuid"] {
        if let Some(value) = item.text(attribute) {
            return value.to_owned();
        }
    }
    if let Some(Value::Array(macs)) = item.attributes.get("mac_addresses")
        && let Some(Value::String(mac)) = macs.first()
    {
        return mac.clone();
    }
    format!("unnamed {}", item.kind.as_str().replace('_', " "))
}

/// Chooses the class of a new CI for `item`. A computer becomes a virtual machine, a
/// laptop or a server by what the agent reports of it, else a workstation. Other devices
/// get the class of their kind.
pub fn class_for(item: &Item) -> &'static str {
    match item.kind {
        ItemKind::NetworkDevice => "network_device",
        ItemKind::Printer => "printer",
        ItemKind::Phone => "phone",
        ItemKind::Computer => {
            let chassis = item.chassis.as_deref().unwrap_or_default().to_lowercase();
            let os = item.text("os_name").unwrap_or_default().to_lowercase();
            if item.virtual_machine {
                "virtual_machine"
            } else if [
                "notebook",
                "laptop",
                "portable",
                "convertible",
                "detachable",
            ]
            .iter()
            .any(|word| chassis.contains(word))
            {
                "laptop"
            } else if ["rack", "server", "blade", "multi-system"]
                .iter()
                .any(|word| chassis.contains(word))
                || os.contains("server")
            {
                "server"
            } else {
                "workstation"
            }
        }
    }
}

/// Returns the class that matching searches under: every computer for a computer, else
/// the class itself.
fn match_root(item: &Item, class: &str) -> String {
    match item.kind {
        ItemKind::Computer | ItemKind::Phone => "computer".to_owned(),
        _ => class.to_owned(),
    }
}

/// Input of [`plan_item`].
pub struct PlanInput<'a> {
    pub schema: &'a CmdbSchema,
    pub source: &'a str,
    pub device_id: Option<&'a str>,
    pub partial: bool,
    pub item: &'a Item,
}

/// Plans the import of one item against the CMDB as `db` shows it.
pub async fn plan_item<C: ConnectionTrait>(
    db: &C,
    input: PlanInput<'_>,
) -> Result<ItemPlan, tend_store::Error> {
    let PlanInput {
        schema,
        source,
        device_id,
        partial,
        item,
    } = input;
    let wanted_class = class_for(item);
    let Some(new_class) = schema.class(wanted_class) else {
        return Ok(ItemPlan::refused(
            "rejected",
            wanted_class.to_owned(),
            item,
            format!(
                "the document describes a {}, and there is no CI class `{wanted_class}`: add it to workflows/cmdb/classes/ to import such devices",
                item.kind.as_str().replace('_', " ")
            ),
        ));
    };
    let root = match_root(item, wanted_class);

    let found = if partial {
        match_partial(db, schema, source, device_id, &root).await?
    } else {
        matching::find(db, schema, new_class, &root, item).await?
    };
    let (ci, matched_by) = match found {
        Match::Conflict(message) => {
            return Ok(ItemPlan::refused(
                "conflict",
                wanted_class.to_owned(),
                item,
                message,
            ));
        }
        Match::New if partial => {
            return Ok(ItemPlan::refused(
                "rejected",
                wanted_class.to_owned(),
                item,
                format!(
                    "the partial inventory names device id `{}`, which no CI has been imported with from {source}: send a full inventory of the device first",
                    device_id.unwrap_or("(none)")
                ),
            ));
        }
        Match::New if !identifiable(new_class, item) => {
            return Ok(ItemPlan::refused(
                "rejected",
                wanted_class.to_owned(),
                item,
                format!(
                    "the document reports none of {} or a name for this {}{}, so nothing could match it again and every import would add a new CI: make the agent report one of them",
                    key_attributes(new_class).join(", "),
                    item.kind.as_str().replace('_', " "),
                    if item.placeholders.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it gives only placeholder values for {}, such as a sanitised or unfilled field)",
                            item.placeholders
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            ));
        }
        Match::New => (None, None),
        Match::Found { ci, by } => (Some(*ci), Some(by)),
    };

    let class = match &ci {
        Some(ci) => match schema.class(&ci.class) {
            Some(class) => class,
            None => {
                return Ok(ItemPlan::refused(
                    "rejected",
                    ci.class.clone(),
                    item,
                    format!(
                        "the document matches CI {} of class `{}`, which the definitions no longer declare: restore the class in workflows/cmdb/classes/",
                        ci.id, ci.class
                    ),
                ));
            }
        },
        None => new_class,
    };
    let previous = match &ci {
        Some(ci) => discovered::discovered_of(db, ci.id).await?,
        None => Vec::new(),
    };

    let mut plan = ItemPlan {
        action: "create",
        class: class.name.clone(),
        name: display_name(item),
        ci_id: ci.as_ref().map(|ci| ci.id),
        matched_by,
        changes: Map::new(),
        kept: Vec::new(),
        software: SoftwarePlan::default(),
        connections: ConnectionPlan::default(),
        message: None,
        reported: reported_values(item),
        attributes: Map::new(),
    };
    plan_attributes(&mut plan, class, source, ci.as_ref(), &previous, item);
    if let Some(message) = missing_required(class, ci.as_ref(), &plan.attributes) {
        return Ok(ItemPlan::refused(
            "rejected",
            class.name.clone(),
            item,
            message,
        ));
    }
    if let Some(software) = &item.software {
        let outranked_by = class
            .sources
            .iter()
            .take_while(|listed| listed.as_str() != source)
            .find(|higher| {
                previous
                    .iter()
                    .any(|entry| entry.attribute == SOFTWARE && entry.source == **higher)
            });
        match outranked_by {
            Some(higher) => plan.kept.push(Kept {
                attribute: "software".to_owned(),
                reported: Value::from(software.len()),
                current: Value::Null,
                reason: format!(
                    "{higher} ranks above {source} and reports this CI's software, so its list stands"
                ),
            }),
            None => {
                plan.software = plan_software(db, schema, class, ci.as_ref(), software).await?;
            }
        }
    }
    if item.kind == ItemKind::NetworkDevice {
        plan.connections = plan_connections(db, schema, ci.as_ref(), item, partial).await?;
    }
    if let Some(ci) = &ci {
        plan.name = ci.name.clone();
        if let Some(change) = plan.changes.get(NAME).and_then(|c| c.get("after")) {
            plan.name = change.as_str().unwrap_or_default().to_owned();
        }
        plan.action = if plan.changes_anything() {
            "update"
        } else {
            "unchanged"
        };
    }
    Ok(plan)
}

/// Returns the attributes that the identification keys of `class` name, in key order.
fn key_attributes(class: &ResolvedClass) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for attribute in class.keys.iter().flatten() {
        if !names.contains(attribute) {
            names.push(attribute.clone());
        }
    }
    names
}

/// Checks whether `item` carries something to find it by again: a value of a key
/// attribute of `class`, or a name.
fn identifiable(class: &ResolvedClass, item: &Item) -> bool {
    let named = item
        .name
        .as_deref()
        .is_some_and(|name| !name.trim().is_empty());
    named
        || key_attributes(class)
            .iter()
            .any(|attribute| item.attributes.contains_key(attribute))
}

/// Matches a partial document by the device id of its agent.
async fn match_partial<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    source: &str,
    device_id: Option<&str>,
    root: &str,
) -> Result<Match, tend_store::Error> {
    let Some(device_id) = device_id else {
        return Ok(Match::New);
    };
    let ids = discovered::find_ci_by_device(db, source, device_id).await?;
    let cis: Vec<Ci> = store::load_cis(db, &ids)
        .await?
        .into_iter()
        .filter(|ci| ci.retired_at.is_none())
        .filter(|ci| schema.class(&ci.class).is_some_and(|c| c.is_a(root)))
        .collect();
    Ok(match cis.len() {
        0 => Match::New,
        1 => Match::Found {
            ci: Box::new(cis.into_iter().next().unwrap_or_else(|| unreachable!())),
            by: "device_id".to_owned(),
        },
        _ => Match::Conflict(format!(
            "device id `{device_id}` was last reported for {} CIs ({}): send a full inventory so the device is matched by its hardware",
            cis.len(),
            cis.iter()
                .map(|ci| ci.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}

/// Returns the values to save as reported by the source: every attribute, the
/// placeholders, the host name and the size of the software list.
fn reported_values(item: &Item) -> BTreeMap<String, Reported> {
    let mut reported: BTreeMap<String, Reported> = item
        .attributes
        .iter()
        .map(|(attribute, value)| {
            (
                attribute.clone(),
                Reported {
                    value: value.clone(),
                    placeholder: false,
                },
            )
        })
        .collect();
    for (attribute, value) in &item.placeholders {
        reported.insert(
            attribute.clone(),
            Reported {
                value: Value::String(value.clone()),
                placeholder: true,
            },
        );
    }
    if let Some(software) = &item.software {
        reported.insert(
            SOFTWARE.to_owned(),
            Reported {
                value: Value::from(software.len()),
                placeholder: false,
            },
        );
    }
    if let Some(name) = item
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        reported.insert(
            NAME.to_owned(),
            Reported {
                value: Value::String(name.to_owned()),
                placeholder: false,
            },
        );
    }
    reported
}

/// Decides attribute by attribute what the import writes: people-owned attributes only
/// on a new CI, discovery-owned ones when the source may write them and no source
/// ranked above it reports a value.
fn plan_attributes(
    plan: &mut ItemPlan,
    class: &ResolvedClass,
    source: &str,
    ci: Option<&Ci>,
    previous: &[discovered::Discovered],
    item: &Item,
) {
    for (attribute, reported) in &item.attributes {
        let Some(resolved) = class.attributes.get(attribute) else {
            continue;
        };
        // Values that do not fit the declared type are kept as reported only.
        let single = Map::from_iter([(attribute.clone(), reported.clone())]);
        let value = match crate::cmdb::check_attributes(class, &single, false) {
            Ok(checked) => checked
                .values
                .get(attribute)
                .cloned()
                .unwrap_or(Value::Null),
            Err(error) => {
                plan.kept
                    .push(kept(attribute, reported, ci, error.to_string()));
                continue;
            }
        };
        let Some(ci) = ci else {
            plan.changes
                .insert(attribute.clone(), json!({ "before": null, "after": value }));
            plan.attributes.insert(attribute.clone(), value);
            continue;
        };
        let current = ci.attributes.get(attribute).cloned().unwrap_or(Value::Null);
        if current == value {
            continue;
        }
        if resolved.def.owner == AttributeOwner::People {
            plan.kept.push(kept(
                attribute,
                reported,
                Some(ci),
                "people own this attribute, so imports never change it".to_owned(),
            ));
            continue;
        }
        let writers = class.writers(attribute);
        let Some(rank) = writers.iter().position(|writer| writer == source) else {
            plan.kept.push(kept(
                attribute,
                reported,
                Some(ci),
                format!(
                    "{source} may not write it (sources: {})",
                    if writers.is_empty() {
                        "none".to_owned()
                    } else {
                        writers.join(", ")
                    }
                ),
            ));
            continue;
        };
        let winner = previous.iter().find(|entry| {
            entry.attribute == *attribute
                && !entry.placeholder
                && writers[..rank].contains(&entry.source)
        });
        if let Some(winner) = winner {
            plan.kept.push(kept(
                attribute,
                reported,
                Some(ci),
                format!(
                    "{} ranks above {source} for this attribute and reports {}",
                    winner.source, winner.value
                ),
            ));
            continue;
        }
        plan.changes.insert(
            attribute.clone(),
            json!({ "before": current, "after": value }),
        );
    }

    let Some(ci) = ci else {
        return;
    };
    // A CI follows its host name while its name is still the one this source last
    // reported, so a name that a person gave it is kept.
    if let Some(name) = item
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        && name != ci.name
    {
        let last = previous
            .iter()
            .find(|entry| entry.attribute == NAME && entry.source == source);
        if last.is_some_and(|entry| entry.value.as_str() == Some(ci.name.as_str())) {
            plan.changes
                .insert(NAME.to_owned(), json!({ "before": ci.name, "after": name }));
        } else {
            plan.kept.push(kept(
                NAME,
                &Value::String(name.to_owned()),
                None,
                format!(
                    "the CI is named `{}` by a person or another source, so the import keeps that name",
                    ci.name
                ),
            ));
        }
    }
}

fn kept(attribute: &str, reported: &Value, ci: Option<&Ci>, reason: String) -> Kept {
    Kept {
        attribute: attribute.to_owned(),
        reported: reported.clone(),
        current: ci
            .and_then(|ci| ci.attributes.get(attribute))
            .cloned()
            .unwrap_or(Value::Null),
        reason,
    }
}

/// Returns why a new CI cannot be created: a required attribute no document carries.
fn missing_required(
    class: &ResolvedClass,
    ci: Option<&Ci>,
    attributes: &Map<String, Value>,
) -> Option<String> {
    if ci.is_some() {
        return None;
    }
    let missing: Vec<&str> = class
        .attributes
        .iter()
        .filter(|(name, attribute)| attribute.def.required && !attributes.contains_key(*name))
        .map(|(name, _)| name.as_str())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "a new {} needs {}, which the document does not report: create the CI by hand with it, or make the attribute optional",
            class.name,
            missing.join(", ")
        )
    })
}

/// Returns a package's identity as the key index compares it.
fn package_key(name: &str, version: Option<&str>) -> (String, String) {
    (
        store::key_value(name),
        store::key_value(version.unwrap_or_default()),
    )
}

/// Plans the software links of a computer: packages are matched by name and version
/// (created when new), and links to packages the document no longer lists go.
async fn plan_software<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    class: &ResolvedClass,
    ci: Option<&Ci>,
    software: &[Software],
) -> Result<SoftwarePlan, tend_store::Error> {
    let mut plan = SoftwarePlan::default();
    let Some(kind) = schema.relationship_type(INSTALLED_ON) else {
        return Ok(plan);
    };
    if schema.class(SOFTWARE_CLASS).is_none() || !schema.allows_target(kind, &class.name) {
        return Ok(plan);
    }
    let mut wanted: BTreeMap<(String, String), &Software> = BTreeMap::new();
    for package in software {
        wanted
            .entry(package_key(&package.name, package.version.as_deref()))
            .or_insert(package);
    }
    plan.reported = wanted.len();

    let names: Vec<String> = wanted.keys().map(|(name, _)| name.clone()).collect();
    let ids = store::find_cis_by_key_values(db, "package_name", &names).await?;
    let mut existing: BTreeMap<(String, String), i64> = BTreeMap::new();
    for package in store::load_cis(db, &ids).await? {
        if package.retired_at.is_some() || package.class != SOFTWARE_CLASS {
            continue;
        }
        let name = package
            .attributes
            .get("package_name")
            .and_then(Value::as_str);
        let version = package.attributes.get("version").and_then(Value::as_str);
        if let Some(name) = name {
            existing
                .entry(package_key(name, version))
                .or_insert(package.id);
        }
    }

    // Installed packages with their relationship id, and whether an import linked them:
    // only those are unlinked when the document no longer lists them.
    let mut linked: BTreeMap<i64, (i64, bool)> = BTreeMap::new();
    if let Some(ci) = ci {
        for relationship in store::relationships_of(db, ci.id).await? {
            if relationship.kind == INSTALLED_ON && relationship.target == ci.id {
                let imported = relationship.created_via == ChangeSource::Import.as_str();
                linked.insert(relationship.source, (relationship.id, imported));
            }
        }
    }
    let mut keep: BTreeSet<i64> = BTreeSet::new();
    for (key, package) in &wanted {
        let label = match &package.version {
            Some(version) => format!("{} {version}", package.name),
            None => package.name.clone(),
        };
        match existing.get(key) {
            Some(id) if linked.contains_key(id) => {
                keep.insert(*id);
            }
            Some(id) => {
                keep.insert(*id);
                plan.added.push(label);
                plan.link.push(PackageRef::Existing(*id));
            }
            None => {
                plan.added.push(label);
                plan.new_packages += 1;
                plan.link.push(PackageRef::New((*package).clone()));
            }
        }
    }
    let gone: Vec<i64> = linked
        .iter()
        .filter(|(id, (_, imported))| *imported && !keep.contains(id))
        .map(|(id, _)| *id)
        .collect();
    if !gone.is_empty() {
        for package in store::load_cis(db, &gone).await? {
            plan.removed.push(package.name);
        }
        for id in gone {
            plan.unlink.push(linked[&id].0);
        }
    }
    Ok(plan)
}

/// Plans the `connected_to` relationships of a network device from the MAC addresses
/// and neighbours seen on its ports. Only a MAC or name that matches exactly one CI is
/// linked. A complete document also unlinks the devices it no longer reports.
async fn plan_connections<C: ConnectionTrait>(
    db: &C,
    schema: &CmdbSchema,
    ci: Option<&Ci>,
    item: &Item,
    partial: bool,
) -> Result<ConnectionPlan, tend_store::Error> {
    let mut plan = ConnectionPlan::default();
    let Some(kind) = schema.relationship_type(CONNECTED_TO) else {
        return Ok(plan);
    };
    let mut wanted: BTreeMap<i64, String> = BTreeMap::new();
    for connection in &item.connections {
        let mut found: BTreeSet<i64> = BTreeSet::new();
        for mac in &connection.macs {
            let ids = store::find_cis_by_key(db, "mac_addresses", mac).await?;
            if ids.len() == 1 {
                found.extend(ids);
            } else {
                plan.unknown_macs += 1;
            }
        }
        if let Some(neighbour) = &connection.neighbour {
            let named = store::find_cis_by_name(db, neighbour).await?;
            if named.len() == 1 {
                found.insert(named[0].id);
            }
        }
        for id in found {
            wanted.entry(id).or_insert_with(|| connection.port.clone());
        }
    }
    let candidates: Vec<i64> = wanted.keys().copied().collect();
    let mut allowed: BTreeMap<i64, Ci> = BTreeMap::new();
    for other in store::load_cis(db, &candidates).await? {
        let is_self = ci.is_some_and(|ci| ci.id == other.id);
        if !is_self && other.retired_at.is_none() && schema.allows_source(kind, &other.class) {
            allowed.insert(other.id, other);
        }
    }

    let mut linked: BTreeMap<i64, (i64, bool)> = BTreeMap::new();
    if let Some(ci) = ci {
        for relationship in store::relationships_of(db, ci.id).await? {
            if relationship.kind == CONNECTED_TO && relationship.target == ci.id {
                let imported = relationship.created_via == ChangeSource::Import.as_str();
                linked.insert(relationship.source, (relationship.id, imported));
            }
        }
    }
    for (id, other) in &allowed {
        if !linked.contains_key(id) {
            plan.added
                .push(format!("{}: CI {id} ({})", wanted[id], other.name));
            plan.link.push(*id);
        }
    }
    if !partial {
        for (source, (relationship, imported)) in &linked {
            if *imported && !allowed.contains_key(source) {
                plan.removed += 1;
                plan.unlink.push(*relationship);
            }
        }
    }
    Ok(plan)
}
