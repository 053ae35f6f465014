//! The plugins a server offers, from the plugins directory: the script plugin when
//! `script/allowed.yaml` exists there, the recovery plugin when `recovery/recovery.yaml`
//! does, the deployment plugin when `deployment/deployment.yaml` does, the webhook plugin
//! when `webhook/webhook.yaml` does, the remote plugin when `remote/remote.yaml` does, the
//! email plugin when `email/email.yaml` does, and every external plugin whose manifest is
//! `*/plugin.yaml` there.

use std::path::Path;
use std::sync::Arc;

use tend_plugin_api::PluginRegistry;
use tend_plugin_deployment::DeploymentPlugin;
use tend_plugin_email::EmailPlugin;
use tend_plugin_external::ExternalPlugin;
use tend_plugin_recovery::RecoveryPlugin;
use tend_plugin_remote::RemotePlugin;
use tend_plugin_script::ScriptPlugin;
use tend_plugin_webhook::WebhookPlugin;

/// Loads the plugins of `dir`. A broken allow-list, configuration or manifest stops the
/// server with every problem listed, as broken definitions do. A missing directory means
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
    let recovery = dir.join("recovery").join("recovery.yaml");
    if recovery.is_file() {
        match RecoveryPlugin::load(&recovery) {
            Ok(plugin) => {
                for missing in plugin.missing_setup() {
                    tracing::warn!(
                        "the recovery plugin's runs will fail until this is fixed: {missing}"
                    );
                }
                registry.add(Arc::new(plugin));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let deployment = dir.join("deployment").join("deployment.yaml");
    if deployment.is_file() {
        match DeploymentPlugin::load(&deployment) {
            Ok(plugin) => {
                for missing in plugin.missing_setup() {
                    tracing::warn!(
                        "the deployment plugin's runs will fail until this is fixed: {missing}"
                    );
                }
                registry.add(Arc::new(plugin));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let webhook = dir.join("webhook").join("webhook.yaml");
    if webhook.is_file() {
        match WebhookPlugin::load(&webhook) {
            Ok(plugin) => {
                for missing in plugin.missing_env() {
                    tracing::warn!("{missing}: runs of that endpoint fail until it is set");
                }
                registry.add(Arc::new(plugin));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let remote = dir.join("remote").join("remote.yaml");
    if remote.is_file() {
        match RemotePlugin::load(&remote) {
            Ok(plugin) => {
                registry.add(Arc::new(plugin));
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let email = dir.join("email").join("email.yaml");
    if email.is_file() {
        match EmailPlugin::load(&email) {
            Ok(plugin) => {
                registry.add(Arc::new(plugin));
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
