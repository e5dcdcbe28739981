//! The JSON Schema accepts every valid example and rejects every invalid one, for its stated reason.

mod common;

use common::{error_paths, invalid_examples, valid_examples, validator, validator_for_kind};
use serde_json::json;

#[test]
fn schema_is_a_valid_draft_2020_12_schema() {
    let schema = common::schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["$id"], deepfake_guard_plugin_api::messages::SCHEMA_ID);
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("v1.schema.json breaks the draft 2020-12 meta-schema: {e}");
    }
}

#[test]
fn every_valid_example_validates() {
    let validator = validator();
    for ex in valid_examples() {
        let paths = error_paths(&validator, &ex.json());
        assert!(paths.is_empty(), "{} should be valid, breaks the schema at {paths:?}", ex.name);
    }
}

#[test]
fn there_is_a_valid_example_of_every_kind() {
    let types: Vec<String> = valid_examples().iter().map(|ex| ex.json()["type"].as_str().unwrap().to_owned()).collect();
    for kind in ["deepfake-guard.hello", "deepfake-guard.verdict", "deepfake-guard.heartbeat"] {
        assert!(types.iter().any(|t| t == kind), "no valid example of {kind}");
    }
}

/// Each invalid example, the kind it pretends to be, and where the schema must find it wrong.
const INVALID: &[(&str, &str, &str)] = &[
    ("hello-wrong-v.json", "hello", "/v"),
    ("heartbeat-score-out-of-range.json", "heartbeat", "/participants/1/score"),
    ("verdict-bad-state.json", "verdict", "/state"),
    ("verdict-missing-sig.json", "verdict", ""),
    ("verdict-missing-window.json", "verdict", ""),
    ("verdict-sent-at-not-utc-millis.json", "verdict", "/sent_at"),
];

#[test]
fn every_invalid_example_fails_for_its_stated_reason() {
    let whole = validator();
    for ex in invalid_examples() {
        let Some(&(_, kind, path)) = INVALID.iter().find(|(name, ..)| *name == ex.name) else {
            panic!("{}: add it to INVALID with the reason it must fail", ex.name);
        };
        let instance = ex.json();
        assert!(!whole.is_valid(&instance), "{} passes the schema", ex.name);
        let paths = error_paths(&validator_for_kind(kind), &instance);
        assert_eq!(paths, [path], "{}: wrong place(s) found wrong", ex.name);
    }
}

#[test]
fn unknown_members_and_null_optionals_are_allowed() {
    let verdict = json!({
        "type": "deepfake-guard.verdict", "v": 1, "seq": 3, "room": "1234",
        "participant": {"id": "4401", "display": null, "avatar": "x.png"},
        "state": "suspicious", "score": null,
        "signals": {"visual": null, "lipsync": 0.5, "av_offset_ms": -40, "voice_clone": 0.2},
        "window": {"start_ms": 0, "end_ms": 3200},
        "sent_at": "2026-11-25T18:02:11.201Z", "sig": common::DUMMY_SIG,
        "model": "lstm-v3"
    });
    let paths = error_paths(&validator(), &verdict);
    assert!(paths.is_empty(), "breaks the schema at {paths:?}");
}

#[test]
fn unknown_message_type_is_not_v1() {
    let other = json!({"type": "deepfake-guard.goodbye", "v": 1, "seq": 9, "sig": common::DUMMY_SIG});
    assert!(!validator().is_valid(&other));
}
