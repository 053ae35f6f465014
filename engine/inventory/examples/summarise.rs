//! Prints what each inventory file reads to: one line per item with its kind, name,
//! serial number, software count and attributes, or the error. With the environment
//! variable `SUMMARISE_CONNECTIONS` set, it also prints each item's connections.
//!
//! ```text
//! cargo run -p tend-inventory --example summarise -- FILE...
//! ```

use std::process::ExitCode;

use tend_inventory::{DEFAULT_MAX_BYTES, Message, read};

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: summarise FILE...");
        return ExitCode::FAILURE;
    }
    for path in paths {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                println!("{path}: cannot read the file: {error}");
                continue;
            }
        };
        match read(&bytes, DEFAULT_MAX_BYTES) {
            Ok(Message::Prolog { device_id }) => println!("{path}: prolog from {device_id:?}"),
            Ok(Message::Inventory(document)) if document.items.is_empty() => {
                println!("{path}: {:?} document without items", document.format);
            }
            Ok(Message::Inventory(document)) => {
                for item in &document.items {
                    println!(
                        "{path}: {} name={:?} serial={:?} software={:?} connections={} attributes={} placeholders={:?}",
                        item.kind.as_str(),
                        item.name.as_deref().unwrap_or("-"),
                        item.text("serial_number").unwrap_or("-"),
                        item.software.as_ref().map(Vec::len),
                        item.connections.len(),
                        serde_json::Value::Object(item.attributes.clone().into_iter().collect()),
                        item.placeholders,
                    );
                    if std::env::var_os("SUMMARISE_CONNECTIONS").is_some() {
                        for connection in &item.connections {
                            println!("    {connection:?}");
                        }
                    }
                }
            }
            Err(error) => println!("{path}: error: {error}"),
        }
    }
    ExitCode::SUCCESS
}
