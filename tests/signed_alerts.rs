//! The guard's signatures: Rust signs, the web client's JavaScript module verifies.
//!
//! - With the RFC 8032 test key, signing each example message of plugin-api reproduces its wire text byte
//!   for byte (Ed25519 is deterministic), so the Rust signer and the documented contract agree.
//! - A key made on first run signs a verdict that `plugin-api/js/deepfake-guard.mjs` accepts with that
//!   key's public half, and rejects when the same verdict is signed by another key.

mod common;

use deepfake_guard::alerts::Signer;
use deepfake_guard_plugin_api::messages::parse;

const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = u8::from_str_radix(&RFC8032_SEED[2 * i..2 * i + 2], 16).unwrap();
    }
    s
}

#[test]
fn signing_the_examples_reproduces_their_wire_text() {
    let signer = Signer::from_seed(&seed());
    assert_eq!(signer.public_key_b64(), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    assert_eq!(signer.key_id(), "21fe31dfa154a261");
    let dir = common::root().join("plugin-api/schema/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let wire = std::fs::read_to_string(&path).unwrap();
        let wire = wire.strip_suffix('\n').unwrap_or(&wire);
        let msg = parse(wire).unwrap();
        assert_eq!(signer.sign(&msg), wire, "{}", path.display());
        n += 1;
    }
    assert!(n >= 4);
}

#[test]
fn the_js_module_accepts_our_signature_and_rejects_another_key() {
    let dir = common::tempdir();
    let (signer, created) = Signer::load_or_create(&dir.path().join("guard.key")).unwrap();
    assert!(created);
    let (other, _) = Signer::load_or_create(&dir.path().join("other.key")).unwrap();
    let example = std::fs::read_to_string(common::root().join("plugin-api/schema/examples/verdict.json")).unwrap();
    let msg = parse(example.trim_end()).unwrap();
    let ours = signer.sign(&msg);
    let theirs = other.sign(&msg);
    let module = common::root().join("plugin-api/js/deepfake-guard.mjs");
    let script = format!(
        "import {{ GuardVerifier }} from {module:?};\n\
         const g = await GuardVerifier.fromPublicKey(process.argv[1]);\n\
         const a = await g.accept(process.argv[2]);\n\
         const b = await g.accept(process.argv[3]);\n\
         console.log(JSON.stringify([a.ok, a.ok && a.message.state, b.ok, b.reason]));",
        module = module.to_str().unwrap()
    );
    let out = std::process::Command::new("node")
        .args(["--input-type=module", "-e", &script, signer.public_key_b64(), &ours, &theirs])
        .output()
        .expect("node runs (scripts/setup.sh installs nodejs)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"[true,"alert",false,"bad-signature"]"#);
}
