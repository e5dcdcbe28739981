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
    // The runner must have run every test in the file, not skipped any: the count follows the file, so
    // adding a test there does not break this one, and a test that stops running does.
    let source = std::fs::read_to_string(&js).expect("read js/test.mjs");
    let tests = source.lines().filter(|l| l.trim_start().starts_with("test(")).count();
    assert!(tests > 0, "no test(...) calls found in {}", js.display());
    assert!(stdout.contains(&format!("# pass {tests}\n")), "expected {tests} passing tests:\n{stdout}");
    assert!(stdout.contains("# fail 0\n") && stdout.contains("# skipped 0\n"), "{stdout}");
}
