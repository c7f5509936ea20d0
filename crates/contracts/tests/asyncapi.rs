//! `docs/asyncapi.json`, the AsyncAPI 3.0 document of the events, is what
//! `contracts::asyncapi::document` builds from the payload types: a change to a payload is a
//! visible diff there (`UPDATE_GOLDEN=1 cargo nextest run -p contracts` rewrites it). CI
//! validates the file with `@asyncapi/cli` (`.ci/run asyncapi`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::path::PathBuf;

use contracts::events::ALL_TYPES;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/asyncapi.json")
}

#[test]
fn the_committed_document_is_the_one_the_types_give() {
    let json = serde_json::to_string_pretty(&contracts::asyncapi::document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(committed(), &json).unwrap();
    }
    let expected = std::fs::read_to_string(committed()).unwrap();
    assert!(
        json == expected,
        "docs/asyncapi.json differs from the event types; if the change is meant, rerun with UPDATE_GOLDEN=1"
    );
}

#[test]
fn every_event_type_has_a_channel_an_operation_and_a_payload_schema() {
    let document = contracts::asyncapi::document();
    for event_type in ALL_TYPES {
        let channel = &document["channels"][event_type];
        assert_eq!(channel["address"], event_type);
        let message = channel["messages"].as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(
            document["components"]["messages"][&message]["payload"]["properties"]["type"]["const"],
            event_type
        );
        assert!(document["components"]["schemas"][&message].is_object(), "{message} has a schema");
        assert!(document["operations"][format!("send{message}")].is_object());
    }
    for nested in ["Money", "ProductSnapshot", "OrderLine"] {
        assert!(document["components"]["schemas"][nested].is_object(), "{nested} is in the components");
    }
}

#[test]
fn every_golden_event_has_the_fields_its_schema_requires() {
    // The golden events (tests/golden/event_*.json) are what the types serialise to; each
    // carries every property its payload schema lists as required.
    let document = contracts::asyncapi::document();
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(golden).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("event_") {
            continue;
        }
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let channel = &document["channels"][event["type"].as_str().unwrap()];
        let message = channel["messages"].as_object().unwrap().keys().next().unwrap().clone();
        let schema = &document["components"]["schemas"][&message];
        for required in schema["required"].as_array().unwrap() {
            let field = required.as_str().unwrap();
            assert!(event["data"].get(field).is_some(), "{}: data.{field} is required", path.display());
        }
        for field in event["data"].as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "{}: data.{field} is not in the schema",
                path.display()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, ALL_TYPES.len(), "one golden event per type");
}
