//! The plugin catalogue: manifests shipped in the binary, written to `plugins` at start.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::schema::plugins;
use crate::error::{AppError, AppResult};

/// The manifests shipped with the server.
const SHIPPED: [&str; 3] = [
    include_str!("manifests/http_request.json"),
    include_str!("manifests/web_reader.json"),
    include_str!("manifests/date_time.json"),
];

/// What a plugin declares about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub version: String,
    pub author: Option<String>,
    pub icon: Option<String>,
    pub category: Option<String>,
    /// TOOL, MODEL or EXTENSION.
    pub plugin_type: String,
    pub source_url: Option<String>,
    pub documentation_url: Option<String>,
    /// The settings a workspace gives when installing.
    #[serde(default)]
    pub config: Vec<ConfigField>,
    /// What the plugin offers to workflows.
    #[serde(default)]
    pub tools: Vec<Tool>,
}

/// One setting of a plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigField {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    pub default: Option<Value>,
    pub description: Option<String>,
    /// The choices of a SELECT.
    pub options: Option<Vec<String>>,
    /// Bounds of a NUMBER or INTEGER.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The kinds of setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(name = "PluginSettingType")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FieldType {
    String,
    /// Stored encrypted, never returned.
    Secret,
    Url,
    Number,
    Integer,
    Boolean,
    Select,
    StringList,
}

/// An operation a plugin offers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub parameters: Vec<ToolParameter>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    pub description: Option<String>,
    pub options: Option<Vec<String>>,
}

impl Manifest {
    /// Reads a manifest and checks it is coherent.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        if !["TOOL", "MODEL", "EXTENSION"].contains(&self.plugin_type.as_str()) {
            return Err(format!("{}: unknown pluginType", self.name));
        }
        let mut seen = std::collections::HashSet::new();
        for field in &self.config {
            if !seen.insert(field.name.as_str()) {
                return Err(format!("{}: setting {} twice", self.name, field.name));
            }
            if field.field_type == FieldType::Select
                && field.options.as_ref().is_none_or(Vec::is_empty)
            {
                return Err(format!("{}: {} has no options", self.name, field.name));
            }
            if field.field_type == FieldType::Secret && field.default.is_some() {
                return Err(format!(
                    "{}: secret {} has a default",
                    self.name, field.name
                ));
            }
            if let Some(default) = &field.default {
                super::config::check_value(field, default)
                    .map_err(|e| format!("{}: default of {}: {e}", self.name, field.name))?;
            }
        }
        Ok(())
    }

    /// The manifest of a catalogue row.
    pub fn of(stored: &Value) -> AppResult<Manifest> {
        serde_json::from_value(stored.clone()).map_err(AppError::internal)
    }
}

/// The shipped manifests.
pub fn shipped() -> Result<Vec<Manifest>, String> {
    SHIPPED.iter().map(|text| Manifest::parse(text)).collect()
}

/// Writes the shipped plugins to the catalogue (new ones inserted, changed ones updated,
/// install counts kept). Run at start-up; safe when several instances start together.
pub async fn load_shipped(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    let manifests = shipped().map_err(AppError::internal)?;
    for m in &manifests {
        let stored = serde_json::to_value(m).map_err(AppError::internal)?;
        let values = (
            plugins::display_name.eq(&m.display_name),
            plugins::description.eq(&m.description),
            plugins::version.eq(&m.version),
            plugins::author.eq(&m.author),
            plugins::icon.eq(&m.icon),
            plugins::category.eq(&m.category),
            plugins::plugin_type.eq(&m.plugin_type),
            plugins::manifest.eq(&stored),
            plugins::source_url.eq(&m.source_url),
            plugins::documentation_url.eq(&m.documentation_url),
            plugins::is_active.eq(true),
            plugins::is_verified.eq(true),
        );
        diesel::insert_into(plugins::table)
            .values((plugins::name.eq(&m.name), values))
            .on_conflict(plugins::name)
            .do_update()
            .set(values)
            .execute(conn)
            .await?;
    }
    Ok(manifests.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_manifests_are_coherent() {
        let manifests = shipped().unwrap();
        assert_eq!(manifests.len(), SHIPPED.len());
        assert!(manifests.iter().all(|m| !m.tools.is_empty()));
    }

    #[test]
    fn a_bad_manifest_is_refused() {
        let select_without_options = r#"{"name":"x","displayName":"X","description":"d","version":"1",
            "pluginType":"TOOL","config":[{"name":"a","label":"A","type":"SELECT"}]}"#;
        assert!(Manifest::parse(select_without_options).is_err());
        let unknown_type = r#"{"name":"x","displayName":"X","description":"d","version":"1","pluginType":"WIDGET"}"#;
        assert!(Manifest::parse(unknown_type).is_err());
        let bad_default = r#"{"name":"x","displayName":"X","description":"d","version":"1",
            "pluginType":"TOOL","config":[{"name":"a","label":"A","type":"INTEGER","default":"ten"}]}"#;
        assert!(Manifest::parse(bad_default).is_err());
    }
}
