//! End to end, as users run it: the real Janus (Debian), the guard (`deepfake-guard join`, this build), and
//! headless Chromium pages running the demo page (web/) on Janus's own janus.js, in a private network
//! namespace (scripts/e2e/run.sh). "alice" publishes a genuine generated clip, "mallory" a lip-sync fake
//! (audio 400 ms late) and forges guard messages, "bob" only watches; mallory leaves and "carol" joins.
//! Everything is asserted from bob's page, through the plugin-api JS module (signatures verified).
//!
//! One VP8 room with a Janus restart mid-call, then one H.264 room. Needs root (network namespace) and what
//! scripts/setup.sh installs (janus, chromium, playwright-core).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn run_call(codec: &str, restart: bool) -> (Value, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = root.join("target").join("e2e").join(format!("{codec}{}", if restart { "-restart" } else { "" }));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/e2e/run.sh"))
        .arg("test")
        .current_dir(root)
        .env("BOT", env!("CARGO_BIN_EXE_deepfake-guard"))
        .env("VCODEC", codec)
        .env("WORK", &work)
        .env("RESTART", if restart { "1" } else { "0" })
        .output()
        .expect("run scripts/e2e/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {codec} run (restart: {restart}), exit {:?}\n{stdout}\n{stderr}", out.status.code());
    if let Ok(bot) = std::fs::read_to_string(work.join("bot.log")) {
        let lines: Vec<&str> = bot.lines().filter(|l| !l.contains(" rtc") && !l.contains(" webrtc")).collect();
        println!("--- bot log (last 40 lines)\n{}", lines[lines.len().saturating_sub(40)..].join("\n"));
    }
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("result.json"))
            .unwrap_or_else(|e| panic!("{codec}: no result.json in {} ({e}); exit {:?}", work.display(), out.status)),
    )
    .expect("result.json is JSON");
    assert_eq!(out.status.code(), Some(0), "{codec}: the end-to-end checks failed (see above)");
    (result, work)
}

fn ids_of(result: &Value, name: &str) -> Vec<String> {
    result["bob"]["feeds"].as_object().unwrap().iter().filter(|(_, n)| *n == name).map(|(id, _)| id.clone()).collect()
}

/// Every state the guard gave `name`, from bob's verified verdicts and heartbeats.
fn states_of(result: &Value, name: &str) -> Vec<String> {
    let ids = ids_of(result, name);
    let mut out = Vec::new();
    for v in result["bob"]["verified"].as_array().unwrap() {
        let m = &v["message"];
        if m["participant"]["id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id)) {
            out.push(m["state"].as_str().unwrap_or("").to_owned());
        }
        for p in m["participants"].as_array().into_iter().flatten() {
            if p["id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id)) {
                out.push(p["state"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    out
}

fn check_call(result: &Value, work: &Path, codec: &str) {
    assert_eq!(result["bot_running"], true, "{codec}: the guard was not running");
    let verified = result["bob"]["verified"].as_array().unwrap();
    assert!(
        verified.iter().any(|v| v["message"]["type"] == "deepfake-guard.heartbeat"),
        "{codec}: bob verified no heartbeat from the guard"
    );
    let mallory = states_of(result, "mallory");
    assert!(mallory.iter().any(|s| s == "alert"), "{codec}: no verified alert for mallory: {mallory:?}");
    let alice = states_of(result, "alice");
    assert!(!alice.is_empty(), "{codec}: the guard never judged alice");
    assert!(!alice.iter().any(|s| s == "alert"), "{codec}: alice (genuine) was in alert: {alice:?}");
    let carol = states_of(result, "carol");
    assert!(!carol.is_empty(), "{codec}: the guard did not follow carol, who joined after mallory left");
    assert!(!carol.iter().any(|s| s == "alert"), "{codec}: carol (genuine) was in alert: {carol:?}");
    // Forgeries by a publishing participant: rejected, never shown.
    let mallory_ids = ids_of(result, "mallory");
    let rejected =
        result["bob"]["rejected"].as_array().unwrap().iter().filter(|r| mallory_ids.iter().any(|i| r["label"] == *i.as_str())).count();
    assert!(rejected > 0, "{codec}: no forged message from mallory was rejected (did she send any?)");
    assert!(
        !verified.iter().any(|v| mallory_ids.iter().any(|i| v["label"] == *i.as_str())),
        "{codec}: a message mallory sent was accepted as the guard's"
    );
    for shot in ["bob.png", "bob-mallory.png"] {
        let len = std::fs::metadata(work.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{codec}: screenshot {shot} missing or empty");
    }
    let latency = &result["summary"]["mallory_alert_after_first_frame_ms"];
    println!("{codec}: mallory's first frame -> signed alert on bob's page: {latency} ms");
}

#[test]
fn guard_in_a_real_janus_call_vp8_with_restart_then_h264() {
    let (r, work) = run_call("vp8", true);
    check_call(&r, &work, "vp8");
    assert!(r["events"]["janus_restarted"].as_u64().is_some(), "vp8: Janus was not restarted");
    let (r, work) = run_call("h264", false);
    check_call(&r, &work, "h264");
}
