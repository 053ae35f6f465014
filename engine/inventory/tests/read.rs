//! Reads the fixtures in `tests/fixtures` (real GLPI agent examples and hand-written
//! documents) through the public `read` function and checks what each item reports.

use std::path::Path;

use serde_json::{Value, json};
use tend_inventory::{
    DEFAULT_MAX_BYTES, Document, Format, Item, ItemKind, Message, ReadError, Software, compress,
    normalise_mac, read,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn inventory(name: &str, bytes: &[u8]) -> Document {
    match read(bytes, DEFAULT_MAX_BYTES) {
        Ok(Message::Inventory(document)) => document,
        other => panic!("{name}: expected an inventory, got {other:?}"),
    }
}

fn document(name: &str) -> Document {
    inventory(name, &fixture(name))
}

fn only_item(name: &str) -> Item {
    let mut document = document(name);
    assert_eq!(document.items.len(), 1, "{name} should hold one item");
    document.items.remove(0)
}

fn json_item(value: Value) -> Item {
    let bytes = serde_json::to_vec(&value).unwrap();
    let mut document = inventory("inline JSON", &bytes);
    assert_eq!(document.items.len(), 1);
    document.items.remove(0)
}

fn error(bytes: &[u8]) -> ReadError {
    match read(bytes, DEFAULT_MAX_BYTES) {
        Err(error) => error,
        Ok(message) => panic!("expected an error, got {message:?}"),
    }
}

struct Expected {
    file: &'static str,
    format: Format,
    kind: ItemKind,
    name: Option<&'static str>,
    serial: Option<&'static str>,
    software: Option<usize>,
}

/// Values looked up by hand in each fixture.
const EXAMPLES: [Expected; 17] = [
    Expected {
        file: "glpi-1.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::Computer,
        name: Some("LF014"),
        serial: Some("9E113232I"),
        software: Some(42),
    },
    Expected {
        file: "glpi-3.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::Computer,
        name: Some("MacBook-de-teclib"),
        serial: Some("W87051UGVUV"),
        software: Some(40),
    },
    Expected {
        file: "glpi-12.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::Computer,
        name: Some("pc-arg-23"),
        serial: Some("CZC0479792"),
        software: Some(8),
    },
    Expected {
        file: "glpi-10.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: Some("swdc-07-01-dc1"),
        serial: None,
        software: None,
    },
    Expected {
        file: "glpi-15.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: None,
        serial: None,
        software: None,
    },
    Expected {
        file: "glpi-16.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: Some("J9803A"),
        serial: Some("cn3afrt37n"),
        software: None,
    },
    Expected {
        file: "glpi-17.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: Some("J9803A"),
        serial: Some("cn3afrt37n"),
        software: None,
    },
    Expected {
        file: "glpi-19.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::Computer,
        name: Some("SYN14"),
        serial: Some("01234567890AAA"),
        software: None,
    },
    Expected {
        file: "glpi-7.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: Some("ucs6248up-cluster-pa3-B"),
        serial: Some("SSI1912014B"),
        software: None,
    },
    Expected {
        file: "glpi-5-good.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::NetworkDevice,
        name: Some("WR21"),
        serial: Some("486280"),
        software: None,
    },
    Expected {
        file: "glpi-computer_1.json",
        format: Format::GlpiJson,
        kind: ItemKind::Computer,
        name: Some("glpixps"),
        serial: Some("640HP72"),
        software: Some(6),
    },
    Expected {
        file: "glpi-computer_1_partial_softs.json",
        format: Format::GlpiJson,
        kind: ItemKind::Computer,
        name: Some("glpixps"),
        serial: Some("640HP72"),
        software: Some(6),
    },
    Expected {
        file: "glpi-phone_1.json",
        format: Format::GlpiJson,
        kind: ItemKind::Phone,
        name: Some("Mi9TPro-TéléphoneM"),
        serial: Some("af8d8fcfa6fa4794"),
        software: Some(3),
    },
    Expected {
        file: "glpi-printer_1.json",
        format: Format::GlpiJson,
        kind: ItemKind::Printer,
        name: Some("NPIF2BE10"),
        serial: Some("PHCVN191TG"),
        software: None,
    },
    Expected {
        file: "fusion-linux-vm.xml",
        format: Format::FusionInventoryXml,
        kind: ItemKind::Computer,
        name: Some("build-07"),
        serial: None,
        software: Some(3),
    },
    Expected {
        file: "lshw-notebook.json",
        format: Format::Lshw,
        kind: ItemKind::Computer,
        name: Some("pc-0142"),
        serial: Some("PF1TEST42"),
        software: None,
    },
    Expected {
        file: "lshw-server-sanitized.json",
        format: Format::Lshw,
        kind: ItemKind::Computer,
        name: None,
        serial: None,
        software: None,
    },
];

#[test]
fn fixtures_read_to_expected_items() {
    for expected in EXAMPLES {
        let file = expected.file;
        let document = document(file);
        assert_eq!(document.format, expected.format, "{file}: format");
        assert_eq!(document.items.len(), 1, "{file}: item count");
        let item = &document.items[0];
        assert_eq!(item.kind, expected.kind, "{file}: kind");
        assert_eq!(item.name.as_deref(), expected.name, "{file}: name");
        assert_eq!(
            item.text("serial_number"),
            expected.serial,
            "{file}: serial"
        );
        assert_eq!(
            item.software.as_ref().map(Vec::len),
            expected.software,
            "{file}: software count"
        );
    }
}

#[test]
fn linux_xml_inventory_attributes() {
    let document = document("glpi-1.xml");
    assert_eq!(
        document.device_id.as_deref(),
        Some("LF014-2016-06-13-14-03-53")
    );
    assert!(!document.partial);
    let item = &document.items[0];

    assert_eq!(
        item.text("uuid"),
        Some("0055ADC9-1D3A-E411-8043-B05D95113232")
    );
    assert_eq!(item.text("fqdn"), Some("lf014.ad.crosoft.com"));
    assert_eq!(item.text("manufacturer"), Some("TOSHIBA"));
    assert_eq!(item.text("model"), Some("PORTEGE Z30-A"));
    assert_eq!(
        item.text("os_name"),
        Some("Fedora release 25 (Twenty Five)")
    );
    assert_eq!(item.text("os_version"), Some("25"));
    assert_eq!(
        item.text("cpu"),
        Some("Intel(R) Core(TM) i5-4210U CPU @ 1.70GHz")
    );
    assert_eq!(item.attributes["cpu_cores"], json!(2));
    assert_eq!(item.attributes["memory_mb"], json!(7908));
    assert_eq!(item.chassis.as_deref(), Some("Notebook"));
    assert!(!item.virtual_machine);
    assert_eq!(item.text("hypervisor"), None);

    // lo, virbr0, virbr0-nic and tun0 are virtual. The file reports two MACs for
    // enp0s25, one per address.
    assert_eq!(
        item.attributes["mac_addresses"],
        json!([
            "ae:ed:e7:56:9d:a0",
            "b8:6b:23:e0:5c:81",
            "b8:6b:23:e0:5c:91"
        ])
    );
    // Loopback and fe80:: addresses are left out.
    assert_eq!(
        item.attributes["ip_addresses"],
        json!(["192.168.1.103", "192.168.11.96", "192.168.124.1"])
    );

    // BIOS/ASSETTAG is 0000000000.
    assert_eq!(item.text("asset_tag"), None);
    assert_eq!(
        item.placeholders.get("asset_tag").map(String::as_str),
        Some("0000000000")
    );

    let software = item.software.as_ref().unwrap();
    assert!(
        software.windows(2).all(|pair| pair[0] <= pair[1]),
        "software is sorted"
    );
    assert!(software.iter().all(|entry| !entry.name.is_empty()));
}

#[test]
fn windows_xml_inventory_attributes() {
    let item = only_item("glpi-12.xml");
    assert_eq!(item.text("fqdn"), Some("pc-arg-23.cedre.local"));
    assert_eq!(item.text("asset_tag"), Some("CZC0479792"));
    assert_eq!(
        item.text("os_name"),
        Some("Microsoft Windows 8.1 Professionnel")
    );
    assert_eq!(item.text("os_version"), Some("6.3.9600"));
    assert_eq!(item.attributes["memory_mb"], json!(3887));
    // Left out: the TAP adapter (ROOT\NET\0000), the hosted network adapter
    // (VIRTUALDEV 1) and 61:B5:99:E6:84:EA, which is a multicast address.
    assert_eq!(
        item.attributes["mac_addresses"],
        json!([
            "00:22:10:d4:3e:74",
            "68:b5:99:e6:84:eb",
            "74:f3:95:c7:e8:c2"
        ])
    );
    assert_eq!(item.attributes["ip_addresses"], json!(["10.253.6.55"]));
}

#[test]
fn mac_os_xml_inventory_keeps_hardware_ports() {
    let item = only_item("glpi-3.xml");
    // The macOS agent flags every interface virtual. en0 and en1 are the hardware
    // ports, and fw0's address is not a MAC.
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["00:17:f2:d1:14:32", "00:19:e3:db:64:d2"])
    );
    // MacBook-de-teclib.local is an mDNS name, not a DNS one.
    assert_eq!(item.text("fqdn"), None);
    // No HARDWARE/MEMORY, so the two 2000 MiB modules are added up.
    assert_eq!(item.attributes["memory_mb"], json!(4000));
    assert_eq!(item.text("manufacturer"), Some("Apple Computer, Inc."));
}

#[test]
fn linux_vm_inventory_skips_software_interfaces() {
    let document = document("fusion-linux-vm.xml");
    assert_eq!(
        document.device_id.as_deref(),
        Some("build-07-2024-03-01-09-15-00")
    );
    let item = &document.items[0];

    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["52:54:00:ab:cd:ef"])
    );
    assert_eq!(
        item.attributes["ip_addresses"],
        json!(["192.0.2.17", "2001:db8:0:1::17"])
    );
    assert!(item.virtual_machine);
    assert_eq!(item.text("hypervisor"), Some("KVM"));
    assert_eq!(
        item.text("uuid"),
        Some("8D2C4A6E-1F3B-4C5D-9E7F-A1B2C3D4E5F6")
    );
    assert_eq!(item.text("fqdn"), Some("build-07.build.example.org"));
    assert_eq!(item.text("os_version"), Some("12.5"));
    assert_eq!(item.attributes["cpu_cores"], json!(4));
    assert_eq!(item.attributes["memory_mb"], json!(7958));
    assert_eq!(item.chassis.as_deref(), Some("Other"));

    // The system maker is a placeholder, so the board maker is used.
    assert_eq!(item.text("manufacturer"), Some("QEMU"));
    assert_eq!(item.text("serial_number"), None);
    assert_eq!(item.text("asset_tag"), None);
    assert_eq!(
        item.placeholders.get("serial_number").map(String::as_str),
        Some("To Be Filled By O.E.M.")
    );
    assert_eq!(
        item.placeholders.get("asset_tag").map(String::as_str),
        Some("Default string")
    );

    // The repeated libc6 entry collapses and the nameless one is dropped.
    let names: Vec<&str> = item
        .software
        .as_ref()
        .unwrap()
        .iter()
        .map(|software| software.name.as_str())
        .collect();
    assert_eq!(names, ["curl", "libc6", "openssh-server"]);
    let curl = &item.software.as_ref().unwrap()[0];
    assert_eq!(
        curl,
        &Software {
            name: "curl".to_owned(),
            version: Some("7.88.1-10+deb12u5".to_owned()),
            publisher: None,
        }
    );
}

#[test]
fn phone_json_inventory() {
    let item = only_item("glpi-phone_1.json");
    assert_eq!(item.text("os_name"), Some("Q Android 10.0 api 29"));
    assert_eq!(item.text("uuid"), Some("AF8D3FCFA6FE4784"));
    assert_eq!(item.text("manufacturer"), Some("Xiaomi"));
    assert_eq!(item.text("model"), Some("Mi 9T Pro"));
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["e0:dc:ff:ed:09:59"])
    );
    // The Android agent reports the build tag as the asset tag.
    assert_eq!(item.text("asset_tag"), None);
    assert_eq!(
        item.placeholders.get("asset_tag").map(String::as_str),
        Some("release-keys")
    );
}

#[test]
fn partial_json_reports_present_sections_only() {
    let document = document("glpi-computer_1_partial_softs.json");
    assert!(document.partial);
    let item = &document.items[0];
    assert_eq!(
        item.text("os_name"),
        Some("Fedora 31 (Workstation Edition)")
    );
    // cpus, memories and networks are not in this partial document.
    assert_eq!(item.text("cpu"), None);
    assert_eq!(item.attributes.get("cpu_cores"), None);
    assert_eq!(item.attributes.get("mac_addresses"), None);
    let software = item.software.as_ref().unwrap();
    assert!(software.iter().any(|entry| entry.name == "gitg"
        && entry.version.as_deref() == Some("3.33.0-1.fc31")
        && entry.publisher.as_deref() == Some("Fedora Project")));
}

#[test]
fn full_json_computer_attributes() {
    let item = only_item("glpi-computer_1.json");
    assert_eq!(
        item.text("uuid"),
        Some("4C4C4544-0034-3010-8048-B6C04F503732")
    );
    assert_eq!(item.text("model"), Some("XPS 13 9350"));
    assert_eq!(item.chassis.as_deref(), Some("Laptop"));
    assert_eq!(item.attributes["memory_mb"], json!(7800));
    // lo, virbr0 and virbr0-nic have "virtualdev": true.
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["00:e0:4c:68:01:db", "44:85:00:2b:90:bc"])
    );
    // No DNS domain is reported, and "glpixps" alone is no FQDN.
    assert_eq!(item.text("fqdn"), None);
}

#[test]
fn printer_json_inventory() {
    let item = only_item("glpi-printer_1.json");
    assert_eq!(item.text("firmware_version"), Some("2409048_052887"));
    assert_eq!(item.text("model"), Some("HP LaserJet M507"));
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["00:68:eb:f2:be:10"])
    );
    assert_eq!(item.attributes["ip_addresses"], json!(["10.59.29.175"]));
    // Only network devices get a network kind and a port count.
    assert_eq!(item.attributes.get("kind"), None);
    assert_eq!(item.attributes.get("ports"), None);
}

#[test]
fn snmp_switch_cdp_neighbour() {
    let item = only_item("glpi-7.xml");
    assert_eq!(item.text("kind"), Some("switch"));
    assert_eq!(item.text("firmware_version"), Some("5.0(3)N2(4.02b)"));
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["8c:60:4f:8d:ae:fc"])
    );
    assert_eq!(item.connections.len(), 1);
    let connection = &item.connections[0];
    assert_eq!(connection.port, "mgmt0");
    assert_eq!(connection.neighbour.as_deref(), Some("sw2-mgmt-eqnx"));
    assert!(connection.macs.is_empty());
}

#[test]
fn snmp_switch_learnt_macs() {
    let item = only_item("glpi-17.xml");
    assert_eq!(item.text("kind"), Some("switch"));
    assert_eq!(item.attributes["ports"], json!(1));
    assert_eq!(item.connections.len(), 1);
    let connection = &item.connections[0];
    assert_eq!(connection.port, "Port  1");
    // 83:fc:8f:6f:aa:20 is a multicast address, which no port learns.
    assert_eq!(connection.macs, ["d4:f8:ff:65:cc:dd"]);
    // INFO/MAC contains "gh", so it is not a MAC address.
    assert_eq!(item.attributes.get("mac_addresses"), None);
}

#[test]
fn snmp_cellular_router() {
    let item = only_item("glpi-5-good.xml");
    assert_eq!(item.text("kind"), Some("router"));
    assert_eq!(item.text("firmware_version"), Some("5.2.17.12"));
    // 10 Ethernet ports, because the 8 PPP interfaces do not count.
    assert_eq!(item.attributes["ports"], json!(10));
    assert_eq!(item.connections.len(), 1);
    assert_eq!(item.connections[0].port, "ifIndex 9");
    assert_eq!(item.connections[0].macs, ["f0:4d:a2:81:a6:2d"]);
}

#[test]
fn snmp_device_without_info() {
    let item = only_item("glpi-15.xml");
    assert_eq!(item.name, None);
    // The firmware list names an EX6210, a Juniper switch.
    assert_eq!(item.text("kind"), Some("switch"));
    assert_eq!(item.text("firmware_version"), Some("12.3R3.4"));
    // The only port is a link aggregation (ifType 161), not an Ethernet port.
    assert_eq!(item.attributes.get("ports"), None);
}

#[test]
fn snmp_storage_device_is_a_computer() {
    let item = only_item("glpi-19.xml");
    assert_eq!(item.text("model"), Some("DS1821+"));
    assert_eq!(item.attributes["memory_mb"], json!(3890));
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["00:12:34:56:78:90"])
    );
    // Its only address is 127.0.0.1.
    assert_eq!(item.attributes.get("ip_addresses"), None);
    assert_eq!(item.attributes.get("kind"), None);
}

#[test]
fn netdiscovery_devices() {
    let nexus = only_item("glpi-10.xml");
    assert_eq!(nexus.text("firmware_version"), Some("5.2(1)N1(5)"));
    assert_eq!(nexus.text("model"), Some("Cisco Nexus 5596"));
    assert_eq!(nexus.text("kind"), Some("switch"));
    assert_eq!(nexus.attributes["ip_addresses"], json!(["192.168.0.8"]));
    assert_eq!(
        nexus.attributes["mac_addresses"],
        json!(["00:23:04:ee:be:02"])
    );

    let hp = only_item("glpi-16.xml");
    assert_eq!(hp.text("kind"), Some("switch"));
    assert_eq!(hp.attributes["ip_addresses"], json!(["192.168.1.9"]));
    assert_eq!(hp.text("manufacturer"), Some("Hewlett-Packard"));
}

#[test]
fn json_network_equipment() {
    let item = json_item(json!({
        "deviceid": "core-sw-1-2024-01-01-00-00-00",
        "action": "netinventory",
        "itemtype": "NetworkEquipment",
        "content": {
            "network_device": {
                "name": "core-sw-1.example.org",
                "serial": "FOC1234X0AB",
                "model": "WS-C2960X-48TS-L",
                "manufacturer": "Cisco",
                "firmware": "15.2(7)E4",
                "mac": "00:1B:2C:3D:4E:00",
                "ips": ["127.0.0.1", "192.0.2.10"],
                "type": "Networking"
            },
            "network_ports": [
                {"ifname": "Gi1/0/10", "iftype": 6,
                 "connections": [{"mac": ["00:50:56:aa:bb:01", "00:50:56:AA:BB:02"]}]},
                {"ifname": "Gi1/0/2", "iftype": 6, "lldp": true,
                 "connections": [{"sysname": "esx-04", "sysmac": "00:25:b5:00:00:0c",
                                  "ifdescr": "vmnic0"}]},
                {"ifname": "Gi1/0/3", "iftype": 6},
                {"ifname": "Vl10", "iftype": 53},
                {"ifname": "Po1", "iftype": 53,
                 "connections": [{"mac": "00:14:4f:f2:b7:fd"}]}
            ]
        }
    }));

    assert_eq!(item.kind, ItemKind::NetworkDevice);
    assert_eq!(item.name.as_deref(), Some("core-sw-1"));
    assert_eq!(item.text("fqdn"), Some("core-sw-1.example.org"));
    assert_eq!(item.text("kind"), Some("switch"));
    assert_eq!(item.text("firmware_version"), Some("15.2(7)E4"));
    assert_eq!(item.attributes["ports"], json!(3));
    assert_eq!(item.attributes["ip_addresses"], json!(["192.0.2.10"]));
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["00:1b:2c:3d:4e:00"])
    );
    assert_eq!(item.software, None);

    let ports: Vec<&str> = item
        .connections
        .iter()
        .map(|connection| connection.port.as_str())
        .collect();
    assert_eq!(ports, ["Gi1/0/2", "Gi1/0/10", "Po1"]);
    assert_eq!(item.connections[0].neighbour.as_deref(), Some("esx-04"));
    assert_eq!(item.connections[0].macs, ["00:25:b5:00:00:0c"]);
    assert_eq!(
        item.connections[1].macs,
        ["00:50:56:aa:bb:01", "00:50:56:aa:bb:02"]
    );
}

#[test]
fn lshw_notebook_in_array_form() {
    let item = only_item("lshw-notebook.json");
    let document = document("lshw-notebook.json");
    assert_eq!(document.device_id, None);
    assert_eq!(item.text("manufacturer"), Some("LENOVO"));
    assert_eq!(item.text("model"), Some("ThinkPad T480 (20L5000AUS)"));
    assert_eq!(
        item.text("uuid"),
        Some("5E3A1C40-2B7D-11B2-A85C-0F1E2D3C4B5A")
    );
    assert_eq!(item.chassis.as_deref(), Some("notebook"));
    assert_eq!(
        item.text("cpu"),
        Some("Intel(R) Core(TM) i5-8350U CPU @ 1.70GHz")
    );
    assert_eq!(item.attributes["cpu_cores"], json!(4));
    // 16 GiB. The BIOS ROM and the caches are class memory too, but do not count.
    assert_eq!(item.attributes["memory_mb"], json!(16384));
    // docker0 is a bridge, but the disabled Wi-Fi card is still hardware.
    assert_eq!(
        item.attributes["mac_addresses"],
        json!(["54:e1:ad:12:34:56", "a4:34:d9:12:34:57"])
    );
    assert_eq!(
        item.attributes["ip_addresses"],
        json!(["10.20.30.40", "172.17.0.1"])
    );
    assert!(!item.virtual_machine);
}

#[test]
fn lshw_sanitized_server_in_object_form() {
    let item = only_item("lshw-server-sanitized.json");
    // "computer" and "[REMOVED]" are what -sanitize writes in place of real values.
    assert_eq!(item.name, None);
    assert_eq!(item.text("uuid"), None);
    assert!(item.placeholders.is_empty());
    assert_eq!(item.attributes.get("mac_addresses"), None);
    assert_eq!(item.attributes.get("ip_addresses"), None);
    assert_eq!(item.chassis.as_deref(), Some("rackmount"));
    assert_eq!(item.text("manufacturer"), Some("Dell Inc."));
    // Two populated sockets of 16 cores, and the empty socket is disabled.
    assert_eq!(item.attributes["cpu_cores"], json!(32));
    // Two 32 GiB DIMMs, reported per bank only.
    assert_eq!(item.attributes["memory_mb"], json!(65536));
}

#[test]
fn lshw_virtual_machine() {
    let item = json_item(json!({
        "id": "ci-runner-3",
        "class": "system",
        "product": "Standard PC (Q35 + ICH9, 2009)",
        "vendor": "QEMU",
        "children": [
            {"id": "core", "class": "bus", "children": [
                {"id": "cpu:0", "class": "processor", "product": "AMD EPYC Processor"},
                {"id": "cpu:1", "class": "processor", "product": "AMD EPYC Processor"},
                {"id": "memory", "class": "memory", "size": 4294967296u64}
            ]}
        ]
    }));
    assert!(item.virtual_machine);
    assert_eq!(item.text("hypervisor"), Some("QEMU"));
    // No core counts, so each processor counts as one.
    assert_eq!(item.attributes["cpu_cores"], json!(2));
    assert_eq!(item.attributes["memory_mb"], json!(4096));
}

#[test]
fn schema_file_is_rejected() {
    let error = error(&fixture("glpi-inventory.schema.json"));
    assert!(matches!(error, ReadError::NotInventory(_)), "{error:?}");
    assert!(error.to_string().contains("schema"), "{error}");
}

#[test]
fn json_without_content_is_rejected() {
    let error = error(br#"{"deviceid": "pc-0142-2024-01-01-00-00-00", "action": "inventory"}"#);
    let message = error.to_string();
    assert!(message.contains("no \"content\""), "{message}");
    assert!(message.contains("\"deviceid\""), "{message}");
}

#[test]
fn zlib_input_reads_like_plain() {
    for file in ["glpi-1.xml", "glpi-computer_1.json", "lshw-notebook.json"] {
        let plain = fixture(file);
        let compressed = compress(&plain);
        assert_ne!(compressed, plain);
        assert_eq!(
            inventory(file, &compressed),
            inventory(file, &plain),
            "{file}"
        );
    }
}

#[test]
fn truncated_xml_reports_position() {
    let full = fixture("glpi-1.xml");
    let cut = &full[..full.len() / 2];
    let ReadError::Xml {
        line,
        column,
        reason,
    } = error(cut)
    else {
        panic!("expected an XML syntax error");
    };
    let text = String::from_utf8_lossy(cut);
    let last_line = text.rsplit('\n').next().unwrap();
    assert_eq!(line as usize, text.matches('\n').count() + 1);
    assert_eq!(column as usize, last_line.chars().count() + 1);
    assert!(reason.contains("cut off"), "{reason}");
}

#[test]
fn xml_syntax_error_position() {
    let error =
        error(b"<REQUEST>\n  <QUERY>INVENTORY</QUERY>\n  <CONTENT><BIOS></CONTENT>\n</REQUEST>");
    let ReadError::Xml { line, column, .. } = error else {
        panic!("expected an XML syntax error, got {error:?}");
    };
    assert_eq!((line, column), (3, 18));
}

#[test]
fn placeholder_serial_and_asset_tag() {
    let item = json_item(json!({
        "deviceid": "pc-0142-2024-05-02-10-00-00",
        "itemtype": "Computer",
        "content": {
            "hardware": {"name": "pc-0142", "uuid": "4c4c4544-0042-3510-8052-b4c04f4e3132"},
            "bios": {"ssn": "To Be Filled By O.E.M.", "assettag": "Default string"}
        }
    }));
    assert_eq!(item.text("serial_number"), None);
    assert_eq!(item.text("asset_tag"), None);
    assert_eq!(
        item.placeholders.get("serial_number").map(String::as_str),
        Some("To Be Filled By O.E.M.")
    );
    assert_eq!(
        item.placeholders.get("asset_tag").map(String::as_str),
        Some("Default string")
    );
    // The UUID still identifies the machine.
    assert_eq!(
        item.text("uuid"),
        Some("4C4C4544-0042-3510-8052-B4C04F4E3132")
    );
}

#[test]
fn reading_twice_gives_equal_items() {
    for file in [
        "glpi-1.xml",
        "glpi-computer_1.json",
        "glpi-7.xml",
        "lshw-notebook.json",
    ] {
        assert_eq!(document(file), document(file), "{file}");
    }
}

#[test]
fn entry_order_does_not_change_items() {
    let original: Value = serde_json::from_slice(&fixture("glpi-computer_1.json")).unwrap();
    let mut reordered = original.clone();
    for section in ["networks", "softwares"] {
        reordered["content"][section]
            .as_array_mut()
            .unwrap()
            .reverse();
    }
    assert_eq!(json_item(reordered), json_item(original));
}

#[test]
fn prolog_message() {
    let message = read(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<REQUEST><DEVICEID>pc-0142-2024-01-01-00-00-00</DEVICEID><QUERY>PROLOG</QUERY><TOKEN>12345678</TOKEN></REQUEST>",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    assert_eq!(
        message,
        Message::Prolog {
            device_id: Some("pc-0142-2024-01-01-00-00-00".to_owned())
        }
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(&fixture("glpi-printer_1.json"));
    assert_eq!(
        inventory("printer with BOM", &body),
        document("glpi-printer_1.json")
    );
}

#[test]
fn non_inventory_inputs_are_explained() {
    assert!(matches!(error(b""), ReadError::Empty));
    assert!(matches!(error(b"  \n "), ReadError::Empty));
    assert!(matches!(error(b"hello"), ReadError::UnknownFormat { .. }));
    assert!(matches!(error(b"{\"deviceid\": "), ReadError::Json { .. }));
    let message = error(b"[1, 2]").to_string();
    assert!(message.contains("an array"), "{message}");
}

#[test]
fn normalise_mac_forms() {
    assert_eq!(
        normalise_mac("00-1B-2C-3D-4E-5F").as_deref(),
        Some("00:1b:2c:3d:4e:5f")
    );
    assert_eq!(
        normalise_mac("001b.2c3d.4e5f").as_deref(),
        Some("00:1b:2c:3d:4e:5f")
    );
    assert_eq!(normalise_mac("01:00:5e:00:00:fb"), None, "multicast");
    assert_eq!(normalise_mac("d5:c9:gh:81:cf:80"), None, "not hex");
    assert_eq!(normalise_mac("00:00:00:00:00:00"), None, "placeholder");
}

#[test]
fn whole_numbers_are_stored_as_integers() {
    let mut item = Item::new(ItemKind::Computer);
    item.set_number("memory_mb", 8192.0);
    item.set_number("ratio", 0.5);
    item.set_number("broken", f64::NAN);
    assert_eq!(item.attributes["memory_mb"], json!(8192));
    assert_eq!(item.attributes["ratio"], json!(0.5));
    assert_eq!(item.attributes.get("broken"), None);
}
