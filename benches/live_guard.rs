//! What the live guard costs per participant: CPU and memory of its media path with 1, 2 and 4 participants.
//!
//! Each participant is fed, in real time, the encoded frames a WebRTC track carries (VP8 frames at 25 fps
//! and 20 ms Opus packets, demuxed from a generated 640x360 clip and looped) through the guard's own
//! workers: the same queues, decoders (`media::live`) and analysis (`Analyzer`, default live config) as
//! `deepfake-guard join`. Measured: the process's CPU time over the run (user + system, from /proc) per
//! participant as a share of one core, its resident memory with the models loaded and no participant
//! (baseline) and at the end of each run, and whether the workers kept up (frames analysed / skipped).
//! Not included: SRTP, the WebRTC stack and the Janus signalling (small next to decoding and analysis).
//!
//! Run with `cargo bench --bench live_guard` (or `bash scripts/bench.sh --live`); `LIVE_BENCH_SECONDS`
//! (default 20) sets the length of each run. Writes target/bench-live.json.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deepfake_guard::guard::worker::{Media, Workers};
use deepfake_guard::guard::{GuardConfig, worker_config};
use deepfake_guard::inference::Manifest;
use deepfake_guard::media::live::Codec;
use ffmpeg_next as ff;

use common::Clip;

/// One encoded unit of the clip: video frame or Opus packet, with its time in the clip.
struct Unit {
    video: bool,
    t_us: i64,
    data: Bytes,
}

fn demux(path: &std::path::Path) -> (Vec<Unit>, i64) {
    ff::init().unwrap();
    let mut ictx = ff::format::input(path).expect("open the bench clip");
    let v = ictx.streams().best(ff::media::Type::Video).expect("video stream").index();
    let a = ictx.streams().best(ff::media::Type::Audio).expect("audio stream").index();
    let tb = |i: usize, ictx: &ff::format::context::Input| ictx.stream(i).unwrap().time_base();
    let (vtb, atb) = (tb(v, &ictx), tb(a, &ictx));
    let mut units = Vec::new();
    for (s, p) in ictx.packets() {
        let (video, t) = match s.index() {
            i if i == v => (true, vtb),
            i if i == a => (false, atb),
            _ => continue,
        };
        let pts = p.pts().or(p.dts()).unwrap_or(0);
        let t_us = pts * 1_000_000 * t.numerator() as i64 / t.denominator() as i64;
        units.push(Unit { video, t_us, data: Bytes::copy_from_slice(p.data().unwrap_or(&[])) });
    }
    units.sort_by_key(|u| u.t_us);
    // Opus in WebM starts before 0 (its pre-skip): start the clock at the first unit.
    let t0 = units.first().map_or(0, |u| u.t_us);
    for u in &mut units {
        u.t_us -= t0;
    }
    let len = units.last().map_or(0, |u| u.t_us) + 40_000;
    (units, len)
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name; clock ticks of 1/100 s
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let seconds: f64 = std::env::var("LIVE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let clip = Clip { width: 640, height: 360, ext: "webm" };
    let (units, clip_len_us) = demux(&clip.path());
    let cfg = GuardConfig::default();
    let threads = cfg.analysis_threads();
    let manifest = Manifest::load(&Manifest::default_path()).expect("models/manifest.json");
    // Each count runs in a fresh process (this bench, called again with LIVE_BENCH_N), so that memory freed
    // by one run does not hide the next one's.
    let only: Option<usize> = std::env::var("LIVE_BENCH_N").ok().and_then(|s| s.parse().ok());
    if only.is_none() {
        println!("live guard bench: {} clip looped, {seconds} s per run, {threads} analysis threads", clip.label());
        println!(
            "participants | CPU per participant (% of one core) | RSS MB (baseline -> end) | per participant MB | analysed / skipped / dropped frames"
        );
        let mut rows = Vec::new();
        for n in [1usize, 2, 4] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env("LIVE_BENCH_N", n.to_string())
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run the bench for one count");
            let text = String::from_utf8_lossy(&out.stdout);
            let row: serde_json::Value = text
                .lines()
                .find_map(|l| l.strip_prefix("ROW ").and_then(|j| serde_json::from_str(j).ok()))
                .unwrap_or_else(|| panic!("the run with {n} participants failed: {text}"));
            let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{n:12} | {:35.1} | {:8.0} -> {:5.0}     | {:18.1} | {} / {} / {} ({} windows)",
                f("cpu_per_participant_pct"),
                f("rss_baseline_mb"),
                f("rss_end_mb"),
                f("rss_per_participant_mb"),
                row["frames_analysed"],
                row["frames_skipped"],
                row["frames_dropped"],
                row["windows"]
            );
            rows.push(row);
        }
        let out = common::repo().join("target/bench-live.json");
        let doc = serde_json::json!({"clip": clip.label(), "threads": threads, "seconds": seconds, "runs": rows});
        std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        println!("written {}", out.display());
        return;
    }
    if let Some(n) = only {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let workers =
            Workers::start(threads, &manifest, worker_config(&cfg), deepfake_guard::metrics::Metrics::new(), tx)
                .expect("start the workers");
        std::thread::sleep(Duration::from_millis(300));
        let base_rss = rss_mb();
        let parts: Vec<_> = (0..n as u64).map(|i| workers.add(i + 1)).collect();
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut loop_i = 0i64;
        'outer: loop {
            for u in &units {
                let t = loop_i * clip_len_us + u.t_us;
                if t as f64 / 1e6 >= seconds {
                    break 'outer;
                }
                let due = t0 + Duration::from_micros(t as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for (k, p) in parts.iter().enumerate() {
                    // Participants start out of step, as real ones do.
                    let arrival_us = t + k as i64 * 7_000;
                    let (codec, rate) = if u.video { (Codec::Vp8, 90) } else { (Codec::Opus, 48) };
                    p.push(Media {
                        codec,
                        data: u.data.clone(),
                        rtp_ts: (t * rate / 1000) as u32,
                        seq: 0,
                        arrival_us,
                        after_loss: false,
                    });
                }
            }
            loop_i += 1;
        }
        // Let the queues drain (bounded), then read the counters.
        let drain_until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < drain_until
            && parts.iter().any(|p| {
                p.stats.frames_decoded.load(Relaxed) + p.stats.dropped_queue_full.load(Relaxed) + 2
                    < p.stats.video_in.load(Relaxed)
            })
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let end_rss = rss_mb();
        let (mut analysed, mut skipped, mut dropped, mut windows) = (0, 0, 0, 0);
        for p in &parts {
            analysed += p.stats.frames_analysed.load(Relaxed);
            skipped += p.stats.skipped_behind.load(Relaxed);
            dropped += p.stats.dropped_queue_full.load(Relaxed);
            windows += p.stats.windows.load(Relaxed);
        }
        while rx.try_recv().is_ok() {}
        let per_cpu = 100.0 * cpu / wall / n as f64;
        let per_mb = (end_rss - base_rss) / n as f64;
        let row = serde_json::json!({
            "participants": n, "cpu_per_participant_pct": per_cpu, "rss_baseline_mb": base_rss, "rss_end_mb": end_rss,
            "rss_per_participant_mb": per_mb, "frames_analysed": analysed, "frames_skipped": skipped,
            "frames_dropped": dropped, "windows": windows, "seconds": wall,
        });
        println!("ROW {row}");
        drop(parts);
        drop(workers);
    }
}
