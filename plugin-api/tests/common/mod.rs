//! Shared helpers: the schema, validators, and the example files under `schema/examples/`.
#![allow(dead_code)] // each test file uses a different part of this module

use std::fs;
use std::path::{Path, PathBuf};

use deepfake_guard_plugin_api::messages::SCHEMA_JSON;
use jsonschema::Validator;
use serde_json::Value;

/// A well-formed stand-in for an Ed25519 signature (88 characters of padded base64).
pub const DUMMY_SIG: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/// One example file: its name and its wire text (the file without its final newline).
pub struct Example {
    pub name: String,
    pub wire: String,
}

impl Example {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.wire).unwrap_or_else(|e| panic!("{}: not JSON: {e}", self.name))
    }
}

pub fn schema() -> Value {
    serde_json::from_str(SCHEMA_JSON).expect("v1.schema.json is JSON")
}

/// The whole v1 schema, with `format` checked too (as a strict reader would).
pub fn validator() -> Validator {
    build(&schema())
}

/// The v1 schema narrowed to one kind (`hello`, `verdict`, `heartbeat`): the root `oneOf` replaced by
/// a `$ref` to that kind, so errors point at the offending member instead of "none of the kinds".
pub fn validator_for_kind(kind: &str) -> Validator {
    let mut schema = schema();
    let root = schema.as_object_mut().expect("the schema is an object");
    root.remove("oneOf").expect("the schema has a root oneOf");
    root.insert("$ref".into(), Value::String(format!("#/$defs/{kind}")));
    build(&schema)
}

fn build(schema: &Value) -> Validator {
    jsonschema::draft202012::options().should_validate_formats(true).build(schema).expect("v1.schema.json compiles")
}

/// The JSON pointers of every place where `instance` breaks the schema, sorted and deduplicated.
pub fn error_paths(validator: &Validator, instance: &Value) -> Vec<String> {
    let mut paths: Vec<String> =
        validator.iter_errors(instance).map(|e| e.instance_path().as_str().to_owned()).collect();
    paths.sort();
    paths.dedup();
    paths
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/examples")
}

/// The examples that must be valid: `schema/examples/*.json`.
pub fn valid_examples() -> Vec<Example> {
    read_examples(&examples_dir())
}

/// The examples that must be rejected: `schema/examples/invalid/*.json`.
pub fn invalid_examples() -> Vec<Example> {
    read_examples(&examples_dir().join("invalid"))
}

fn read_examples(dir: &Path) -> Vec<Example> {
    let mut out: Vec<Example> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let wire = text.strip_suffix('\n').unwrap_or(&text).to_owned();
            Example { name: p.file_name().unwrap().to_string_lossy().into_owned(), wire }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no examples in {}", dir.display());
    out
}
