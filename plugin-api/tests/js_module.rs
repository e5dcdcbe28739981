//! The JavaScript module web clients import (`js/deepfake-guard.mjs`) verifies the guard's signed messages
//! with WebCrypto and rejects unsigned, tampered, forged and replayed ones: its own tests (`js/test.mjs`,
//! run with Node's test runner against `schema/examples/`) are part of the test command.

use std::path::Path;
use std::process::Command;

#[test]
fn the_js_module_verifies_signed_messages_and_rejects_forgeries() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js/test.mjs");
    let out = Command::new("node").arg("--test").arg(&js).output().unwrap_or_else(|e| {
        panic!("`node` did not run ({e}): install Node.js (Debian: apt-get install nodejs; scripts/setup.sh does)")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test {} failed:\n{stdout}\n{}",
        js.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The runner must have run the tests, not skipped them.
    assert!(stdout.contains("# pass 5"), "{stdout}");
}
