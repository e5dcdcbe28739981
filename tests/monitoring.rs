//! The operator's files in deploy/ against the bot: every metric the Grafana dashboard and the Prometheus
//! alert rules query is one the bot exports, the dashboard is importable as is, and Prometheus's own
//! `promtool` accepts the scrape config and the rules. (The live check, a real Prometheus scraping the bot
//! in a real call, is part of tests/e2e_janus.rs.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use deepfake_guard::metrics::Metrics;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every metric-like name in a text: the bot's (`deepfake_guard_*`) and the process collector's (`process_*`).
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["deepfake_guard_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    out
}

/// The bot's exported series names, histograms with their `_bucket`, `_sum` and `_count` series.
fn exported() -> BTreeSet<String> {
    let m = Metrics::new();
    let text = m.render();
    let mut out = BTreeSet::new();
    for name in m.names() {
        if text.contains(&format!("# TYPE {name} histogram")) {
            for s in ["_bucket", "_sum", "_count"] {
                out.insert(format!("{name}{s}"));
            }
        }
        out.insert(name);
    }
    out
}

#[test]
fn dashboard_and_rules_query_only_exported_metrics() {
    let exported = exported();
    for file in ["deploy/grafana/deepfake-guard.json", "deploy/prometheus/rules.yml"] {
        let used = names_in(&read(file));
        assert!(used.iter().any(|n| n.starts_with("deepfake_guard_")), "{file} queries no deepfake_guard_ metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} queries metrics the bot does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
}

#[test]
fn the_checker_itself_catches_an_unknown_name() {
    let used = names_in(r#"{"expr": "rate(deepfake_guard_frames_totl[5m]) / deepfake_guard_participants"}"#);
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["deepfake_guard_frames_totl", "deepfake_guard_participants"]);
    assert!(!exported().contains("deepfake_guard_frames_totl"));
}

#[test]
fn dashboard_is_importable_and_shows_what_operators_need() {
    let d: Value = serde_json::from_str(&read("deploy/grafana/deepfake-guard.json")).expect("the dashboard is JSON");
    let inputs = d["__inputs"].as_array().expect("__inputs for Dashboards > Import");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"));
    assert!(d["uid"].is_string() && d["title"].is_string());
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_i64().expect("every panel has an id")), "duplicate panel id {}", p["id"]);
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?");
        assert!(p["description"].as_str().is_some_and(|s| !s.is_empty()), "panel {title} has no description");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no queries"));
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap_or_else(|| panic!("panel {title}: a query without expr")).to_owned());
        }
    }
    let all = exprs.join("\n");
    // What the issue asks the dashboard to show.
    for needle in [
        "up{job=\"deepfake-guard\"}",
        "deepfake_guard_participants",
        "deepfake_guard_participant_states",
        "deepfake_guard_alerts_total",
        "deepfake_guard_stage_duration_seconds_bucket",
        "deepfake_guard_video_frames_dropped_total",
        "deepfake_guard_sfu_reconnects_total",
    ] {
        assert!(all.contains(needle), "no panel queries {needle}");
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool not found: run 'bash scripts/setup.sh' (installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_scrape_config_and_the_rules() {
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    promtool(&["check", "rules", "deploy/prometheus/rules.yml"]);
}

#[test]
fn the_alert_rules_fire_when_they_should_and_not_before() {
    // Made-up series: the guard goes down, leaves the call, falls behind, flags a participant.
    promtool(&["test", "rules", "deploy/prometheus/rules_test.yml"]);
}

#[test]
fn the_alert_rules_name_the_three_conditions() {
    let rules = read("deploy/prometheus/rules.yml");
    for (alert, metric) in [
        ("DeepfakeGuardDown", "up{job=\"deepfake-guard\"}"),
        ("DeepfakeGuardFallingBehind", "deepfake_guard_video_frames_dropped_total"),
        ("DeepfakeAlertRaised", "deepfake_guard_participant_states{state=\"alert\"}"),
    ] {
        let at = rules.find(&format!("alert: {alert}")).unwrap_or_else(|| panic!("no {alert} rule"));
        let next = rules[at + 1..].find("- alert:").map_or(rules.len(), |i| at + 1 + i);
        assert!(rules[at..next].contains(metric), "{alert} does not use {metric}");
    }
}
