//! The output of `lshw -json`: a tree of hardware nodes, each with an `id`, a `class`
//! and its `children`, whose root is the machine (`class: system`). Newer lshw versions
//! wrap the root in an array.

use serde_json::Value;

use crate::computer::{self, ComputerReport, Cpu, Interface};
use crate::json;
use crate::{Document, Format, ItemKind, ReadError};

/// The value `lshw -sanitize` writes in place of serial numbers, UUIDs and IP addresses.
const SANITIZED: &str = "[REMOVED]";

/// The root id that `lshw -sanitize` uses in place of the host name.
const SANITIZED_HOST_NAME: &str = "computer";

/// Network drivers of software interfaces, whose MACs do not identify the machine.
const VIRTUAL_NETWORK_DRIVERS: [&str; 13] = [
    "bridge",
    "veth",
    "tun",
    "vxlan",
    "dummy",
    "bonding",
    "team",
    "macvlan",
    "ipvlan",
    "openvswitch",
    "ifb",
    "wireguard",
    "vrf",
];

const BYTES_PER_MIB: f64 = 1_048_576.0;

/// Checks whether `value` is lshw output: a node object, or an array whose first element
/// is one, with a string `id` and `class`. GLPI agent documents have neither.
pub(crate) fn looks_like(value: &Value) -> bool {
    let node = match value {
        Value::Array(nodes) => nodes.first(),
        other => Some(other),
    };
    node.is_some_and(|node| {
        node.get("id").is_some_and(Value::is_string)
            && node.get("class").is_some_and(Value::is_string)
            && node.get("content").is_none()
    })
}

/// Reads `lshw -json` output into a computer item. lshw reports no software, so the
/// item's software is unknown.
pub(crate) fn read(value: &Value) -> Result<Document, ReadError> {
    let nodes: Vec<&Value> = match value {
        Value::Array(nodes) => nodes.iter().collect(),
        other => vec![other],
    };
    let Some(system) = nodes.iter().find(|node| class(node) == Some("system")) else {
        let classes: Vec<&str> = nodes.iter().filter_map(|node| class(node)).collect();
        return Err(ReadError::NotInventory(format!(
            "the lshw output has no node of class \"system\" at its top (it lists classes {classes:?}), so it does not describe a whole machine: run `lshw -json` without -class"
        )));
    };

    let vendor = text(system, "vendor");
    let product = text(system, "product");
    let configuration = system.get("configuration").unwrap_or(&Value::Null);
    let mut report = ComputerReport {
        host_name: text(system, "id").filter(|id| id != SANITIZED_HOST_NAME),
        uuid: text(configuration, "uuid"),
        serial_number: text(system, "serial"),
        chassis: text(configuration, "chassis"),
        vm_system: hypervisor(vendor.as_deref(), product.as_deref()).map(str::to_owned),
        manufacturers: vendor.into_iter().collect(),
        model: product,
        ..ComputerReport::default()
    };

    let mut memory_mb = 0.0;
    visit(system, &mut report, &mut memory_mb);
    if memory_mb > 0.0 {
        report.memory_mb = Some(memory_mb);
    }

    Ok(Document {
        format: Format::Lshw,
        device_id: None,
        partial: false,
        items: vec![computer::to_item(report, Some(ItemKind::Computer))],
    })
}

/// Walks the children of `node`, adding processors, system memory and network
/// interfaces to the report. The recursion is bounded because serde_json refuses input
/// nested deeper than 128 levels.
fn visit(node: &Value, report: &mut ComputerReport, memory_mb: &mut f64) {
    for child in json::list(node, "children") {
        match class(child) {
            // lshw marks empty sockets and processors that the firmware turned off as
            // disabled.
            Some("processor") if json::flag(child, "disabled") != Some(true) => {
                report.cpus.push(Cpu {
                    name: text(child, "product"),
                    cores: child
                        .get("configuration")
                        .and_then(|configuration| json::number(configuration, "cores")),
                });
            }
            Some("memory") if is_system_memory(child) => {
                *memory_mb += system_memory_bytes(child) / BYTES_PER_MIB;
                continue;
            }
            Some("network") => report.interfaces.push(read_interface(child)),
            _ => {}
        }
        visit(child, report, memory_mb);
    }
}

/// Checks for the system memory node: id `memory`, or `memory:N` when the machine has
/// one per processor. Caches and the BIOS ROM are class `memory` too, under other ids.
fn is_system_memory(node: &Value) -> bool {
    let id = node.get("id").and_then(Value::as_str).unwrap_or("");
    id == "memory" || id.starts_with("memory:")
}

/// Returns the size of a system memory node in bytes: its own size, else the sum of its
/// banks (servers report the size per DIMM only).
fn system_memory_bytes(node: &Value) -> f64 {
    json::number(node, "size").unwrap_or_else(|| {
        json::list(node, "children")
            .into_iter()
            .filter_map(|bank| json::number(bank, "size"))
            .sum()
    })
}

fn read_interface(node: &Value) -> Interface {
    let configuration = node.get("configuration").unwrap_or(&Value::Null);
    let driver = text(configuration, "driver").unwrap_or_default();
    Interface {
        // An interface with several names lists them all, the main one first.
        name: json::texts(node, "logicalname").into_iter().next(),
        kind: None,
        mac: text(node, "serial"),
        ips: text(configuration, "ip").into_iter().collect(),
        virtual_device: Some(VIRTUAL_NETWORK_DRIVERS.contains(&driver.as_str())),
        pnp_device_id: None,
    }
}

/// Names the hypervisor from the system vendor and product that the virtual firmware
/// reports, or returns `None` for physical or unknown hardware.
fn hypervisor(vendor: Option<&str>, product: Option<&str>) -> Option<&'static str> {
    let vendor = vendor.unwrap_or("").to_ascii_lowercase();
    let product = product.unwrap_or("").to_ascii_lowercase();
    let either = |word: &str| vendor.contains(word) || product.contains(word);
    if either("vmware") {
        Some("VMware")
    } else if either("virtualbox") || vendor.contains("innotek") {
        Some("VirtualBox")
    } else if product.contains("kvm") {
        Some("KVM")
    } else if either("qemu") {
        Some("QEMU")
    } else if vendor.contains("microsoft") && product.contains("virtual machine") {
        Some("Hyper-V")
    } else if either("xen") {
        Some("Xen")
    } else if either("parallels") {
        Some("Parallels")
    } else {
        None
    }
}

fn class(node: &Value) -> Option<&str> {
    node.get("class").and_then(Value::as_str)
}

/// Returns a field's text, treating the sanitized placeholder as not reported.
fn text(node: &Value, key: &str) -> Option<String> {
    json::text(node, key).filter(|value| value != SANITIZED)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn glpi_document_is_not_lshw() {
        assert!(!looks_like(&json!({"deviceid": "pc-1", "content": {}})));
        assert!(!looks_like(&json!([{"deviceid": "pc-1"}])));
        assert!(!looks_like(&json!([])));
    }

    #[test]
    fn object_and_array_forms_are_lshw() {
        let root = json!({"id": "pc-1", "class": "system", "children": []});
        assert!(looks_like(&root));
        assert!(looks_like(&json!([root])));
    }

    #[test]
    fn output_without_system_node_is_rejected() {
        let error = read(&json!([{"id": "network", "class": "network"}])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"system\""), "{message}");
        assert!(message.contains("network"), "{message}");
    }

    #[test]
    fn hypervisor_from_vendor_and_product() {
        assert_eq!(
            hypervisor(Some("QEMU"), Some("Standard PC (Q35 + ICH9, 2009)")),
            Some("QEMU")
        );
        assert_eq!(
            hypervisor(Some("VMware, Inc."), Some("VMware Virtual Platform")),
            Some("VMware")
        );
        assert_eq!(
            hypervisor(Some("Microsoft Corporation"), Some("Virtual Machine")),
            Some("Hyper-V")
        );
        assert_eq!(hypervisor(Some("HP"), Some("ProLiant DL360p Gen8")), None);
        assert_eq!(hypervisor(None, None), None);
    }
}
