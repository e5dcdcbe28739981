//! End to end, as users run it: the real Janus (Debian), the guard (`deepfake-guard join`, this build), and
//! headless Chromium pages running the demo page (web/) on Janus's own janus.js, in a private network
//! namespace (scripts/e2e/run.sh). "alice" publishes a genuine generated clip, "mallory" a lip-sync fake
//! (audio 400 ms late) and forges guard messages, "bob" only watches; mallory leaves and "carol" joins.
//! Everything is asserted from bob's page, through the plugin-api JS module (signatures verified), and
//! from a real Prometheus that scrapes the bot every 100 ms through the call (deploy/prometheus's scrape
//! job and alert rules): the detector's checks pass under that load, and the series say what happened.
//!
//! One VP8 room with a Janus restart mid-call, one H.264 room, and one VP8 room with every publisher at
//! 15 fps, which starts with two participants the guard cannot judge: "dave" with the camera off (audio only)
//! and "erin" sending VP9; each must show its not-judged state on bob's page and in the guard's `/metrics`
//! within 10 s of publishing, never an alert, and the gauges go back to 0 when they leave, before alice joins. Each call is run once: an alert on a genuine
//! participant fails the test. Needs root (network namespace) and what scripts/setup.sh installs (janus,
//! chromium, playwright-core).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The participants the guard cannot judge (scripts/e2e/driver.js NOT_JUDGED=1), with the reason it must give.
const UNJUDGED: [(&str, &str); 2] = [("dave", "camera-off"), ("erin", "unsupported-codec")];
/// How soon after publishing their not-judged state must show (the acceptance line).
const NOT_JUDGED_WITHIN_MS: u64 = 10_000;

fn run_call(codec: &str, restart: bool, fps: u32, not_judged: bool) -> (Value, PathBuf, Option<i32>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let name = format!(
        "{codec}{}{}{}",
        if restart { "-restart" } else { "" },
        if fps == 25 { String::new() } else { format!("-{fps}fps") },
        if not_judged { "-notjudged" } else { "" }
    );
    let work = root.join("target").join("e2e").join(name);
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
        .env("PROMETHEUS", "1")
        .env("NOT_JUDGED", if not_judged { "1" } else { "0" })
        .env("CLIP_FPS", fps.to_string())
        // clips of each frame rate in their own cache (clips.sh remakes a clip whose parameters changed)
        .env(
            "CLIPS",
            root.join(".cache").join(if fps == 25 { "e2e-clips".to_owned() } else { format!("e2e-clips-{fps}fps") }),
        )
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

/// Every (state, not-judged reason) the guard gave `name`, from bob's verified verdicts (the reason beside the
/// participant) and heartbeats (inside each entry).
fn judgements_of(result: &Value, name: &str) -> Vec<(String, Option<String>)> {
    let ids = ids_of(result, name);
    let about = |p: &Value| p["id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id));
    let pair = |m: &Value| (m["state"].as_str().unwrap_or("").to_owned(), m["not_judged"].as_str().map(str::to_owned));
    let mut out = Vec::new();
    for v in result["bob"]["verified"].as_array().unwrap() {
        let m = &v["message"];
        if about(&m["participant"]) {
            out.push(pair(m));
        }
        out.extend(m["participants"].as_array().into_iter().flatten().filter(|p| about(p)).map(pair));
    }
    out
}

/// The call's checks; Err names the first that failed. An alert on a genuine participant fails the call like
/// any other check: it is the product's worst failure, and no second call hides it.
fn check_call(result: &Value, work: &Path, codec: &str, exit: Option<i32>, not_judged: bool) -> Result<(), String> {
    let other = |m: String| Err(m);
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
    let rejected = result["bob"]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| mallory_ids.iter().any(|i| r["label"] == *i.as_str()))
        .count();
    if rejected == 0 {
        return other(format!("{codec}: no forged message from mallory was rejected (did she send any?)"));
    }
    if verified.iter().any(|v| mallory_ids.iter().any(|i| v["label"] == *i.as_str())) {
        return other(format!("{codec}: a message mallory sent was accepted as the guard's"));
    }
    let shots: &[&str] =
        if not_judged { &["bob.png", "bob-mallory.png", "bob-notjudged.png"] } else { &["bob.png", "bob-mallory.png"] };
    for shot in shots {
        let len = std::fs::metadata(work.join(shot)).map(|m| m.len()).unwrap_or(0);
        if len <= 10_000 {
            return other(format!("{codec}: screenshot {shot} missing or empty"));
        }
    }
    let latency = &result["summary"]["mallory_alert_after_first_frame_ms"];
    println!("{codec}: mallory's first frame -> signed alert on bob's page: {latency} ms");
    if alice.iter().any(|s| s == "alert") || carol.iter().any(|s| s == "alert") {
        return Err(format!("{codec}: a genuine participant was in alert: alice {alice:?}, carol {carol:?}"));
    }
    if not_judged {
        check_not_judged(result, codec)?;
    }
    if exit != Some(0) {
        return other(format!("{codec}: the harness's own checks failed (exit {exit:?}, see above)"));
    }
    check_prometheus(work, codec, restart_of(result), not_judged)
}

/// dave (camera off) and erin (VP9): from bob's page, a verified `no-face` with the reason, its badge showing
/// it within 10 s of publishing, the guard's `/metrics` counting the reason by then, never an alert, and the
/// gauge back to 0 once they left.
fn check_not_judged(result: &Value, codec: &str) -> Result<(), String> {
    let records =
        result["not_judged"].as_array().ok_or_else(|| format!("{codec}: no not_judged records in result.json"))?;
    // The genuine publishers send VP8 video throughout: never "camera off" nor "unsupported codec" (so the gauges
    // counted dave and erin).
    for name in ["alice", "carol"] {
        let wrong: Vec<_> = judgements_of(result, name)
            .into_iter()
            .filter_map(|(_, r)| r.filter(|r| r == "camera-off" || r == "unsupported-codec"))
            .collect();
        if !wrong.is_empty() {
            return Err(format!("{codec}: {name} sends VP8 video but was reported not judged: {wrong:?}"));
        }
    }
    for (name, reason) in UNJUDGED {
        let r = records
            .iter()
            .find(|r| r["name"] == name)
            .ok_or_else(|| format!("{codec}: {name} ({reason}) did not take part: {records:?}"))?;
        let states = states_of(result, name);
        if states.iter().any(|s| s == "alert") {
            return Err(format!("{codec}: {name}, whom the guard cannot judge ({reason}), got an alert: {states:?}"));
        }
        // A verified verdict or heartbeat entry about them that says no-face and why.
        if !judgements_of(result, name).iter().any(|(s, r)| s == "no-face" && r.as_deref() == Some(reason)) {
            return Err(format!("{codec}: bob verified no no-face/{reason} message about {name}: states {states:?}"));
        }
        let page = r["page_ms"].as_u64();
        let metrics = r["metrics_ms"].as_u64();
        println!(
            "{codec}: {name} ({reason}): published -> bob's page shows {} after {} ms (verified after {} ms), /metrics not_judged{{reason=\"{reason}\"}} >= 1 after {} ms",
            r["badge"],
            page.map_or("never".into(), |v| v.to_string()),
            r["verified_ms"],
            metrics.map_or("never".into(), |v| v.to_string())
        );
        if !page.is_some_and(|ms| ms <= NOT_JUDGED_WITHIN_MS) {
            return Err(format!("{codec}: bob's page did not show {name} not judged ({reason}) within 10 s: {r}"));
        }
        if !metrics.is_some_and(|ms| ms <= NOT_JUDGED_WITHIN_MS) {
            return Err(format!("{codec}: the guard's /metrics did not count {name} as {reason} within 10 s: {r}"));
        }
        if r["cleared_ms"].as_u64().is_none() {
            return Err(format!("{codec}: /metrics still counted {reason} 5 s after {name} left: {r}"));
        }
    }
    Ok(())
}

fn restart_of(result: &Value) -> bool {
    result["events"]["janus_restarted"].as_u64().is_some()
}

/// What the real Prometheus, scraping the bot every 100 ms through the call with the shipped scrape job and
/// rules, saw (scripts/e2e/run.sh PROMETHEUS=1 writes its answers to prometheus.json).
fn check_prometheus(work: &Path, codec: &str, restarted: bool, not_judged: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(work.join("prometheus.json"))
        .map_err(|e| format!("{codec}: no prometheus.json ({e}): Prometheus did not run or could not be queried"))?;
    let answers: Value = serde_json::from_str(&text).map_err(|e| format!("{codec}: prometheus.json: {e}"))?;
    let series = |expr: &str| -> Result<Vec<(Value, f64)>, String> {
        let a = &answers[expr];
        let list = a.as_array().ok_or_else(|| format!("{codec}: Prometheus could not answer {expr}: {a}"))?;
        Ok(list.iter().map(|s| (s["metric"].clone(), s["value"].as_f64().unwrap_or(f64::NAN))).collect())
    };
    let value = |expr: &str| -> Result<f64, String> {
        match series(expr)?.as_slice() {
            [(_, v)] => Ok(*v),
            other => Err(format!("{codec}: {expr}: one series expected, got {other:?}")),
        }
    };
    let expect = |what: &str, expr: &str, ok: &dyn Fn(f64) -> bool| -> Result<f64, String> {
        let v = value(expr)?;
        if ok(v) { Ok(v) } else { Err(format!("{codec}: Prometheus: {what}: {expr} = {v}")) }
    };
    let scrapes = expect("scrapes every 100 ms", "count_over_time(up{job=\"deepfake-guard\"}[10m])", &|v| v >= 200.0)?;
    // Scrapes every 100 ms with a 90 ms timeout, on 2 cores shared with three Chromium encoders and Janus: now and
    // then one answer comes late (1 of 396 in one call). Down is a second without an answer (the shipped rule
    // waits a minute), or more than 1 % of the scrapes missed.
    expect(
        "the target answered in every second",
        "min_over_time(max_over_time(up{job=\"deepfake-guard\"}[1s])[10m:100ms])",
        &|v| v == 1.0,
    )?;
    expect(
        "the target answered at least 99 % of the scrapes",
        "avg_over_time(up{job=\"deepfake-guard\"}[10m])",
        &|v| v >= 0.99,
    )?;
    expect("the bot is up at the end", "up{job=\"deepfake-guard\"}", &|v| v == 1.0)?;
    expect(
        "two publishers watched at most (dave + erin, alice + mallory, then alice + carol)",
        "max_over_time(deepfake_guard_participants[10m])",
        &|v| v == 2.0,
    )?;
    if not_judged {
        for reason in ["camera-off", "unsupported-codec"] {
            expect(
                &format!("a participant not judged for {reason}"),
                &format!("max_over_time(deepfake_guard_participants_not_judged{{reason=\"{reason}\"}}[10m])"),
                &|v| v >= 1.0,
            )?;
        }
        expect(
            "participants in no-face",
            "max_over_time(deepfake_guard_participant_states{state=\"no-face\"}[10m])",
            &|v| v >= 2.0,
        )?;
    }
    expect("mallory was in alert", "max_over_time(deepfake_guard_participant_states{state=\"alert\"}[10m])", &|v| {
        v >= 1.0
    })?;
    let logged: f64 = std::fs::read_to_string(work.join("bot-alert-verdicts.txt"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("{codec}: no bot-alert-verdicts.txt"))?;
    expect("alert verdicts counted as the bot sent them", "deepfake_guard_verdicts_total{state=\"alert\"}", &|v| {
        v == logged && v >= 1.0
    })?;
    expect("alerts raised = alert verdicts", "deepfake_guard_alerts_total", &|v| v == logged)?;
    expect(
        "the rule DeepfakeAlertRaised fired",
        "max_over_time(ALERTS{alertname=\"DeepfakeAlertRaised\",alertstate=\"firing\"}[10m])",
        &|v| v == 1.0,
    )?;
    expect("in the room at the end", "deepfake_guard_sfu_joined", &|v| v == 1.0)?;
    expect("frames analysed", "deepfake_guard_video_frames_analysed_total", &|v| v > 100.0)?;
    if restarted {
        expect("the Janus restart was seen", "deepfake_guard_sfu_reconnects_total", &|v| v >= 1.0)?;
        expect("out of the room while Janus was down", "min_over_time(deepfake_guard_sfu_joined[10m])", &|v| v == 0.0)?;
    } else {
        expect("no reconnects without a restart", "deepfake_guard_sfu_reconnects_total", &|v| v == 0.0)?;
    }
    let sent = series("deepfake_guard_datachannel_messages_sent_total")?;
    for kind in ["hello", "verdict", "heartbeat"] {
        if !sent.iter().any(|(m, v)| m["type"] == kind && *v >= 1.0) {
            return Err(format!("{codec}: Prometheus: no {kind} sent on the data channel: {sent:?}"));
        }
    }
    let stages: Vec<String> =
        series("histogram_quantile(0.5, sum by (le, stage) (deepfake_guard_stage_duration_seconds_bucket))")?
            .iter()
            .map(|(m, v)| format!("{} {:.2} ms", m["stage"].as_str().unwrap_or("?"), v * 1000.0))
            .collect();
    let verdict_p95 = value("histogram_quantile(0.95, sum by (le) (deepfake_guard_frame_to_verdict_seconds_bucket))")?;
    let rss = value("max_over_time(process_resident_memory_bytes{job=\"deepfake-guard\"}[10m])")?;
    let dropped: Vec<String> = series("sum by (reason) (deepfake_guard_video_frames_dropped_total)")?
        .iter()
        .map(|(m, v)| format!("{} {v}", m["reason"].as_str().unwrap_or("?")))
        .collect();
    println!(
        "{codec}: Prometheus: {scrapes} scrapes; {logged} alert verdict(s); frames dropped: {}; stage medians: {}; frame -> verdict p95 {:.0} ms; peak RSS {:.0} MB",
        dropped.join(", "),
        stages.join(", "),
        verdict_p95 * 1000.0,
        rss / 1e6
    );
    Ok(())
}

/// One call, checked: it fails on the first check that does not hold, an alert on a genuine participant
/// included.
fn call(codec: &str, restart: bool, fps: u32, not_judged: bool) -> Value {
    let (r, work, exit) = run_call(codec, restart, fps, not_judged);
    if let Err(m) = check_call(&r, &work, codec, exit, not_judged) {
        panic!("{m}");
    }
    r
}

#[test]
fn guard_in_a_real_janus_call_vp8_with_restart_then_h264_then_15_fps() {
    let r = call("vp8", true, 25, false);
    assert!(r["events"]["janus_restarted"].as_u64().is_some(), "vp8: Janus was not restarted");
    call("h264", false, 25, false);
    // Every publisher at 15 fps, as slow webcams and live face-swap tools send: mallory is still alerted, alice
    // and carol never. Before them dave (camera off) and erin (VP9) come and go, shown not judged within 10 s.
    call("vp8", false, 15, true);
}
