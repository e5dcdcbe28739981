//! Reading messages: the examples parse and re-serialize byte for byte; unknown members are ignored;
//! unknown types and versions are told apart from malformed messages.

mod common;

use common::{invalid_examples, valid_examples};
use deepfake_guard_plugin_api::messages::{Message, ParseError, State, WIRE_VERSION, parse};

#[test]
fn every_valid_example_parses_and_reserializes_byte_for_byte() {
    for ex in valid_examples() {
        let msg = parse(&ex.wire).unwrap_or_else(|e| panic!("{}: {e}", ex.name));
        let again = serde_json::to_string(&msg).unwrap();
        assert_eq!(again, ex.wire, "{} does not round-trip", ex.name);
        assert_eq!(parse(&again).unwrap(), msg, "{}", ex.name);
    }
}

#[test]
fn the_design_example_reads_as_written() {
    let wire = std::fs::read_to_string(common::examples_dir().join("verdict.json")).unwrap();
    let Message::Verdict(v) = parse(wire.trim_end()).unwrap() else { panic!("not a verdict") };
    assert_eq!((v.v, v.seq, v.room.as_str()), (WIRE_VERSION, 17, "1234"));
    assert_eq!((v.participant.id.as_str(), v.participant.display.as_deref()), ("4401", Some("Alice")));
    assert_eq!((v.state, v.score), (State::Alert, Some(0.94)));
    assert_eq!((v.signals.visual, v.signals.lipsync, v.signals.av_offset_ms), (Some(0.41), Some(0.97), Some(260)));
    assert_eq!((v.window.start_ms, v.window.end_ms), (81_200, 84_400));
    assert_eq!(v.sent_at, "2026-11-25T18:02:11.201Z");
    assert_eq!(v.sig.as_deref().map(str::len), Some(88));
}

#[test]
fn unknown_members_are_ignored() {
    let text = r#"{"type":"deepfake-guard.heartbeat","v":1,"seq":5,"room":"7","future":{"a":[1,2]},
        "participants":[{"id":"1","state":"clear","mood":"calm"}],"uptime_s":9,
        "sent_at":"2026-01-01T00:00:00.000Z","sig":"x"}"#;
    let Message::Heartbeat(h) = parse(text).unwrap() else { panic!("not a heartbeat") };
    assert_eq!(h.participants.len(), 1);
    assert_eq!(h.participants[0].state, State::Clear);
    assert!(!serde_json::to_string(&h).unwrap().contains("future"), "unknown members are not kept");
}

#[test]
fn optional_members_may_be_null_or_absent() {
    let with_nulls = r#"{"type":"deepfake-guard.verdict","v":1,"seq":1,"room":"7",
        "participant":{"id":"1","display":null},"state":"no-audio","score":null,
        "signals":{"visual":null,"lipsync":null,"av_offset_ms":null},"window":{"start_ms":0,"end_ms":1},
        "sent_at":"2026-01-01T00:00:00.000Z","sig":null}"#;
    let absent = r#"{"type":"deepfake-guard.verdict","v":1,"seq":1,"room":"7","participant":{"id":"1"},
        "state":"no-audio","signals":{},"window":{"start_ms":0,"end_ms":1},"sent_at":"2026-01-01T00:00:00.000Z"}"#;
    let a = parse(with_nulls).unwrap();
    assert_eq!(a, parse(absent).unwrap());
    // Writers omit what is unknown.
    assert_eq!(serde_json::to_string(&a).unwrap(), absent.replace(char::is_whitespace, ""));
}

#[test]
fn unknown_type_is_reported_as_unknown_type() {
    let err = parse(r#"{"type":"deepfake-guard.goodbye","v":1,"seq":9}"#).unwrap_err();
    assert!(matches!(&err, ParseError::UnknownType(t) if t == "deepfake-guard.goodbye"), "{err:?}");
}

#[test]
fn other_wire_version_is_reported_as_unsupported() {
    let wrong_v = invalid_examples().into_iter().find(|ex| ex.name == "hello-wrong-v.json").unwrap();
    let err = parse(&wrong_v.wire).unwrap_err();
    assert!(matches!(err, ParseError::UnsupportedVersion(2)), "{err:?}");
    // Also through plain serde, so no reader path accepts it.
    assert!(serde_json::from_str::<Message>(&wrong_v.wire).is_err());
}

#[test]
fn bad_state_or_missing_member_is_a_json_error() {
    for name in ["verdict-bad-state.json", "verdict-missing-window.json"] {
        let ex = invalid_examples().into_iter().find(|ex| ex.name == name).unwrap();
        let err = parse(&ex.wire).unwrap_err();
        assert!(matches!(err, ParseError::Json(_)), "{name}: {err:?}");
    }
    assert!(matches!(parse("not json").unwrap_err(), ParseError::Json(_)));
    assert!(matches!(parse(r#"{"v":1}"#).unwrap_err(), ParseError::Json(_)));
}

#[test]
fn an_unsigned_message_parses_as_a_payload() {
    // The schema rejects it on the wire; the reader's parse of a verified payload needs it.
    let ex = invalid_examples().into_iter().find(|ex| ex.name == "verdict-missing-sig.json").unwrap();
    assert_eq!(parse(&ex.wire).unwrap().sig(), None);
}

#[test]
fn states_are_the_kebab_case_strings() {
    let all = [
        (State::Clear, "clear"),
        (State::Suspicious, "suspicious"),
        (State::Alert, "alert"),
        (State::NoFace, "no-face"),
        (State::NoAudio, "no-audio"),
    ];
    for (state, text) in all {
        assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<State>(&format!("\"{text}\"")).unwrap(), state);
        assert_eq!(state.to_string(), text);
    }
    assert!(serde_json::from_str::<State>("\"NoFace\"").is_err());
}

#[test]
fn from_str_is_parse() {
    let ex = &valid_examples()[0];
    assert_eq!(ex.wire.parse::<Message>().unwrap(), parse(&ex.wire).unwrap());
}

#[test]
fn not_judged_reasons_evidence_and_judged_windows_are_read_and_unknown_reasons_are_other() {
    use deepfake_guard_plugin_api::messages::{Message, NotJudged, State, parse};
    let v = r#"{"type":"deepfake-guard.verdict","v":1,"seq":3,"room":"1","participant":{"id":"7"},
        "state":"no-face","signals":{},"not_judged":"camera-off","window":{"start_ms":0,"end_ms":0},
        "sent_at":"2026-01-01T00:00:00.000Z"}"#;
    let Message::Verdict(v) = parse(v).unwrap() else { panic!("not a verdict") };
    assert_eq!((v.state, v.not_judged), (State::NoFace, Some(NotJudged::CameraOff)));
    // a reason a newer guard adds is read as `other`, not refused
    let newer = r#"{"type":"deepfake-guard.verdict","v":1,"seq":4,"room":"1","participant":{"id":"7"},
        "state":"no-face","signals":{"evidence":["temporal","lipsync"],"lipsync_confidence":0.8},
        "not_judged":"tab-in-background","window":{"start_ms":0,"end_ms":0},"sent_at":"2026-01-01T00:00:00.000Z"}"#;
    let Message::Verdict(v) = parse(newer).unwrap() else { panic!("not a verdict") };
    assert_eq!(v.not_judged, Some(NotJudged::Other));
    assert_eq!(v.signals.evidence, ["temporal", "lipsync"]);
    assert_eq!(v.signals.lipsync_confidence, Some(0.8));
    // an older guard's verdict, without the new members, still reads
    let older = r#"{"type":"deepfake-guard.verdict","v":1,"seq":5,"room":"1","participant":{"id":"7"},
        "state":"clear","signals":{},"window":{"start_ms":0,"end_ms":1},"sent_at":"2026-01-01T00:00:00.000Z"}"#;
    let Message::Verdict(v) = parse(older).unwrap() else { panic!("not a verdict") };
    assert!(v.not_judged.is_none() && v.signals.evidence.is_empty());
}
