//! What recording a metric costs on the per-frame path, and what a scrape costs.
//!
//! Per video frame the analysis worker adds to a few per-participant atomics, observes the decode time and the
//! stage times (one histogram observation per stage that ran), and, once per window, counts the window and
//! observes its latency. `cargo bench --bench metrics`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use deepfake_guard::analysis::{Stage, StageTimes};
use deepfake_guard::guard::worker::ParticipantStats;
use deepfake_guard::metrics::Metrics;
use deepfake_guard_plugin_api::messages::State;

fn bench(c: &mut Criterion) {
    let m = Metrics::new();
    let stats = Arc::new(ParticipantStats::default());
    let mut g = c.benchmark_group("metrics");
    g.bench_function("participant counter add (per frame)", |b| {
        b.iter(|| black_box(&stats).frames_analysed.fetch_add(1, Relaxed))
    });
    g.bench_function("counter inc", |b| b.iter(|| black_box(&m).keyframe_requests.inc()));
    g.bench_function("histogram observe (decode time)", |b| {
        b.iter(|| black_box(&m).decode_time(black_box(Duration::from_micros(900))))
    });
    // A typical frame: landmarks and backbone ran (detection every 10th frame, the head once per window).
    let mut t = StageTimes::default();
    for s in [Stage::Landmarks, Stage::Backbone] {
        t.runs[s as usize] = 1;
        t.nanos[s as usize] = 4_000_000;
    }
    g.bench_function("stage times of one frame (2 stages)", |b| b.iter(|| black_box(&m).stage_times(black_box(&t))));
    g.bench_function("window counted by state", |b| b.iter(|| black_box(&m).window(black_box(Some(State::Clear)))));
    g.finish();

    let mut g = c.benchmark_group("scrape");
    g.sample_size(20);
    g.bench_function("render /metrics", |b| b.iter(|| black_box(m.render().len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
