//! The plugins a server offers: the script plugin when `script/allowed.yaml` exists in the
//! plugins directory, the webhook plugin when `webhook/webhook.yaml` does, the remote
//! plugin when `remote/remote.yaml` does, and every external plugin whose manifest is
//! `*/plugin.yaml` there.

use std::path::Path;
use std::sync::Arc;

use tend_plugin_api::PluginRegistry;
use tend_plugin_external::ExternalPlugin;
use tend_plugin_remote::RemotePlugin;
use tend_plugin_script::ScriptPlugin;
use tend_plugin_webhook::WebhookPlugin;

/// Loads the plugins of `dir`. A broken allow-list, configuration or manifest stops the
/// server with every problem listed, as broken definitions do; a missing directory means
/// no plugins.
pub fn registry(dir: &Path) -> anyhow::Result<PluginRegistry> {
    let mut registry = PluginRegistry::new();
    if !dir.is_dir() {
        tracing::info!(
            "no plugins directory at {}: records can run no plugin actions",
            dir.display()
        );
        return Ok(registry);
    }
    let mut problems = Vec::new();
    let allow_list = dir.join("script").join("allowed.yaml");
    if allow_list.is_file() {
        match ScriptPlugin::load(&allow_list) {
            Ok(script) => {
                for missing in script.missing_executables() {
                    tracing::warn!("{missing}; until then its runs fail");
                }
                registry.add(Arc::new(script));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let webhook_file = dir.join("webhook").join("webhook.yaml");
    if webhook_file.is_file() {
        match WebhookPlugin::load(&webhook_file) {
            Ok(webhook) => {
                for missing in webhook.missing_env() {
                    tracing::warn!("{missing}: runs of that endpoint fail until it is set");
                }
                registry.add(Arc::new(webhook));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let remote_file = dir.join("remote").join("remote.yaml");
    if remote_file.is_file() {
        match RemotePlugin::load(&remote_file) {
            Ok(remote) => {
                registry.add(Arc::new(remote));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let (external, errors) = ExternalPlugin::load_dir(dir);
    problems.extend(errors.iter().map(ToString::to_string));
    for plugin in external {
        if let Some(replaced) = registry.add(Arc::new(plugin)) {
            problems.push(format!(
                "two plugins are named `{}`: rename the external one in its plugin.yaml",
                replaced.name()
            ));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the plugins in {} have problems:\n{}",
            dir.display(),
            problems.join("\n")
        );
    }
    let names: Vec<&str> = registry.iter().map(|plugin| plugin.name()).collect();
    tracing::info!(plugins = ?names, "plugins loaded from {}", dir.display());
    Ok(registry)
}
