//! What the Rust types write is valid against the schema, and differs from a wire message only by `sig`.

mod common;

use common::{DUMMY_SIG, error_paths, validator};
use deepfake_guard_plugin_api::messages::{
    Heartbeat, Hello, Message, Participant, ParticipantStatus, SCHEMA_ID, Signals, State, Verdict, Window,
    format_sent_at,
};

fn signed(mut msg: Message) -> Message {
    msg.set_sig(Some(DUMMY_SIG.to_owned()));
    msg
}

fn built_in_code() -> Vec<Message> {
    let at = "2026-11-25T18:02:11.201Z";
    let mut hello = Hello::new(
        0,
        "1234",
        Participant::new("9001").with_display("deepfake-guard"),
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        at,
    );
    hello.key_id = Some("21fe31dfa154a261".into());
    let bare_hello =
        Hello::new(0, "1234", Participant::new("9001"), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", at);

    let mut full = Verdict::new(
        17,
        "1234",
        Participant::new("4401").with_display("Alice"),
        State::Alert,
        Some(0.94),
        Window::new(81_200, 84_400),
        at,
    );
    full.signals = Signals::default();
    full.signals.visual = Some(0.41);
    full.signals.lipsync = Some(0.97);
    full.signals.av_offset_ms = Some(-260);
    let no_face =
        Verdict::new(18, "1234", Participant::new("4402"), State::NoFace, None, Window::new(0, 0), format_sent_at(0));

    let mut alice = ParticipantStatus::new("4401", State::Suspicious);
    alice.display = Some("Alice \u{1F600} \"A\"".into());
    alice.score = Some(0.0);
    alice.since_ms = Some(12);
    let everyone = [State::Clear, State::Suspicious, State::Alert, State::NoFace, State::NoAudio]
        .into_iter()
        .enumerate()
        .map(|(i, s)| ParticipantStatus::new(i.to_string(), s))
        .chain([alice])
        .collect();
    let heartbeat = Heartbeat::new(19, "1234", everyone, 86, format_sent_at(1_795_629_732_000));
    let empty = Heartbeat::new(20, "room with spaces", Vec::new(), 0, at);

    [hello.into(), bare_hello.into(), full.into(), no_face.into(), heartbeat.into(), empty.into()]
        .into_iter()
        .map(signed)
        .collect()
}

#[test]
fn messages_built_in_code_validate() {
    let validator = validator();
    for msg in built_in_code() {
        let json = serde_json::to_value(&msg).unwrap();
        let paths = error_paths(&validator, &json);
        assert!(paths.is_empty(), "{json} breaks the schema at {paths:?}");
    }
}

#[test]
fn unsigned_messages_fail_the_schema_only_for_the_missing_sig() {
    let validator = common::validator_for_kind("verdict");
    let unsigned =
        Verdict::new(1, "1", Participant::new("1"), State::Clear, Some(0.1), Window::new(0, 1), format_sent_at(1));
    let json = serde_json::to_value(Message::from(unsigned)).unwrap();
    assert_eq!(error_paths(&validator, &json), [""]);
}

#[test]
fn constructors_fill_the_fixed_members() {
    let hello = Hello::new(0, "1", Participant::new("1"), "k", "t");
    assert_eq!((hello.v, hello.schema.as_str()), (1, SCHEMA_ID));
    let msg = Message::from(hello);
    assert_eq!(
        (msg.type_name(), msg.seq(), msg.room(), msg.sent_at(), msg.sig()),
        ("deepfake-guard.hello", 0, "1", "t", None)
    );
}

#[test]
fn sent_at_is_rfc3339_utc_millis() {
    assert_eq!(format_sent_at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_sent_at(1_795_629_731_201), "2026-11-25T18:02:11.201Z");
    assert_eq!(format_sent_at(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(format_sent_at(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(format_sent_at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    assert_eq!(format_sent_at(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
}
