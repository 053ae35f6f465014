//! The values an SNMP inventory or a network discovery reports about a device, and the
//! rules that turn them into an [`Item`]. The FusionInventory XML and GLPI JSON readers
//! both fill a [`DeviceReport`].

use std::cmp::Ordering;

use crate::address::{split_host_name, usable_ip, usable_macs};
use crate::computer::non_empty;
use crate::{Connection, Item, ItemKind};

/// Raw values read about one network device, printer or other SNMP-managed device.
#[derive(Debug, Default)]
pub(crate) struct DeviceReport {
    /// The agent's device type (`NETWORKING`, `PRINTER`, `COMPUTER`, `STORAGE`, …).
    pub(crate) device_type: Option<String>,
    /// Host names in order of preference (SNMP sysName, DNS name, NetBIOS name).
    pub(crate) host_names: Vec<String>,
    pub(crate) serial_number: Option<String>,
    pub(crate) asset_tag: Option<String>,
    pub(crate) manufacturer: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) firmware: Option<String>,
    pub(crate) firmwares: Vec<Firmware>,
    /// SNMP sysDescr.
    pub(crate) description: Option<String>,
    pub(crate) macs: Vec<String>,
    pub(crate) ips: Vec<String>,
    /// RAM in MiB.
    pub(crate) memory_mb: Option<f64>,
    pub(crate) ports: Vec<Port>,
}

/// One firmware component as reported in `FIRMWARES`.
#[derive(Debug, Default)]
pub(crate) struct Firmware {
    /// `device` for the device's own firmware, `system` for other components.
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) version: Option<String>,
}

/// One port of a device's interface table.
#[derive(Debug, Default)]
pub(crate) struct Port {
    /// ifName (`Gi1/0/12`).
    pub(crate) name: Option<String>,
    /// ifDescr (`GigabitEthernet1/0/12`).
    pub(crate) description: Option<String>,
    /// ifIndex.
    pub(crate) number: Option<String>,
    /// ifType (IANAifType number).
    pub(crate) if_type: Option<u32>,
    /// MACs learnt on the port, and the chassis MACs of LLDP/CDP neighbours.
    pub(crate) macs: Vec<String>,
    /// System names of the LLDP/CDP neighbours.
    pub(crate) neighbours: Vec<String>,
}

/// IANAifType numbers of Ethernet ports: ethernetCsmacd, fastEther, fastEtherFX,
/// gigabitEthernet (RFC 1213 and the IANA ifType registry).
const ETHERNET_IF_TYPES: [u32; 4] = [6, 62, 69, 117];

/// Maps the agent's device type to a kind. A missing type gives `fallback`, and a type
/// that names no network device, printer or phone (`COMPUTER`, `STORAGE`, `POWER`, …)
/// gives a computer.
pub(crate) fn kind_from_type(device_type: Option<&str>, fallback: ItemKind) -> ItemKind {
    let Some(device_type) = non_empty(device_type) else {
        return fallback;
    };
    match device_type.to_ascii_uppercase().as_str() {
        "NETWORKING" => ItemKind::NetworkDevice,
        "PRINTER" => ItemKind::Printer,
        "PHONE" => ItemKind::Phone,
        _ => ItemKind::Computer,
    }
}

/// Turns a report into an item of `kind`.
pub(crate) fn to_item(report: DeviceReport, kind: ItemKind) -> Item {
    let mut item = Item::new(kind);

    let host = report
        .host_names
        .iter()
        .find_map(|name| split_host_name(name));
    if let Some(host) = host {
        if let Some(fqdn) = &host.fqdn {
            item.set_text("fqdn", fqdn);
        }
        item.name = Some(host.name);
    }
    for (attribute, value) in [
        ("serial_number", &report.serial_number),
        ("asset_tag", &report.asset_tag),
        ("manufacturer", &report.manufacturer),
        ("model", &report.model),
    ] {
        if let Some(value) = value {
            item.set_text(attribute, value);
        }
    }
    item.set_list(
        "mac_addresses",
        usable_macs(report.macs.iter().map(String::as_str)),
    );
    item.set_list(
        "ip_addresses",
        report.ips.iter().filter_map(|ip| usable_ip(ip)),
    );
    if let Some(memory_mb) = report.memory_mb.filter(|mb| *mb > 0.0) {
        item.set_number("memory_mb", memory_mb);
    }

    if matches!(kind, ItemKind::NetworkDevice | ItemKind::Printer)
        && let Some(version) = firmware_version(&report)
    {
        item.set_text("firmware_version", &version);
    }
    if kind == ItemKind::NetworkDevice {
        item.set_text("kind", guess_network_kind(&report));
        let ethernet_ports = count_ethernet_ports(&report.ports);
        if ethernet_ports > 0 {
            item.set_number("ports", ethernet_ports as f64);
        }
    }

    item.connections = connections(&report.ports);
    item
}

/// Returns the device firmware version: the reported one, else the `device` entry of
/// the firmware list, else its first entry.
fn firmware_version(report: &DeviceReport) -> Option<String> {
    if let Some(firmware) = non_empty(report.firmware.as_deref()) {
        return Some(clean_firmware(firmware));
    }
    let device_firmware = report.firmwares.iter().find(|firmware| {
        firmware
            .kind
            .as_deref()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("device"))
    });
    device_firmware
        .into_iter()
        .chain(&report.firmwares)
        .find_map(|firmware| non_empty(firmware.version.as_deref()))
        .map(clean_firmware)
}

/// Removes the `CW_VERSION$…$` wrapper that some Cisco devices put around the version
/// in the value the agent reads over SNMP.
fn clean_firmware(firmware: &str) -> String {
    let firmware = firmware.trim();
    firmware
        .strip_prefix("CW_VERSION$")
        .map(|rest| rest.trim_end_matches('$'))
        .unwrap_or(firmware)
        .to_owned()
}

/// Counts the Ethernet ports of the interface table, leaving out VLAN interfaces,
/// port channels and loopbacks. When no port reports its type, every port counts.
fn count_ethernet_ports(ports: &[Port]) -> usize {
    if ports.iter().all(|port| port.if_type.is_none()) {
        return ports.len();
    }
    ports
        .iter()
        .filter(|port| {
            port.if_type
                .is_some_and(|if_type| ETHERNET_IF_TYPES.contains(&if_type))
        })
        .count()
}

/// Builds one connection per port that has learnt MACs or a neighbour, sorted by port
/// name in natural order (`1/2` before `1/10`).
fn connections(ports: &[Port]) -> Vec<Connection> {
    let mut connections: Vec<Connection> = ports
        .iter()
        .filter_map(|port| {
            let mut macs = usable_macs(port.macs.iter().map(String::as_str));
            macs.sort();
            macs.dedup();
            let neighbour = port
                .neighbours
                .iter()
                .find_map(|name| non_empty(Some(name)))
                .map(str::to_owned);
            if macs.is_empty() && neighbour.is_none() {
                return None;
            }
            Some(Connection {
                port: port_name(port),
                macs,
                neighbour,
            })
        })
        .collect();
    connections.sort_by(|a, b| natural_order(&a.port, &b.port));
    connections
}

/// Compares port names so that runs of digits compare by value: `Gi1/0/2` comes before
/// `Gi1/0/10`. Names that are equal by value (`1/01`, `1/1`) fall back to text order, so
/// the order is total.
fn natural_order(a: &str, b: &str) -> Ordering {
    let key = |name: &str| -> Vec<(String, u64)> {
        let mut parts = Vec::new();
        let mut chars = name.chars().peekable();
        while let Some(&first) = chars.peek() {
            let digits = first.is_ascii_digit();
            let mut part = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_digit() != digits {
                    break;
                }
                part.push(c);
                chars.next();
            }
            if digits {
                parts.push((String::new(), part.parse().unwrap_or(u64::MAX)));
            } else {
                parts.push((part, 0));
            }
        }
        parts
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

fn port_name(port: &Port) -> String {
    if let Some(name) = non_empty(port.name.as_deref()).or(non_empty(port.description.as_deref())) {
        return name.to_owned();
    }
    match non_empty(port.number.as_deref()) {
        Some(number) => format!("ifIndex {number}"),
        None => "unnamed port".to_owned(),
    }
}

/// Phrases in the model, description, maker or firmware names that tell the kind of a
/// network device, checked in this order so that a firewall or a router that calls
/// itself a switch somewhere is still found.
const KIND_PHRASES: [(&str, &[&str]); 5] = [
    (
        "firewall",
        &[
            "firewall",
            "fortigate",
            "palo alto",
            "sonicwall",
            "check point",
            "watchguard",
            "pfsense",
            "opnsense",
            "adaptive security appliance",
        ],
    ),
    (
        "load_balancer",
        &[
            "load balancer",
            "big-ip",
            "netscaler",
            "citrix adc",
            "loadmaster",
        ],
    ),
    (
        "access_point",
        &["access point", "aironet", "air-ap", "air-cap", "unifi ap"],
    ),
    (
        "router",
        &[
            "router",
            "routeros",
            "digi transport",
            "integrated services router",
            "aggregation services router",
            "vyos",
        ],
    ),
    (
        "switch",
        &[
            "switch",
            "catalyst",
            "ws-c",
            "nexus",
            "nx-os",
            "procurve",
            "powerconnect",
            "fabric interconnect",
            "comware",
        ],
    ),
];

/// Model family prefixes (`EX6210`, `ASR1001`, `DGS-3420`) that tell the kind when no
/// phrase does.
const KIND_FAMILIES: [(&str, &[&str]); 4] = [
    ("firewall", &["srx", "asa", "fg"]),
    ("access_point", &["uap", "wap"]),
    ("router", &["isr", "asr", "mx", "wr"]),
    ("switch", &["ex", "qfx", "dgs", "des", "gs", "sg", "icx"]),
];

/// Guesses the network device kind (`switch`, `router`, `firewall`, `access_point`,
/// `load_balancer`, `other`) from the model, description, maker and firmware names the
/// device reports. The agent's type is `NETWORKING` for all of them, so this is a best
/// guess, and a device that names none of the known phrases or model families is
/// `other`.
pub(crate) fn guess_network_kind(report: &DeviceReport) -> &'static str {
    let mut texts: Vec<&str> = [&report.model, &report.description, &report.manufacturer]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    for firmware in &report.firmwares {
        texts.extend(firmware.name.as_deref());
        texts.extend(firmware.description.as_deref());
    }
    let text = texts.join(" ").to_lowercase();

    for (kind, phrases) in KIND_PHRASES {
        if phrases.iter().any(|phrase| text.contains(phrase)) {
            return kind;
        }
    }

    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    for (kind, families) in KIND_FAMILIES {
        if (0..words.len()).any(|index| is_model_of(&words, index, families)) {
            return kind;
        }
    }
    if words.iter().any(|word| is_port_count(word))
        || words
            .windows(2)
            .any(|pair| pair[0].chars().all(|c| c.is_ascii_digit()) && pair[1] == "port")
    {
        return "switch";
    }
    "other"
}

/// Checks whether the word at `index` is a model of one of the families: the prefix
/// followed by a model number, in the same word (`ex6210`) or the next (`asa 5506`,
/// `dgs-3420`). A prefix alone is no match, so that words like the French `des` are not
/// taken for a D-Link model.
fn is_model_of(words: &[&str], index: usize, families: &[&str]) -> bool {
    let starts_with_digit = |word: &str| word.starts_with(|c: char| c.is_ascii_digit());
    families.iter().any(|family| {
        words[index].strip_prefix(family).is_some_and(|rest| {
            if rest.is_empty() {
                words
                    .get(index + 1)
                    .is_some_and(|next| starts_with_digit(next))
            } else {
                starts_with_digit(rest)
            }
        })
    })
}

/// Checks for the port-count suffix of switch model names: 8 to 52 ports followed by
/// the port type (`24G` in `1810-24G`, `52T` in `DGS-3420-52T`, `48TC`).
fn is_port_count(word: &str) -> bool {
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix = &word[digits.len()..];
    let ports_in_range = digits
        .parse::<u32>()
        .is_ok_and(|ports| (8..=52).contains(&ports));
    ports_in_range
        && matches!(
            suffix,
            "g" | "t" | "p" | "tc" | "ts" | "tt" | "fp" | "gt" | "pc"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(model: &str, description: &str) -> DeviceReport {
        DeviceReport {
            model: Some(model.to_owned()),
            description: Some(description.to_owned()),
            ..DeviceReport::default()
        }
    }

    #[test]
    fn network_kind_from_model_and_description() {
        let cases = [
            ("Cisco Nexus 5596", "Cisco NX-OS(tm) n5000", "switch"),
            ("1810-24G", "HP 1810-24G, PL.2.10, eCos-3.0", "switch"),
            ("DGS-3420-52T", "", "switch"),
            ("UCS 6248UP 48-Port", "Cisco NX-OS(tm) ucs", "switch"),
            ("WR11 XT", "Digi TransPort WR11-L700-DE1-XW", "router"),
            ("ASR1001-X", "Cisco IOS XE Software", "router"),
            ("FortiGate-60E", "", "firewall"),
            ("BIG-IP 2000s", "", "load_balancer"),
            ("AIR-AP2802I-E-K9", "Cisco Aironet", "access_point"),
            ("ZX-100", "Embedded device", "other"),
        ];
        for (model, description, expected) in cases {
            assert_eq!(
                guess_network_kind(&device(model, description)),
                expected,
                "{model} / {description}"
            );
        }
    }

    #[test]
    fn firmware_family_tells_the_kind() {
        let report = DeviceReport {
            firmwares: vec![Firmware {
                kind: Some("device".to_owned()),
                name: Some("EX6210".to_owned()),
                description: Some("device firmware".to_owned()),
                version: Some("12.3R3.4".to_owned()),
            }],
            ..DeviceReport::default()
        };
        assert_eq!(guess_network_kind(&report), "switch");
        assert_eq!(firmware_version(&report).as_deref(), Some("12.3R3.4"));
    }

    #[test]
    fn type_maps_to_kind() {
        let fallback = ItemKind::NetworkDevice;
        assert_eq!(
            kind_from_type(Some("NETWORKING"), fallback),
            ItemKind::NetworkDevice
        );
        assert_eq!(kind_from_type(Some("Printer"), fallback), ItemKind::Printer);
        assert_eq!(
            kind_from_type(Some("STORAGE"), fallback),
            ItemKind::Computer
        );
        assert_eq!(kind_from_type(None, fallback), fallback);
    }

    #[test]
    fn cisco_firmware_wrapper_is_removed() {
        assert_eq!(clean_firmware("CW_VERSION$5.2(1)N1(5)$"), "5.2(1)N1(5)");
        assert_eq!(clean_firmware(" 1.50B032 "), "1.50B032");
    }

    #[test]
    fn only_ethernet_ports_are_counted() {
        let port = |if_type| Port {
            if_type,
            ..Port::default()
        };
        assert_eq!(
            count_ethernet_ports(&[
                port(Some(6)),
                port(Some(117)),
                port(Some(53)),
                port(Some(24))
            ]),
            2
        );
        assert_eq!(count_ethernet_ports(&[port(None), port(None)]), 2);
    }

    #[test]
    fn port_names_sort_naturally() {
        let mut names = ["1/10", "1/2", "Gi1/0/10", "Gi1/0/9", "1/1", "Po6"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(names, ["1/1", "1/2", "1/10", "Gi1/0/9", "Gi1/0/10", "Po6"]);
    }

    #[test]
    fn connections_are_sorted_and_skip_empty_ports() {
        let ports = vec![
            Port {
                name: Some("Gi0/2".to_owned()),
                macs: vec![
                    "D4:F8:FF:65:CC:DD".to_owned(),
                    "00:14:4f:f2:b7:fd".to_owned(),
                ],
                ..Port::default()
            },
            Port {
                name: Some("Gi0/3".to_owned()),
                ..Port::default()
            },
            Port {
                number: Some("9".to_owned()),
                neighbours: vec!["sw2-mgmt".to_owned()],
                ..Port::default()
            },
        ];
        let connections = connections(&ports);
        assert_eq!(connections.len(), 2);
        assert_eq!(connections[0].port, "Gi0/2");
        assert_eq!(
            connections[0].macs,
            ["00:14:4f:f2:b7:fd", "d4:f8:ff:65:cc:dd"]
        );
        assert_eq!(connections[1].port, "ifIndex 9");
        assert_eq!(connections[1].neighbour.as_deref(), Some("sw2-mgmt"));
    }
}
