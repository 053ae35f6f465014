//! Reads the documents that inventory agents send into one model, [`Document`], that the
//! CMDB reconciliation works on:
//!
//! - FusionInventory and GLPI agent XML (`<REQUEST><QUERY>INVENTORY`, `NETDISCOVERY`,
//!   `SNMPQUERY`), as a file or zlib-compressed as the agent posts it;
//! - the GLPI agent JSON inventory format (full and `partial` documents);
//! - the output of `lshw -json`, as one object or wrapped in an array.
//!
//! Reading does not know the CMDB classes. It names each value after the attribute
//! vocabulary of the shipped classes (`serial_number`, `uuid`, `mac_addresses`, …), and
//! the reconciliation keeps the ones the chosen class declares. Values that firmware
//! writes when the maker left a field empty ("To Be Filled By O.E.M.") are never
//! returned as attributes: they are kept in [`Item::placeholders`], so that they are
//! shown as reported but never used to match or to tell CIs apart.

mod address;
mod computer;
mod fusion;
mod glpi;
mod json;
mod lshw;
mod network;
mod placeholder;

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use serde_json::Value;

pub use placeholder::{is_placeholder, is_placeholder_mac};

/// Largest document accepted once decompressed; an agent's inventory of a large server
/// with its software is a few megabytes.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The formats that [`read`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// FusionInventory / GLPI agent XML (`<REQUEST>`).
    FusionInventoryXml,
    /// GLPI agent JSON inventory format.
    GlpiJson,
    /// `lshw -json`.
    Lshw,
}

impl Format {
    /// The source name that class definitions use in `sources:` to say which source may
    /// write an attribute and which one wins.
    pub fn source(self) -> &'static str {
        match self {
            Format::FusionInventoryXml => "fusioninventory",
            Format::GlpiJson => "glpi_agent",
            Format::Lshw => "lshw",
        }
    }
}

/// Kind of device a document describes. The reconciliation maps it to a CI class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Computer,
    NetworkDevice,
    Printer,
    Phone,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Computer => "computer",
            ItemKind::NetworkDevice => "network_device",
            ItemKind::Printer => "printer",
            ItemKind::Phone => "phone",
        }
    }
}

/// A message read from an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum Message {
    /// The FusionInventory agent's first contact (`<QUERY>PROLOG`): it asks whether to
    /// send an inventory, and the server answers `SEND`.
    Prolog { device_id: Option<String> },
    /// An inventory of one or more items.
    Inventory(Document),
}

/// An inventory document in the common model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub format: Format,
    /// The agent's id of the device (`DEVICEID`, `deviceid`). Agents put the date of
    /// their first run in it, so it identifies an agent installation, not hardware.
    pub device_id: Option<String>,
    /// The document carries only some sections (GLPI agent `partial: true`): what it
    /// does not carry is unchanged, not gone.
    pub partial: bool,
    /// The items: one for an inventory, one per device found for a network discovery.
    pub items: Vec<Item>,
}

/// One device of a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub kind: ItemKind,
    /// Host name as reported (short name; the domain goes in `fqdn`).
    pub name: Option<String>,
    /// Values named after the attribute vocabulary of the shipped classes:
    ///
    /// | attribute | type | from |
    /// |---|---|---|
    /// | `serial_number` | string | BIOS/system serial, device serial |
    /// | `uuid` | string | system UUID (SMBIOS), upper-case |
    /// | `asset_tag` | string | BIOS asset tag |
    /// | `fqdn` | string | host name with its DNS domain, lower-case |
    /// | `manufacturer`, `model` | string | system maker and product |
    /// | `os_name`, `os_version` | string | operating system |
    /// | `cpu` | string | name of the first processor |
    /// | `cpu_cores` | number | cores in all processors |
    /// | `memory_mb` | number | physical memory in MiB |
    /// | `ip_addresses` | list of strings | IPv4 and IPv6 addresses, without loopback and link-local, sorted |
    /// | `mac_addresses` | list of strings | MACs of physical interfaces, lower-case `aa:bb:…`, sorted, no placeholders |
    /// | `hypervisor` | string | for a virtual machine, the VM system (`VMware`, `KVM`, …) |
    /// | `firmware_version` | string | network device or printer firmware |
    /// | `ports` | number | network device Ethernet port count (VLAN interfaces and port channels left out) |
    /// | `kind` | string | network device type: `switch`, `router`, `firewall`, `access_point`, `load_balancer`, `other` |
    ///
    /// An attribute that the document does not report is absent.
    pub attributes: BTreeMap<String, Value>,
    /// Attributes whose reported value is a firmware placeholder, with that value.
    pub placeholders: BTreeMap<String, String>,
    /// The chassis type as reported (`Notebook`, `Rack Mount Chassis`, `Desktop`, …).
    pub chassis: Option<String>,
    /// The device is a virtual machine (the agent reports a VM system other than
    /// `Physical`).
    pub virtual_machine: bool,
    /// Software installed, or `None` when the document does not carry the section (a
    /// partial document, lshw). `Some` of an empty list means nothing is installed.
    pub software: Option<Vec<Software>>,
    /// Links from this device's ports to the devices seen behind them (switch port
    /// tables, LLDP/CDP neighbours).
    pub connections: Vec<Connection>,
}

impl Item {
    /// An item of `kind` with nothing reported yet.
    pub fn new(kind: ItemKind) -> Item {
        Item {
            kind,
            name: None,
            attributes: BTreeMap::new(),
            placeholders: BTreeMap::new(),
            chassis: None,
            virtual_machine: false,
            software: None,
            connections: Vec::new(),
        }
    }

    /// Sets a string attribute, trimmed; an empty value is skipped, and a placeholder
    /// goes to [`Item::placeholders`].
    pub fn set_text(&mut self, attribute: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if is_placeholder(value) {
            self.placeholders
                .insert(attribute.to_owned(), value.to_owned());
            self.attributes.remove(attribute);
            return;
        }
        self.attributes
            .insert(attribute.to_owned(), Value::String(value.to_owned()));
    }

    /// Sets a number attribute. A whole number is stored as an integer, so that counts
    /// and sizes compare and print as `8`, not `8.0`. NaN and infinities are skipped.
    pub fn set_number(&mut self, attribute: &str, value: f64) {
        let whole = value.fract() == 0.0 && value.abs() < 2f64.powi(53);
        let number = if whole {
            Some(serde_json::Number::from(value as i64))
        } else {
            serde_json::Number::from_f64(value)
        };
        if let Some(number) = number {
            self.attributes
                .insert(attribute.to_owned(), Value::Number(number));
        }
    }

    /// Sets a list attribute from `values`, trimmed, de-duplicated and sorted, so that the
    /// same machine reported twice gives the same list. An empty list is skipped.
    pub fn set_list(&mut self, attribute: &str, values: impl IntoIterator<Item = String>) {
        let mut list: Vec<String> = values
            .into_iter()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            return;
        }
        self.attributes.insert(
            attribute.to_owned(),
            Value::Array(list.into_iter().map(Value::String).collect()),
        );
    }

    /// Returns a string attribute.
    pub fn text(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute).and_then(Value::as_str)
    }
}

/// One installed software package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Software {
    pub name: String,
    pub version: Option<String>,
    pub publisher: Option<String>,
}

/// A device found behind one of a network device's ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// The port's name on this device (`Gi1/0/12`).
    pub port: String,
    /// MAC addresses learnt on the port and the chassis MACs of LLDP/CDP neighbours,
    /// normalised like `mac_addresses` and sorted.
    pub macs: Vec<String>,
    /// A neighbour announced by LLDP or CDP: its system name, when given.
    pub neighbour: Option<String>,
}

/// Reason a document could not be read. Each message names what was found and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the document is empty: send the agent's inventory (XML or JSON) in the body")]
    Empty,
    #[error(
        "the document is larger than {limit} bytes once decompressed: raise the inventory size limit or send a smaller inventory"
    )]
    TooLarge { limit: usize },
    #[error(
        "the document starts like zlib data but does not decompress ({reason}): send it uncompressed or as the agent compresses it"
    )]
    Compression { reason: String },
    #[error(
        "the document is neither XML nor JSON (it starts with {start:?}): send a FusionInventory/GLPI agent XML inventory, a GLPI agent JSON inventory or the output of `lshw -json`"
    )]
    UnknownFormat { start: String },
    #[error("the XML is not well-formed at line {line}, column {column}: {reason}")]
    Xml {
        line: u32,
        column: u32,
        reason: String,
    },
    #[error("the JSON is not valid at line {line}, column {column}: {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    /// Well-formed, but not an inventory that can be imported.
    #[error("{0}")]
    NotInventory(String),
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a document as it arrived: zlib-compressed or not, XML or JSON. `max_bytes`
/// bounds the size once decompressed.
pub fn read(bytes: &[u8], max_bytes: usize) -> Result<Message, ReadError> {
    let text = decompress(bytes, max_bytes)?;
    // Some Windows tools (PowerShell 5 with `-Encoding UTF8`) write a UTF-8 byte order
    // mark, which neither XML nor JSON parsing expects before the first character.
    let body = text
        .strip_prefix(UTF8_BOM)
        .unwrap_or(&text)
        .trim_ascii_start();
    match body.first() {
        None => Err(ReadError::Empty),
        Some(b'<') => fusion::read(body),
        Some(b'{') | Some(b'[') => {
            let value: Value = serde_json::from_slice(body).map_err(|error| ReadError::Json {
                line: error.line(),
                column: error.column(),
                reason: error.to_string(),
            })?;
            if lshw::looks_like(&value) {
                lshw::read(&value).map(Message::Inventory)
            } else {
                glpi::read(&value).map(Message::Inventory)
            }
        }
        Some(_) => Err(ReadError::UnknownFormat {
            start: String::from_utf8_lossy(&body[..body.len().min(16)]).into_owned(),
        }),
    }
}

/// Returns `bytes` decompressed when they are zlib data (the agent's
/// `application/x-compress-zlib`), else as they are; refuses more than `max_bytes`.
pub fn decompress(bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if !is_zlib(bytes) {
        if bytes.len() > max_bytes {
            return Err(ReadError::TooLarge { limit: max_bytes });
        }
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(bytes).take(max_bytes as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|error| ReadError::Compression {
            reason: error.to_string(),
        })?;
    if out.len() > max_bytes {
        return Err(ReadError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

/// Compresses `bytes` with zlib, as the agent expects the server's replies to be when it
/// sent its request compressed.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // The encoder writes into a Vec, whose writes return no error, so neither call fails.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Checks the two-byte zlib header: deflate method, and a header checksum that divides
/// by 31. XML and JSON text never passes it.
fn is_zlib(bytes: &[u8]) -> bool {
    bytes.len() >= 2
        && bytes[0] & 0x0f == 8
        && bytes[0] >> 4 <= 7
        && (u16::from(bytes[0]) << 8 | u16::from(bytes[1])) % 31 == 0
}

/// Normalises a MAC address to lower-case `aa:bb:cc:dd:ee:ff`. Returns `None` for
/// anything that is not six bytes in hex (with `:`, `-` or `.` separators, or none),
/// for a placeholder, and for a multicast address, which no interface has as its own.
pub fn normalise_mac(value: &str) -> Option<String> {
    let hex: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    let first_byte = u8::from_str_radix(&hex[..2], 16).ok()?;
    if first_byte & 0x01 == 1 {
        return None;
    }
    let mac = (0..6)
        .map(|i| &hex[i * 2..i * 2 + 2])
        .collect::<Vec<_>>()
        .join(":");
    (!is_placeholder_mac(&mac)).then_some(mac)
}
