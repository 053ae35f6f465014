//! The plugins a server offers.

use std::path::Path;

use tend_plugin_api::PluginRegistry;

/// Builds the registry of the plugins in `dir`.
pub fn registry(dir: &Path) -> anyhow::Result<PluginRegistry> {
    let registry = PluginRegistry::new();
    if !dir.is_dir() {
        tracing::info!(
            "no plugins directory at {}: records can run no plugin actions",
            dir.display()
        );
    }
    Ok(registry)
}
