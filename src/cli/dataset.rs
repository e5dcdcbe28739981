//! What `scan`, `features` and `eval` share: running a whole file through an [`Analyzer`], reading a labelled
//! clip list (`path,label[,offset_ms[,group]]`), and working through such a list on several threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::analysis::{Analyzer, AnalyzerConfig, Output, Summary};
use crate::inference::{Manifest, Models};
use crate::media::file::{FileSource, MediaEvent, MediaInfo};

/// Decode `video` (with `audio` beside it, if given) through a fresh analyser; every output goes to
/// `on_output` as it appears, and `on_progress` gets each video frame's timestamp. Returns the totals, the
/// decode-error count and the file's info.
pub fn analyse_file(
    video: &Path,
    audio: Option<&Path>,
    cfg: AnalyzerConfig,
    models: &mut Models,
    mut on_output: impl FnMut(Output) -> Result<()>,
    mut on_progress: impl FnMut(i64),
) -> Result<(Summary, u64, MediaInfo)> {
    let mut source = FileSource::open(video, audio)?;
    let info = source.info().clone();
    let cfg = AnalyzerConfig { expect_audio: info.has_audio, ..cfg };
    let mut analyzer = Analyzer::new(cfg, models);
    loop {
        let event = source.next_event().with_context(|| format!("decoding {}", video.display()))?;
        match event {
            None => break,
            Some(MediaEvent::Audio(chunk)) => analyzer.push_audio(chunk, models)?,
            Some(MediaEvent::Video(frame)) => {
                on_progress(frame.pts_us);
                analyzer.push_video(frame, models)?;
            }
        }
        while let Some(output) = analyzer.poll_output() {
            on_output(output)?;
        }
    }
    analyzer.finish(models)?;
    while let Some(output) = analyzer.poll_output() {
        on_output(output)?;
    }
    Ok((analyzer.summary(), source.decode_errors(), info))
}

/// One line of a labelled clip list.
#[derive(Clone, Debug)]
pub struct LabelledClip {
    /// Path as written in the list, and resolved against the list's folder.
    pub name: String,
    pub path: PathBuf,
    /// `true`: the clip is a fake (label 1).
    pub fake: bool,
    /// The true audio/video offset (ms, positive = audio late), where the list gives one.
    pub offset_ms: Option<f32>,
    /// Optional fourth column: a group name for per-group figures (e.g. the kind of fake).
    pub group: Option<String>,
}

/// Read `path,label[,offset_ms[,group]]` lines (no header; `#` comments and blank lines skipped; a header
/// line starting with `path,` is allowed). Labels: `0`/`1`, or `genuine`/`real` and `fake`.
pub fn read_clip_list(list: &Path) -> Result<Vec<LabelledClip>> {
    let text = std::fs::read_to_string(list).with_context(|| format!("reading clip list {}", list.display()))?;
    let dir = list.parent().unwrap_or(Path::new("."));
    let mut clips = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.to_ascii_lowercase().starts_with("path,")) {
            continue;
        }
        let at = || format!("{}:{}", list.display(), i + 1);
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 2 {
            bail!("{}: expected `path,label[,offset_ms[,group]]`, got `{line}`", at());
        }
        let fake = match cols[1].to_ascii_lowercase().as_str() {
            "1" | "fake" => true,
            "0" | "genuine" | "real" => false,
            other => bail!("{}: label `{other}` is not 0/1 (or genuine/fake)", at()),
        };
        let offset_ms = match cols.get(2).filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<f32>().with_context(|| format!("{}: offset_ms `{s}` is not a number", at()))?),
            None => None,
        };
        let group = cols.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string());
        let p = Path::new(cols[0]);
        let path = if p.is_absolute() { p.to_path_buf() } else { dir.join(p) };
        if !path.is_file() {
            bail!("{}: clip {} not found", at(), path.display());
        }
        clips.push(LabelledClip { name: cols[0].to_string(), path, fake, offset_ms, group });
    }
    if clips.is_empty() {
        bail!("{}: no clips listed", list.display());
    }
    Ok(clips)
}

/// Run `work` on every item with `jobs` threads, each with its own models (loaded from `manifest`);
/// results come back in input order. A progress bar shows on a terminal.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    manifest: &Manifest,
    what: &str,
    work: impl Fn(&T, &mut Models) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = ProgressBar::new(items.len() as u64);
        b.set_style(
            ProgressStyle::with_template(&format!("{what} {{pos}}/{{len}} {{wide_bar}} eta {{eta}}"))
                .expect("static template is valid"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..jobs {
            handles.push(scope.spawn(|| -> Result<()> {
                let mut models = Models::load(manifest)?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        return Ok(());
                    }
                    let r = work(&items[i], &mut models);
                    results.lock().expect("no panics while holding the lock")[i] = Some(r);
                    bar.inc(1);
                }
            }));
        }
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a {what} worker panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    results.into_inner().expect("workers are done").into_iter().map(|r| r.expect("every item was run")).collect()
}
