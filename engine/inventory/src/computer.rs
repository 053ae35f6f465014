//! The values an agent reports about a computer or a phone, and the rules that turn them
//! into an [`Item`]. The FusionInventory XML, GLPI JSON and lshw readers each fill a
//! [`ComputerReport`] from their own format, so that one set of rules decides what
//! identifies the machine.

use crate::address::{is_universal_mac, join_fqdn, split_host_name, usable_ip};
use crate::{Item, ItemKind, Software, is_placeholder, normalise_mac};

/// Raw values read from a computer or phone inventory, untrimmed and unvalidated. A
/// field is empty when the document does not carry it.
#[derive(Debug, Default)]
pub(crate) struct ComputerReport {
    pub(crate) host_name: Option<String>,
    pub(crate) uuid: Option<String>,
    pub(crate) serial_number: Option<String>,
    pub(crate) asset_tag: Option<String>,
    /// Makers in order of preference: the system maker, then the board maker.
    pub(crate) manufacturers: Vec<String>,
    pub(crate) model: Option<String>,
    /// Operating system names in order of preference, most descriptive first.
    pub(crate) os_names: Vec<String>,
    pub(crate) os_versions: Vec<String>,
    /// Kernel name (`linux`, `darwin`, `MSWin32`).
    pub(crate) kernel_name: Option<String>,
    /// The DNS domain the operating system reports.
    pub(crate) dns_domain: Option<String>,
    /// Windows workgroup or the DNS name of the Active Directory domain.
    pub(crate) workgroup: Option<String>,
    pub(crate) chassis: Option<String>,
    /// The agent's virtualisation check: `Physical`, or the VM or container system.
    pub(crate) vm_system: Option<String>,
    /// Memory available to the operating system, in MiB.
    pub(crate) memory_mb: Option<f64>,
    /// Sizes of the memory modules in MiB, used when `memory_mb` is missing.
    pub(crate) memory_modules_mb: Vec<f64>,
    pub(crate) cpus: Vec<Cpu>,
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) software: Option<Vec<Software>>,
}

/// One processor package as reported.
#[derive(Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) name: Option<String>,
    pub(crate) cores: Option<f64>,
}

/// One network interface, or one address of it: agents repeat an interface once per
/// address.
#[derive(Debug, Default)]
pub(crate) struct Interface {
    /// Interface name (`eth0`, `en1`) or the adapter description on Windows.
    pub(crate) name: Option<String>,
    /// Interface type (`ethernet`, `wifi`, `loopback`).
    pub(crate) kind: Option<String>,
    pub(crate) mac: Option<String>,
    pub(crate) ips: Vec<String>,
    /// The agent's flag for software interfaces (bridges, tunnels, VM adapters).
    pub(crate) virtual_device: Option<bool>,
    /// Windows Plug and Play id of the adapter.
    pub(crate) pnp_device_id: Option<String>,
}

/// Builds a software entry from reported values. Returns `None` when the name is
/// missing, because an entry without a name cannot be matched to a product.
pub(crate) fn software_entry(
    name: Option<&str>,
    version: Option<&str>,
    publisher: Option<&str>,
) -> Option<Software> {
    let name = non_empty(name)?;
    Some(Software {
        name: name.to_owned(),
        version: non_empty(version).map(str::to_owned),
        publisher: non_empty(publisher).map(str::to_owned),
    })
}

/// Turns a report into an item of `kind`, or, when `kind` is `None`, of the kind that
/// the operating system implies (a phone for Android and iOS, else a computer).
pub(crate) fn to_item(report: ComputerReport, kind: Option<ItemKind>) -> Item {
    let kind = kind.unwrap_or_else(|| {
        if runs_phone_os(&report) {
            ItemKind::Phone
        } else {
            ItemKind::Computer
        }
    });
    let mut item = Item::new(kind);

    set_identity(&mut item, &report);
    set_operating_system(&mut item, &report);
    set_hardware(&mut item, &report);
    set_addresses(&mut item, &report);

    item.software = report.software.map(|mut software| {
        // Entries that differ only in what the model does not keep (the architecture of
        // a multi-arch package) collapse into one.
        software.sort();
        software.dedup();
        software
    });
    item
}

fn set_identity(item: &mut Item, report: &ComputerReport) {
    if let Some(host) = report.host_name.as_deref().and_then(split_host_name) {
        let fqdn = host.fqdn.clone().or_else(|| {
            [&report.dns_domain, &report.workgroup]
                .into_iter()
                .flatten()
                .find_map(|domain| join_fqdn(&host.name, domain))
        });
        if let Some(fqdn) = fqdn {
            item.set_text("fqdn", &fqdn);
        }
        item.name = Some(host.name);
    }

    if let Some(uuid) = &report.uuid {
        item.set_text("uuid", &uuid.to_ascii_uppercase());
    }
    // NOTE: the board serial (BIOS/MSN) is not used when the system serial is missing:
    // boards ship default board serials that the placeholder list does not know, and a
    // shared value would merge machines.
    if let Some(serial) = &report.serial_number {
        item.set_text("serial_number", serial);
    }
    if let Some(asset_tag) = &report.asset_tag {
        item.set_text("asset_tag", asset_tag);
    }
    set_first_text(item, "manufacturer", &report.manufacturers);
    if let Some(model) = &report.model {
        item.set_text("model", model);
    }
}

fn set_operating_system(item: &mut Item, report: &ComputerReport) {
    set_first_text(item, "os_name", &report.os_names);
    set_first_text(item, "os_version", &report.os_versions);
}

fn set_hardware(item: &mut Item, report: &ComputerReport) {
    let first_cpu = report
        .cpus
        .iter()
        .find_map(|cpu| non_empty(cpu.name.as_deref()));
    if let Some(name) = first_cpu {
        item.set_text("cpu", name);
    }
    if !report.cpus.is_empty() {
        // A processor that does not report its cores counts as one.
        let cores: f64 = report.cpus.iter().map(|cpu| cpu.cores.unwrap_or(1.0)).sum();
        item.set_number("cpu_cores", cores);
    }

    let modules_mb: f64 = report.memory_modules_mb.iter().sum();
    let memory_mb = report.memory_mb.filter(|mb| *mb > 0.0).or_else(|| {
        let installed = modules_mb > 0.0;
        installed.then_some(modules_mb)
    });
    if let Some(memory_mb) = memory_mb {
        item.set_number("memory_mb", memory_mb);
    }

    item.chassis = non_empty(report.chassis.as_deref())
        .filter(|chassis| !is_placeholder(chassis))
        .map(str::to_owned);

    let vm_system = non_empty(report.vm_system.as_deref())
        .filter(|system| !system.eq_ignore_ascii_case("physical") && !is_placeholder(system));
    if let Some(system) = vm_system {
        item.virtual_machine = true;
        item.set_text("hypervisor", system);
    }
}

fn set_addresses(item: &mut Item, report: &ComputerReport) {
    let ips = report
        .interfaces
        .iter()
        .flat_map(|interface| &interface.ips)
        .filter_map(|ip| usable_ip(ip));
    item.set_list("ip_addresses", ips);

    let mac_os = runs_mac_os(report);
    let macs = report
        .interfaces
        .iter()
        .filter(|interface| !is_loopback(interface))
        .filter_map(|interface| {
            let mac = normalise_mac(interface.mac.as_deref()?)?;
            let physical = if mac_os {
                is_mac_os_hardware_port(interface, &mac)
            } else {
                is_hardware_interface(interface)
            };
            physical.then_some(mac)
        });
    item.set_list("mac_addresses", macs);
}

fn is_loopback(interface: &Interface) -> bool {
    let kind = interface.kind.as_deref().unwrap_or("").trim();
    let name = interface.name.as_deref().unwrap_or("").trim();
    kind.eq_ignore_ascii_case("loopback")
        || name.to_ascii_lowercase().starts_with("loopback")
        || name
            .strip_prefix("lo")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}

/// Checks the agent's virtual flag, and on Windows also the Plug and Play id: adapters
/// enumerated under `ROOT\` or `SWD\` are created by software (VPN TAP adapters, for
/// one), even where the agent reports them as physical.
fn is_hardware_interface(interface: &Interface) -> bool {
    if interface.virtual_device == Some(true) {
        return false;
    }
    let pnp_id = interface
        .pnp_device_id
        .as_deref()
        .unwrap_or("")
        .to_ascii_uppercase();
    !(pnp_id.starts_with("ROOT\\") || pnp_id.starts_with("SWD\\"))
}

/// Checks for a macOS hardware port by name and MAC. The FusionInventory agent for macOS
/// marks every interface virtual unless `ifconfig` lists its supported media, which
/// `ifconfig -a` does not (agent module `Task/Inventory/MacOS/Networks.pm`), so its flag
/// cannot be used. macOS names its hardware ports `en0`, `en1`, …, and the software
/// ports that share that prefix (Thunderbolt bridge members) have locally administered
/// MACs.
fn is_mac_os_hardware_port(interface: &Interface, mac: &str) -> bool {
    let name = interface.name.as_deref().unwrap_or("").trim();
    let hardware_name = name
        .strip_prefix("en")
        .is_some_and(|number| !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()));
    hardware_name && is_universal_mac(mac)
}

fn runs_mac_os(report: &ComputerReport) -> bool {
    let darwin_kernel = report
        .kernel_name
        .as_deref()
        .is_some_and(|kernel| kernel.trim().eq_ignore_ascii_case("darwin"));
    darwin_kernel
        || report.os_names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            name.contains("mac os") || name.contains("macos")
        })
}

/// Checks the operating system names for Android or iOS. Names are compared by word, so
/// that `BIOS` or `Cisco IOS-XE` in some other field cannot match by accident.
fn runs_phone_os(report: &ComputerReport) -> bool {
    report.os_names.iter().any(|name| {
        let name = name.to_ascii_lowercase();
        let words: Vec<&str> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect();
        let iphone_os = words.windows(2).any(|pair| pair == ["iphone", "os"]);
        iphone_os
            || words
                .iter()
                .any(|word| matches!(*word, "android" | "ios" | "ipados"))
    })
}

/// Sets `attribute` from the first candidate that is not a placeholder. When every
/// candidate is one, the first is kept in [`Item::placeholders`].
fn set_first_text(item: &mut Item, attribute: &str, candidates: &[String]) {
    let candidates: Vec<&str> = candidates
        .iter()
        .filter_map(|value| non_empty(Some(value)))
        .collect();
    let chosen = candidates
        .iter()
        .find(|value| !is_placeholder(value))
        .or(candidates.first());
    if let Some(value) = chosen {
        item.set_text(attribute, value);
    }
}

/// Returns the trimmed value, or `None` when it is missing or blank.
pub(crate) fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(name: &str, mac: &str, virtual_device: Option<bool>) -> Interface {
        Interface {
            name: Some(name.to_owned()),
            mac: Some(mac.to_owned()),
            virtual_device,
            ..Interface::default()
        }
    }

    #[test]
    fn android_report_is_a_phone() {
        let report = ComputerReport {
            os_names: vec!["Q Android 10.0 api 29".to_owned()],
            ..ComputerReport::default()
        };
        assert_eq!(to_item(report, None).kind, ItemKind::Phone);
    }

    #[test]
    fn bios_word_is_not_ios() {
        let report = ComputerReport {
            os_names: vec!["BIOS-based Linux".to_owned()],
            ..ComputerReport::default()
        };
        assert_eq!(to_item(report, None).kind, ItemKind::Computer);
    }

    #[test]
    fn explicit_kind_wins_over_os() {
        let report = ComputerReport {
            os_names: vec!["Android-x86 9.0".to_owned()],
            ..ComputerReport::default()
        };
        assert_eq!(
            to_item(report, Some(ItemKind::Computer)).kind,
            ItemKind::Computer
        );
    }

    #[test]
    fn virtual_and_loopback_macs_are_skipped() {
        let report = ComputerReport {
            interfaces: vec![
                interface("lo", "00:00:00:00:00:01", Some(true)),
                interface("ifb0", "16:a5:5d:9e:e3:ab", Some(true)),
                interface("eth0", "02:FC:00:00:00:01", Some(false)),
                interface("eth1", "52-54-00-12-34-56", None),
            ],
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert_eq!(
            item.attributes["mac_addresses"],
            serde_json::json!(["02:fc:00:00:00:01", "52:54:00:12:34:56"])
        );
    }

    #[test]
    fn windows_root_adapter_is_software() {
        let mut tap = interface("TAP-Windows Adapter V9", "00:FF:3A:68:62:80", Some(false));
        tap.pnp_device_id = Some("ROOT\\NET\\0000".to_owned());
        let mut wired = interface("Intel(R) 82577LM", "68:B5:99:E6:84:EB", Some(false));
        wired.pnp_device_id = Some("PCI\\VEN_8086&DEV_10EA".to_owned());
        let item = to_item(
            ComputerReport {
                interfaces: vec![tap, wired],
                ..ComputerReport::default()
            },
            None,
        );
        assert_eq!(
            item.attributes["mac_addresses"],
            serde_json::json!(["68:b5:99:e6:84:eb"])
        );
    }

    #[test]
    fn mac_os_keeps_en_ports_despite_virtual_flag() {
        let report = ComputerReport {
            kernel_name: Some("darwin".to_owned()),
            interfaces: vec![
                interface("en0", "0c:4d:e9:cd:a4:c8", Some(true)),
                interface("en2", "0a:00:00:13:12:60", Some(true)),
                interface("awdl0", "9e:30:b0:0f:bf:4a", Some(true)),
                interface("bridge0", "0a:00:00:13:12:60", Some(true)),
            ],
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert_eq!(
            item.attributes["mac_addresses"],
            serde_json::json!(["0c:4d:e9:cd:a4:c8"])
        );
    }

    #[test]
    fn placeholder_maker_falls_back_to_board_maker() {
        let report = ComputerReport {
            manufacturers: vec!["System manufacturer".to_owned(), "ASUSTeK".to_owned()],
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert_eq!(item.text("manufacturer"), Some("ASUSTeK"));
        assert!(item.placeholders.is_empty());
    }

    #[test]
    fn all_placeholder_makers_are_kept_as_reported() {
        let report = ComputerReport {
            manufacturers: vec![
                "To Be Filled By O.E.M.".to_owned(),
                "Default string".to_owned(),
            ],
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert_eq!(item.text("manufacturer"), None);
        assert_eq!(
            item.placeholders.get("manufacturer").map(String::as_str),
            Some("To Be Filled By O.E.M.")
        );
    }

    #[test]
    fn fqdn_comes_from_dns_domain_not_workgroup_name() {
        let with_domain = ComputerReport {
            host_name: Some("LF014".to_owned()),
            dns_domain: Some("ad.crosoft.com".to_owned()),
            ..ComputerReport::default()
        };
        assert_eq!(
            to_item(with_domain, None).text("fqdn"),
            Some("lf014.ad.crosoft.com")
        );

        let with_workgroup = ComputerReport {
            host_name: Some("PC-0142".to_owned()),
            workgroup: Some("WORKGROUP".to_owned()),
            ..ComputerReport::default()
        };
        assert_eq!(to_item(with_workgroup, None).text("fqdn"), None);
    }

    #[test]
    fn cores_sum_and_count_missing_as_one() {
        let report = ComputerReport {
            cpus: vec![
                Cpu {
                    name: Some("Xeon".to_owned()),
                    cores: Some(8.0),
                },
                Cpu {
                    name: Some("Xeon".to_owned()),
                    cores: None,
                },
            ],
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert_eq!(item.attributes["cpu_cores"], serde_json::json!(9));
    }

    #[test]
    fn physical_vm_system_is_not_a_vm() {
        let report = ComputerReport {
            vm_system: Some("Physical".to_owned()),
            ..ComputerReport::default()
        };
        let item = to_item(report, None);
        assert!(!item.virtual_machine);
        assert_eq!(item.text("hypervisor"), None);
    }
}
