//! FusionInventory and GLPI agent XML messages: a `<REQUEST>` whose `<QUERY>` names the
//! message and whose `<CONTENT>` contains the sections, each repeated once per entry
//! (`<CPUS>` once per processor, `<SOFTWARES>` once per package).

use roxmltree::Node;

use crate::computer::{self, ComputerReport, Cpu, Interface, software_entry};
use crate::network::{self, DeviceReport, Firmware, Port};
use crate::{Document, Format, Item, ItemKind, Message, ReadError};

/// Queries that carry an inventory. `PROLOG` is handled on its own because it carries
/// none.
const INVENTORY_QUERIES: [&str; 4] = ["INVENTORY", "NETDISCOVERY", "SNMPQUERY", "SNMP"];

const SUPPORTED_QUERIES: &str = "PROLOG, INVENTORY, NETDISCOVERY, SNMPQUERY and SNMP";

/// Sections of which an `INVENTORY` carries at least one. Without them nothing
/// identifies the computer.
const IDENTIFYING_SECTIONS: [&str; 4] = ["HARDWARE", "BIOS", "OPERATINGSYSTEM", "NETWORKS"];

/// Reads an agent's XML message.
pub(crate) fn read(body: &[u8]) -> Result<Message, ReadError> {
    let text = as_utf8(body)?;
    let xml = roxmltree::Document::parse(text).map_err(|error| syntax_error(text, &error))?;

    let request = xml.root_element();
    let root_name = request.tag_name().name();
    if root_name != "REQUEST" {
        return Err(ReadError::NotInventory(format!(
            "the XML root element is <{root_name}>, not <REQUEST>: send a FusionInventory or GLPI agent message such as <REQUEST><QUERY>INVENTORY</QUERY><CONTENT>…</CONTENT></REQUEST>"
        )));
    }
    let device_id = child_text(request, "DEVICEID").map(str::to_owned);

    let Some(query) = child_text(request, "QUERY") else {
        return Err(ReadError::NotInventory(format!(
            "the <REQUEST> has no <QUERY> element, so the kind of message is unknown: add one of {SUPPORTED_QUERIES}"
        )));
    };
    let query = query.to_ascii_uppercase();
    if query == "PROLOG" {
        return Ok(Message::Prolog { device_id });
    }
    if !INVENTORY_QUERIES.contains(&query.as_str()) {
        let shown: String = query.chars().take(64).collect();
        return Err(ReadError::NotInventory(format!(
            "the <REQUEST> is a {shown} message, which carries no inventory: the supported queries are {SUPPORTED_QUERIES}"
        )));
    }
    let Some(content) = child(request, "CONTENT") else {
        return Err(ReadError::NotInventory(format!(
            "the {query} request has no <CONTENT> element, so it carries no inventory: the agent puts the inventory sections inside <CONTENT>"
        )));
    };

    // A discovery or SNMP message without <DEVICE> is a progress message of the agent's
    // task (start or end of a run) and reads as a document without items.
    let items = match query.as_str() {
        "INVENTORY" => vec![read_inventory(content)?],
        "NETDISCOVERY" => children(content, "DEVICE")
            .map(read_discovered_device)
            .collect(),
        _ => children(content, "DEVICE").map(read_snmp_device).collect(),
    };
    Ok(Message::Inventory(Document {
        format: Format::FusionInventoryXml,
        device_id,
        partial: false,
        items,
    }))
}

/// Checks that the body is UTF-8, which the agents always send, and points to the first
/// invalid byte otherwise.
fn as_utf8(body: &[u8]) -> Result<&str, ReadError> {
    std::str::from_utf8(body).map_err(|error| {
        let valid = String::from_utf8_lossy(&body[..error.valid_up_to()]);
        let (line, column) = end_position(&valid);
        ReadError::Xml {
            line,
            column,
            reason: "the byte there is not valid UTF-8, and agents send UTF-8: convert the file to UTF-8"
                .to_owned(),
        }
    })
}

/// Converts a parser error, pointing errors that roxmltree reports without a position
/// (an unclosed root element or a cut-off document) to the end of the text, where
/// reading stopped.
fn syntax_error(text: &str, error: &roxmltree::Error) -> ReadError {
    let position = error.pos();
    let (line, column) = match error {
        roxmltree::Error::UnexpectedEndOfStream
        | roxmltree::Error::UnclosedRootNode
        | roxmltree::Error::NoRootNode => end_position(text),
        _ => (position.row, position.col),
    };
    let reason = match error {
        roxmltree::Error::DtdDetected => {
            "the document declares a DTD (<!DOCTYPE>), which agent messages never have and which is rejected for safety".to_owned()
        }
        roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => {
            format!("{error}, so the document looks cut off")
        }
        _ => error.to_string().replace(&format!(" at {position}"), ""),
    };
    ReadError::Xml {
        line,
        column,
        reason,
    }
}

/// Returns the 1-based line and column just after the end of `text`.
fn end_position(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count() + 1;
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let column = last_line.chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

fn read_inventory(content: Node) -> Result<Item, ReadError> {
    if !IDENTIFYING_SECTIONS
        .iter()
        .any(|section| child(content, section).is_some())
    {
        return Err(ReadError::NotInventory(
            "the INVENTORY content has none of the <HARDWARE>, <BIOS>, <OPERATINGSYSTEM> or <NETWORKS> sections, so nothing identifies the computer: send the agent's full inventory".to_owned(),
        ));
    }
    let hardware = child(content, "HARDWARE");
    let bios = child(content, "BIOS");
    let os = child(content, "OPERATINGSYSTEM");

    let report = ComputerReport {
        host_name: field(hardware, "NAME"),
        uuid: field(hardware, "UUID"),
        serial_number: field(bios, "SSN"),
        asset_tag: field(bios, "ASSETTAG"),
        manufacturers: fields(&[(bios, "SMANUFACTURER"), (bios, "MMANUFACTURER")]),
        model: field(bios, "SMODEL"),
        os_names: fields(&[(os, "FULL_NAME"), (hardware, "OSNAME"), (os, "NAME")]),
        os_versions: fields(&[(os, "VERSION"), (hardware, "OSVERSION")]),
        kernel_name: field(os, "KERNEL_NAME"),
        dns_domain: field(os, "DNS_DOMAIN"),
        workgroup: field(hardware, "WORKGROUP"),
        // Older agents put the chassis type in BIOS/TYPE.
        chassis: field(hardware, "CHASSIS_TYPE").or_else(|| field(bios, "TYPE")),
        vm_system: field(hardware, "VMSYSTEM"),
        memory_mb: number(hardware, "MEMORY"),
        memory_modules_mb: children(content, "MEMORIES")
            .filter_map(|memory| number(Some(memory), "CAPACITY"))
            .collect(),
        cpus: children(content, "CPUS")
            .map(|cpu| Cpu {
                name: field(Some(cpu), "NAME"),
                cores: number(Some(cpu), "CORE"),
            })
            .collect(),
        interfaces: children(content, "NETWORKS").map(read_interface).collect(),
        // NOTE: an agent run with software inventory disabled also sends no
        // <SOFTWARES>, and that reads as "nothing installed".
        software: Some(
            children(content, "SOFTWARES")
                .filter_map(|software| {
                    software_entry(
                        child_text(software, "NAME"),
                        child_text(software, "VERSION"),
                        child_text(software, "PUBLISHER"),
                    )
                })
                .collect(),
        ),
    };
    Ok(computer::to_item(report, None))
}

fn read_interface(network: Node) -> Interface {
    let section = Some(network);
    Interface {
        name: field(section, "DESCRIPTION"),
        kind: field(section, "TYPE"),
        mac: field(section, "MACADDR"),
        ips: fields(&[(section, "IPADDRESS"), (section, "IPADDRESS6")]),
        virtual_device: field(section, "VIRTUALDEV").map(|flag| flag == "1"),
        pnp_device_id: field(section, "PNPDEVICEID"),
    }
}

/// Reads one device found by a network discovery (`NETDISCOVERY`).
fn read_discovered_device(device: Node) -> Item {
    let section = Some(device);
    let mut ips = fields(&[(section, "IP")]);
    ips.extend(ip_list(device));
    let report = DeviceReport {
        device_type: field(section, "TYPE"),
        host_names: fields(&[
            (section, "SNMPHOSTNAME"),
            (section, "DNSHOSTNAME"),
            (section, "NETBIOSNAME"),
        ]),
        serial_number: field(section, "SERIAL"),
        asset_tag: field(section, "ASSETTAG"),
        manufacturer: field(section, "MANUFACTURER"),
        model: field(section, "MODEL"),
        firmware: field(section, "FIRMWARE"),
        description: field(section, "DESCRIPTION"),
        macs: fields(&[(section, "MAC")]),
        ips,
        ..DeviceReport::default()
    };
    // A device found without SNMP access has no type and is most often a computer.
    let kind = network::kind_from_type(report.device_type.as_deref(), ItemKind::Computer);
    network::to_item(report, kind)
}

/// Reads one device of an SNMP inventory (`SNMPQUERY`, `SNMP`).
fn read_snmp_device(device: Node) -> Item {
    let info = child(device, "INFO");
    let mut ips = fields(&[(info, "IP")]);
    ips.extend(info.map(ip_list).unwrap_or_default());
    let report = DeviceReport {
        device_type: field(info, "TYPE"),
        host_names: fields(&[(info, "NAME")]),
        serial_number: field(info, "SERIAL"),
        asset_tag: field(info, "ASSETTAG"),
        manufacturer: field(info, "MANUFACTURER"),
        model: field(info, "MODEL"),
        firmware: field(info, "FIRMWARE"),
        description: field(info, "COMMENTS"),
        macs: fields(&[(info, "MAC")]),
        ips,
        memory_mb: number(info, "RAM"),
        firmwares: children(device, "FIRMWARES").map(read_firmware).collect(),
        ports: child(device, "PORTS")
            .map(|ports| children(ports, "PORT").map(read_port).collect())
            .unwrap_or_default(),
    };
    // SNMP inventories are taken of network equipment unless the type names another
    // kind.
    let kind = network::kind_from_type(report.device_type.as_deref(), ItemKind::NetworkDevice);
    network::to_item(report, kind)
}

fn read_firmware(firmware: Node) -> Firmware {
    let section = Some(firmware);
    Firmware {
        kind: field(section, "TYPE"),
        name: field(section, "NAME"),
        description: field(section, "DESCRIPTION"),
        version: field(section, "VERSION"),
    }
}

fn read_port(port: Node) -> Port {
    let section = Some(port);
    let mut macs = Vec::new();
    let mut neighbours = Vec::new();
    let connections = child(port, "CONNECTIONS")
        .into_iter()
        .flat_map(|connections| children(connections, "CONNECTION"));
    for connection in connections {
        macs.extend(texts(connection, "MAC"));
        macs.extend(texts(connection, "SYSMAC"));
        neighbours.extend(texts(connection, "SYSNAME"));
    }
    Port {
        name: field(section, "IFNAME"),
        description: field(section, "IFDESCR"),
        number: field(section, "IFNUMBER"),
        if_type: field(section, "IFTYPE").and_then(|if_type| if_type.parse().ok()),
        macs,
        neighbours,
    }
}

/// Returns the addresses of an `<IPS>` list.
fn ip_list(node: Node) -> Vec<String> {
    child(node, "IPS")
        .map(|ips| texts(ips, "IP"))
        .unwrap_or_default()
}

fn child<'a, 'input>(node: Node<'a, 'input>, tag: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|child| child.has_tag_name(tag))
}

fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    tag: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |child| child.has_tag_name(tag))
}

/// Returns the trimmed text of the first child element named `tag`, unless it is blank.
fn child_text<'a>(node: Node<'a, '_>, tag: &str) -> Option<&'a str> {
    let text = child(node, tag)?.text()?.trim();
    (!text.is_empty()).then_some(text)
}

/// Returns the non-blank texts of every child element named `tag`.
fn texts(node: Node, tag: &str) -> Vec<String> {
    children(node, tag)
        .filter_map(|child| child.text())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Returns the text of `tag` in a section that may be missing.
fn field(section: Option<Node>, tag: &str) -> Option<String> {
    child_text(section?, tag).map(str::to_owned)
}

/// Returns the texts found at each (section, tag) pair, in order, skipping missing ones.
fn fields(sources: &[(Option<Node>, &str)]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|(section, tag)| field(*section, tag))
        .collect()
}

fn number(section: Option<Node>, tag: &str) -> Option<f64> {
    field(section, tag)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(xml: &str) -> Result<Message, ReadError> {
        read(xml.as_bytes())
    }

    #[test]
    fn prolog_gives_device_id() {
        let message = read_str(
            "<REQUEST><DEVICEID>pc-1-2024-01-01-00-00-00</DEVICEID><QUERY>PROLOG</QUERY></REQUEST>",
        )
        .unwrap();
        assert_eq!(
            message,
            Message::Prolog {
                device_id: Some("pc-1-2024-01-01-00-00-00".to_owned())
            }
        );
    }

    #[test]
    fn unknown_query_names_the_supported_ones() {
        let error = read_str("<REQUEST><QUERY>UPDATE</QUERY><CONTENT/></REQUEST>").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("UPDATE"), "{message}");
        assert!(message.contains("SNMPQUERY"), "{message}");
    }

    #[test]
    fn missing_query_is_explained() {
        let error = read_str("<REQUEST><CONTENT/></REQUEST>").unwrap_err();
        assert!(error.to_string().contains("no <QUERY>"), "{error}");
    }

    #[test]
    fn missing_content_is_explained() {
        let error = read_str("<REQUEST><QUERY>INVENTORY</QUERY></REQUEST>").unwrap_err();
        assert!(error.to_string().contains("no <CONTENT>"), "{error}");
    }

    #[test]
    fn other_root_element_is_rejected() {
        let error = read_str("<html><body/></html>").unwrap_err();
        assert!(error.to_string().contains("<html>"), "{error}");
    }

    #[test]
    fn inventory_without_sections_is_rejected() {
        let error =
            read_str("<REQUEST><QUERY>INVENTORY</QUERY><CONTENT><ACCESSLOG/></CONTENT></REQUEST>")
                .unwrap_err();
        assert!(error.to_string().contains("<HARDWARE>"), "{error}");
    }

    #[test]
    fn discovery_progress_message_has_no_items() {
        let message = read_str(
            "<REQUEST><QUERY>NETDISCOVERY</QUERY><CONTENT><AGENT><START>1</START></AGENT></CONTENT></REQUEST>",
        )
        .unwrap();
        let Message::Inventory(document) = message else {
            panic!("expected an inventory, got {message:?}");
        };
        assert!(document.items.is_empty());
    }

    #[test]
    fn invalid_utf8_points_to_the_byte() {
        let mut body = b"<REQUEST>\n  <QUERY>INV".to_vec();
        body.push(0xE9);
        body.extend_from_slice(b"</QUERY></REQUEST>");
        let error = read(&body).unwrap_err();
        let ReadError::Xml { line, column, .. } = error else {
            panic!("expected an XML error, got {error:?}");
        };
        assert_eq!((line, column), (2, 13));
    }

    #[test]
    fn syntax_error_reason_has_no_second_position() {
        let error = read_str("<REQUEST>\n<QUERY>INVENTORY</QUERI>\n</REQUEST>").unwrap_err();
        let ReadError::Xml {
            line,
            column,
            reason,
        } = error
        else {
            panic!("expected an XML error, got {error:?}");
        };
        assert_eq!(line, 2);
        assert!(column > 1);
        assert!(!reason.contains(" at 2:"), "{reason}");
    }
}
