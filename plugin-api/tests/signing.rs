//! The signing contract: the signed bytes are the message without `sig`; the wire text is those bytes
//! with `,"sig":"…"}` in place of the final `}`; a reader gets the exact bytes back, or nothing.

mod common;

use common::{DUMMY_SIG, valid_examples};
use deepfake_guard_plugin_api::messages::{attach_signature, parse, signing_payload, split_signed};

#[test]
fn every_example_splits_into_the_payload_the_guard_signed() {
    for ex in valid_examples() {
        let (payload, sig) = split_signed(&ex.wire).unwrap_or_else(|| panic!("{}: no sig member", ex.name));
        let msg = parse(&ex.wire).unwrap();
        assert_eq!(payload, signing_payload(&msg), "{}", ex.name);
        assert_eq!(Some(sig.as_str()), msg.sig(), "{}", ex.name);
        assert_eq!(attach_signature(&payload, &sig), ex.wire, "{}", ex.name);
        let unsigned = parse(&payload).unwrap();
        assert_eq!(unsigned.sig(), None, "{}: the payload has no sig", ex.name);
        assert_eq!(signing_payload(&unsigned), payload, "{}: signing_payload ignores sig", ex.name);
    }
}

#[test]
fn the_wire_text_is_what_serde_writes_for_the_signed_message() {
    for ex in valid_examples() {
        let mut msg = parse(&ex.wire).unwrap();
        let payload = signing_payload(&msg);
        msg.set_sig(Some(DUMMY_SIG.to_owned()));
        assert_eq!(attach_signature(&payload, DUMMY_SIG), serde_json::to_string(&msg).unwrap(), "{}", ex.name);
    }
}

#[test]
fn attach_then_split_gives_back_any_object_payload_exactly() {
    let payloads = [
        r#"{}"#,
        r#"{"a":1}"#,
        r#"{"room":"x,\"sig\":\"AAAA\"}"}"#,
        r#"{"display":"Zoë 🙂 \u0000 \\","sig":"AAAA","x":[1,{"sig":"B"}]}"#,
        "{\n  \"pretty\": true\n}",
    ];
    for payload in payloads {
        let wire = attach_signature(payload, DUMMY_SIG);
        assert_eq!(split_signed(&wire), Some((payload.to_owned(), DUMMY_SIG.to_owned())), "{payload}");
    }
}

#[test]
fn split_rejects_anything_but_a_final_well_formed_sig_member() {
    let good = valid_examples().into_iter().find(|ex| ex.name == "verdict.json").unwrap().wire;
    assert!(split_signed(&good).is_some());
    let sig_at = good.rfind(",\"sig\":\"").unwrap();
    let body = &good[..sig_at];
    let sig = &good[sig_at + 8..good.len() - 2];
    let tampered = [
        ("trailing newline", format!("{good}\n")),
        ("trailing space", format!("{good} ")),
        ("leading space", format!(" {good}")),
        ("no closing brace", good[..good.len() - 1].to_owned()),
        ("text after the object", format!("{good}{{}}")),
        ("space before sig", format!(r#"{body}, "sig":"{sig}"}}"#)),
        ("space after colon", format!(r#"{body},"sig": "{sig}"}}"#)),
        ("space before brace", format!(r#"{body},"sig":"{sig}" }}"#)),
        ("sig not last", format!(r#"{body},"sig":"{sig}","x":1}}"#)),
        ("other member name", format!(r#"{body},"sign":"{sig}"}}"#)),
        ("escaped member name", format!(r#"{body},"\u0073ig":"{sig}"}}"#)),
        ("sig too short", format!(r#"{body},"sig":"{}"}}"#, &sig[4..])),
        ("sig too long", format!(r#"{body},"sig":"AAAA{sig}"}}"#)),
        ("sig unpadded", format!(r#"{body},"sig":"{}AA"}}"#, &sig[..86])),
        ("sig urlsafe alphabet", format!(r#"{body},"sig":"{}-_=="}}"#, &sig[..84])),
        ("sig with escape", format!(r#"{body},"sig":"{}\/=="}}"#, &sig[..85])),
        ("sig as number", format!(r#"{body},"sig":1}}"#)),
        ("not an object", format!(r#"[{body},"sig":"{sig}"}}"#)),
        ("no sig at all", format!("{body}}}")),
        ("empty", String::new()),
    ];
    for (what, wire) in tampered {
        assert_eq!(split_signed(&wire), None, "accepted: {what}");
    }
}

#[test]
fn signing_payload_is_the_wire_text_minus_the_sig_member() {
    let ex = valid_examples().into_iter().find(|ex| ex.name == "hello.json").unwrap();
    let payload = signing_payload(&parse(&ex.wire).unwrap());
    assert!(!payload.contains("\"sig\""));
    assert!(ex.wire.starts_with(&payload[..payload.len() - 1]));
}

#[test]
#[should_panic(expected = "padded standard base64")]
fn attach_refuses_a_malformed_signature() {
    attach_signature(r#"{"a":1}"#, "not base64\"}");
}

#[test]
#[should_panic(expected = "JSON object text")]
fn attach_refuses_a_payload_that_is_not_an_object() {
    attach_signature(r#"["a"]"#, DUMMY_SIG);
}
