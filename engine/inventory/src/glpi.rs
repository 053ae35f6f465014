//! The GLPI agent JSON inventory format: `{"deviceid", "action", "itemtype", "partial",
//! "content": {…}}`, whose content sections are the lower-case FusionInventory XML
//! sections (`hardware`, `bios`, `networks`, …) plus `network_device` and
//! `network_ports` for SNMP inventories.

use serde_json::Value;

use crate::computer::{self, ComputerReport, Cpu, Interface, software_entry};
use crate::json;
use crate::network::{self, DeviceReport, Firmware, Port};
use crate::{Document, Format, Item, ItemKind, ReadError};

const EXPECTED_SHAPE: &str =
    r#"{"deviceid": "…", "itemtype": "Computer", "content": {"hardware": {…}, "bios": {…}, …}}"#;

const SUPPORTED_ITEMTYPES: &str = "Computer, Phone, NetworkEquipment, Printer and Unmanaged";

/// Sections of which a full computer inventory carries at least one. Without them
/// nothing identifies the machine.
const COMPUTER_SECTIONS: [&str; 4] = ["hardware", "bios", "operatingsystem", "networks"];

/// Reads a GLPI agent JSON inventory.
pub(crate) fn read(value: &Value) -> Result<Document, ReadError> {
    let Some(object) = value.as_object() else {
        return Err(ReadError::NotInventory(format!(
            "the JSON document is {}, not a GLPI agent inventory (nor `lshw -json` output): expected an object such as {EXPECTED_SHAPE}",
            describe(value)
        )));
    };
    let schema_keys = ["$schema", "$defs", "definitions"];
    if schema_keys.iter().any(|key| object.contains_key(*key)) {
        return Err(ReadError::NotInventory(
            "the JSON document is a JSON schema (it has \"$schema\", \"$defs\" or \"definitions\"), not an inventory: send an agent inventory that follows the schema, not the schema itself".to_owned(),
        ));
    }
    let Some(content) = value.get("content") else {
        let action = json::text(value, "action")
            .map(|action| format!(" (its action is {action:?})"))
            .unwrap_or_default();
        return Err(ReadError::NotInventory(format!(
            "the JSON document has no \"content\" object, so it carries no inventory{action}: a GLPI agent inventory has the shape {EXPECTED_SHAPE}"
        )));
    };
    if !content.is_object() {
        return Err(ReadError::NotInventory(format!(
            "the \"content\" of the JSON document is {}, not an object of inventory sections: expected the shape {EXPECTED_SHAPE}",
            describe(content)
        )));
    }

    let partial = json::flag(value, "partial").unwrap_or(false);
    let itemtype = json::text(value, "itemtype");
    let item = match itemtype.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("computer") => read_computer(content, partial, ItemKind::Computer)?,
        Some("phone") => read_computer(content, partial, ItemKind::Phone)?,
        Some("networkequipment") => read_device(content, partial, Some(ItemKind::NetworkDevice))?,
        Some("printer") => read_device(content, partial, Some(ItemKind::Printer))?,
        // The agent sends devices it could not classify as Unmanaged, and their
        // sections tell whether they were inventoried over SNMP or by an agent.
        Some("unmanaged") if content.get("network_device").is_some() => {
            read_device(content, partial, None)?
        }
        Some("unmanaged") => read_computer(content, partial, ItemKind::Computer)?,
        Some(_) => {
            return Err(ReadError::NotInventory(format!(
                "the itemtype {:?} is not supported: the supported itemtypes are {SUPPORTED_ITEMTYPES}",
                itemtype.unwrap_or_default()
            )));
        }
    };

    Ok(Document {
        format: Format::GlpiJson,
        device_id: json::text(value, "deviceid"),
        partial,
        items: vec![item],
    })
}

/// Names the JSON type of `value` for messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_computer(content: &Value, partial: bool, kind: ItemKind) -> Result<Item, ReadError> {
    let has_identity = COMPUTER_SECTIONS
        .iter()
        .any(|section| content.get(section).is_some());
    if !partial && !has_identity {
        return Err(ReadError::NotInventory(format!(
            "the content has none of the sections {}, so nothing identifies the {}: send the agent's full inventory, or mark a partial one with \"partial\": true",
            COMPUTER_SECTIONS.join(", "),
            kind.as_str()
        )));
    }
    let null = Value::Null;
    let hardware = content.get("hardware").unwrap_or(&null);
    let bios = content.get("bios").unwrap_or(&null);
    let os = content.get("operatingsystem").unwrap_or(&null);

    // A partial document reports only the sections it carries, so a missing
    // "softwares" there means unchanged, not uninstalled.
    let software = if partial && content.get("softwares").is_none() {
        None
    } else {
        Some(
            json::list(content, "softwares")
                .into_iter()
                .filter_map(|software| {
                    software_entry(
                        json::text(software, "name").as_deref(),
                        json::text(software, "version").as_deref(),
                        json::text(software, "publisher").as_deref(),
                    )
                })
                .collect(),
        )
    };

    let report = ComputerReport {
        host_name: json::text(hardware, "name"),
        uuid: json::text(hardware, "uuid"),
        serial_number: json::text(bios, "ssn"),
        asset_tag: json::text(bios, "assettag"),
        manufacturers: texts(&[(bios, "smanufacturer"), (bios, "mmanufacturer")]),
        model: json::text(bios, "smodel"),
        os_names: texts(&[(os, "full_name"), (hardware, "osname"), (os, "name")]),
        os_versions: texts(&[(os, "version"), (hardware, "osversion")]),
        kernel_name: json::text(os, "kernel_name"),
        dns_domain: json::text(os, "dns_domain"),
        workgroup: json::text(hardware, "workgroup"),
        chassis: json::text(hardware, "chassis_type").or_else(|| json::text(bios, "type")),
        vm_system: json::text(hardware, "vmsystem"),
        memory_mb: json::number(hardware, "memory"),
        memory_modules_mb: json::list(content, "memories")
            .into_iter()
            .filter_map(|memory| json::number(memory, "capacity"))
            .collect(),
        cpus: json::list(content, "cpus")
            .into_iter()
            .map(|cpu| Cpu {
                name: json::text(cpu, "name"),
                cores: json::number(cpu, "core"),
            })
            .collect(),
        interfaces: json::list(content, "networks")
            .into_iter()
            .map(read_interface)
            .collect(),
        software,
    };
    Ok(computer::to_item(report, Some(kind)))
}

fn read_interface(network: &Value) -> Interface {
    Interface {
        name: json::text(network, "description"),
        kind: json::text(network, "type"),
        mac: json::text(network, "mac"),
        ips: texts(&[(network, "ipaddress"), (network, "ipaddress6")]),
        virtual_device: json::flag(network, "virtualdev"),
        pnp_device_id: json::text(network, "pnpdeviceid"),
    }
}

/// Reads an SNMP inventory. With `kind` `None` the device's own type decides, as for a
/// network discovery.
fn read_device(content: &Value, partial: bool, kind: Option<ItemKind>) -> Result<Item, ReadError> {
    let Some(device) = content.get("network_device") else {
        if !partial {
            return Err(ReadError::NotInventory(
                "the content has no \"network_device\" section, so nothing identifies the device: an SNMP inventory carries \"network_device\" and \"network_ports\"".to_owned(),
            ));
        }
        let kind = kind.unwrap_or(ItemKind::Computer);
        return Ok(network::to_item(
            DeviceReport {
                ports: read_ports(content),
                ..DeviceReport::default()
            },
            kind,
        ));
    };

    let report = DeviceReport {
        device_type: json::text(device, "type"),
        host_names: texts(&[(device, "name")]),
        serial_number: json::text(device, "serial"),
        asset_tag: json::text(device, "assettag"),
        manufacturer: json::text(device, "manufacturer"),
        model: json::text(device, "model"),
        firmware: json::text(device, "firmware"),
        description: json::text(device, "description"),
        macs: json::texts(device, "mac"),
        ips: json::texts(device, "ips"),
        memory_mb: json::number(device, "ram"),
        firmwares: json::list(content, "firmwares")
            .into_iter()
            .map(|firmware| Firmware {
                kind: json::text(firmware, "type"),
                name: json::text(firmware, "name"),
                description: json::text(firmware, "description"),
                version: json::text(firmware, "version"),
            })
            .collect(),
        ports: read_ports(content),
    };
    let kind = kind.unwrap_or_else(|| {
        network::kind_from_type(report.device_type.as_deref(), ItemKind::Computer)
    });
    Ok(network::to_item(report, kind))
}

fn read_ports(content: &Value) -> Vec<Port> {
    json::list(content, "network_ports")
        .into_iter()
        .map(read_port)
        .collect()
}

fn read_port(port: &Value) -> Port {
    let mut macs = Vec::new();
    let mut neighbours = Vec::new();
    // Learnt MACs and LLDP/CDP neighbours both come as "connections", but some agent
    // versions put the neighbour in an "lldp" or "cdp" object instead.
    let neighbour_objects = ["lldp", "cdp"]
        .into_iter()
        .filter_map(|key| port.get(key).filter(|value| value.is_object()));
    for connection in json::list(port, "connections")
        .into_iter()
        .chain(neighbour_objects)
    {
        macs.extend(json::texts(connection, "mac"));
        macs.extend(json::texts(connection, "sysmac"));
        neighbours.extend(json::text(connection, "sysname"));
    }
    Port {
        name: json::text(port, "ifname"),
        description: json::text(port, "ifdescr"),
        number: json::text(port, "ifnumber"),
        if_type: json::number(port, "iftype").map(|if_type| if_type as u32),
        macs,
        neighbours,
    }
}

/// Returns the texts found at each (object, key) pair, in order, skipping missing ones.
fn texts(sources: &[(&Value, &str)]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|(object, key)| json::text(object, key))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error_message(value: Value) -> String {
        read(&value).unwrap_err().to_string()
    }

    #[test]
    fn schema_is_rejected() {
        let message = error_message(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": {},
            "properties": {}
        }));
        assert!(message.contains("JSON schema"), "{message}");
    }

    #[test]
    fn missing_content_names_the_shape() {
        let message = error_message(json!({"deviceid": "pc-1", "action": "contact"}));
        assert!(message.contains("no \"content\""), "{message}");
        assert!(message.contains("\"contact\""), "{message}");
        assert!(message.contains("\"itemtype\": \"Computer\""), "{message}");
    }

    #[test]
    fn scalar_is_rejected_with_its_type() {
        let message = error_message(json!("inventory"));
        assert!(message.contains("a string"), "{message}");
    }

    #[test]
    fn unknown_itemtype_names_the_supported_ones() {
        let message = error_message(json!({"itemtype": "Monitor", "content": {"hardware": {}}}));
        assert!(message.contains("\"Monitor\""), "{message}");
        assert!(message.contains("NetworkEquipment"), "{message}");
    }

    #[test]
    fn empty_full_content_is_rejected() {
        let message = error_message(json!({"deviceid": "pc-1", "content": {}}));
        assert!(message.contains("nothing identifies"), "{message}");
    }

    #[test]
    fn partial_without_software_keeps_software_unknown() {
        let document = read(&json!({
            "deviceid": "pc-1",
            "partial": true,
            "content": {"cpus": [{"name": "Core i5", "core": 2}]}
        }))
        .unwrap();
        assert!(document.partial);
        let item = &document.items[0];
        assert_eq!(item.software, None);
        assert_eq!(item.text("cpu"), Some("Core i5"));
        assert_eq!(item.attributes["cpu_cores"], json!(2));
    }

    #[test]
    fn full_document_without_software_has_empty_list() {
        let document = read(&json!({"content": {"hardware": {"name": "pc-1"}}})).unwrap();
        assert_eq!(document.items[0].software, Some(Vec::new()));
        assert_eq!(document.items[0].kind, ItemKind::Computer);
    }

    #[test]
    fn unmanaged_device_kind_comes_from_its_type() {
        let document = read(&json!({
            "itemtype": "Unmanaged",
            "content": {"network_device": {"name": "prn-2", "type": "Printer"}}
        }))
        .unwrap();
        assert_eq!(document.items[0].kind, ItemKind::Printer);
        assert_eq!(document.items[0].name.as_deref(), Some("prn-2"));
    }
}
