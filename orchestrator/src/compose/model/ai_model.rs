//! AI models (top-level `models`), served by a model runner and handed to services as endpoint variables.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::Extensions;

/// A model to pull and serve.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["model"]))]
pub struct ModelConfig {
    /// The model's name in the runner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model reference (an OCI artifact such as `ai/smollm2`).
    pub model: String,
    /// Context window in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<u64>,
    /// Raw flags for the inference engine.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// How a service receives a model: the variables that carry its endpoint and name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ServiceModelConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_var: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_var: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A service's `models`: a mapping of model key → settings or null, or the list of keys.
pub fn service_models_schema(generator: &mut SchemaGenerator) -> Schema {
    let entry = generator.subschema_for::<Option<ServiceModelConfig>>();
    json_schema!({
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": entry,
                "propertyNames": {"pattern": super::NAME_PATTERN},
            },
            {"type": "array", "items": {"type": "string", "pattern": super::NAME_PATTERN}},
        ],
    })
}
