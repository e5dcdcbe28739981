//! Typed wrappers around the three shipped model roles, built on one checked-session loader.

use std::path::{Path, PathBuf};

use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::TensorRef;

use super::manifest::{HeadParams, Manifest, ModelEntry, Preprocessing, TensorSpec};
use super::{InferenceError, environment};

/// A session whose file matched the manifest's sha256 and whose interface matched the manifest's tensors.
struct CheckedSession {
    session: Session,
    file: PathBuf,
    entry: ModelEntry,
    /// The manifest's input shapes, in manifest order (batch dimension set to 1 when run).
    input_shapes: Vec<Vec<i64>>,
}

impl CheckedSession {
    fn open(manifest: &Manifest, role: &str) -> Result<Self, InferenceError> {
        let env = environment()?;
        let (file, bytes) = manifest.read_verified(role)?;
        let entry = manifest.entry(role)?.clone();
        let create = |reason: String| InferenceError::SessionCreate { file: file.clone(), reason };
        let session = Session::builder(env)
            .map_err(|e| create(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| create(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| create(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| create(e.to_string()))?
            .commit_from_memory(&bytes)
            .map_err(|e| create(e.to_string()))?;
        check_interface(&file, "input", &entry.inputs, session.inputs())?;
        check_interface(&file, "output", &entry.outputs, session.outputs())?;
        let input_shapes = entry
            .inputs
            .iter()
            .map(|i| {
                let mut s = i.shape.clone();
                if let Some(b) = s.first_mut() {
                    *b = 1;
                }
                s
            })
            .collect();
        Ok(Self { session, file, entry, input_shapes })
    }

    /// Index of the manifest input with `role`.
    fn input_index(&self, role: &str) -> Result<usize, InferenceError> {
        self.entry
            .inputs
            .iter()
            .position(|i| i.role.as_deref() == Some(role))
            .ok_or_else(|| self.interface_error(format!("the manifest names no input with role `{role}`")))
    }

    fn interface_error(&self, detail: String) -> InferenceError {
        InferenceError::Interface { file: self.file.clone(), detail }
    }

    fn output_spec(&self, role: &str) -> Result<TensorSpec, InferenceError> {
        self.entry
            .output(role)
            .cloned()
            .ok_or_else(|| self.interface_error(format!("the manifest names no output with role `{role}`")))
    }

    fn preprocessing(&self) -> Result<Preprocessing, InferenceError> {
        let pre = self
            .entry
            .preprocessing
            .clone()
            .ok_or_else(|| self.interface_error("the manifest gives no `preprocessing`".into()))?;
        let s = pre.size as i64;
        let expect: [i64; 3] = if pre.nchw() { [3, s, s] } else { [s, s, 3] };
        if self.input_shapes.len() != 1 {
            return Err(self.interface_error(format!(
                "an image model takes exactly one input, the manifest lists {}",
                self.input_shapes.len()
            )));
        }
        let shape = &self.input_shapes[0];
        if shape.len() != 4 || shape[1..] != expect {
            return Err(self.interface_error(format!(
                "input shape {:?} does not fit preprocessing {} {}x{}",
                shape, pre.layout, s, s
            )));
        }
        if !pre.color.eq_ignore_ascii_case("RGB") {
            return Err(self.interface_error(format!("unsupported color order `{}` (RGB only)", pre.color)));
        }
        Ok(pre)
    }

    /// Run on one image tensor (batch 1) and copy each requested output into `outs`.
    fn run(&mut self, input: &[f32], outputs: &[&str], outs: &mut [&mut Vec<f32>]) -> Result<(), InferenceError> {
        let run_err =
            |file: &Path, e: ort::Error| InferenceError::Run { file: file.to_path_buf(), reason: e.to_string() };
        let tensor =
            TensorRef::from_array_view((self.input_shapes[0].as_slice(), input)).map_err(|e| run_err(&self.file, e))?;
        let result = self.session.run(ort::inputs![tensor]).map_err(|e| run_err(&self.file, e))?;
        Self::copy_outputs(&self.file, &result, outputs, outs)
    }

    /// Run with every input of the manifest, in manifest order (batch 1), and copy the requested outputs.
    fn run_inputs(
        &mut self,
        inputs: &[&[f32]],
        outputs: &[&str],
        outs: &mut [&mut Vec<f32>],
    ) -> Result<(), InferenceError> {
        let run_err =
            |file: &Path, e: ort::Error| InferenceError::Run { file: file.to_path_buf(), reason: e.to_string() };
        let mut named = Vec::with_capacity(inputs.len());
        for ((spec, shape), data) in self.entry.inputs.iter().zip(&self.input_shapes).zip(inputs) {
            let t = TensorRef::from_array_view((shape.as_slice(), *data)).map_err(|e| run_err(&self.file, e))?;
            named.push((std::borrow::Cow::Borrowed(spec.name.as_str()), ort::session::SessionInputValue::from(t)));
        }
        let result = self.session.run(named).map_err(|e| run_err(&self.file, e))?;
        Self::copy_outputs(&self.file, &result, outputs, outs)
    }

    fn copy_outputs(
        file: &Path,
        result: &ort::session::SessionOutputs<'_>,
        outputs: &[&str],
        outs: &mut [&mut Vec<f32>],
    ) -> Result<(), InferenceError> {
        let run_err = |e: ort::Error| InferenceError::Run { file: file.to_path_buf(), reason: e.to_string() };
        for (name, out) in outputs.iter().zip(outs.iter_mut()) {
            let value = result.get(*name).ok_or_else(|| InferenceError::Run {
                file: file.to_path_buf(),
                reason: format!("output `{name}` missing from the result"),
            })?;
            let (_, data) = value.try_extract_tensor::<f32>().map_err(run_err)?;
            out.clear();
            out.extend_from_slice(data);
        }
        Ok(())
    }
}

fn check_interface(
    file: &Path,
    kind: &str,
    specs: &[TensorSpec],
    actual: &[ort::value::Outlet],
) -> Result<(), InferenceError> {
    let err = |detail: String| InferenceError::Interface { file: file.to_path_buf(), detail };
    for spec in specs {
        let outlet = actual.iter().find(|o| o.name() == spec.name).ok_or_else(|| {
            let names: Vec<_> = actual.iter().map(|o| o.name()).collect();
            err(format!("the manifest's {kind} `{}` is not in the graph (graph {kind}s: {names:?})", spec.name))
        })?;
        let shape =
            outlet.dtype().tensor_shape().ok_or_else(|| err(format!("{kind} `{}` is not a tensor", spec.name)))?;
        if shape[..] != spec.shape[..] {
            return Err(err(format!(
                "{kind} `{}` has shape {:?}, the manifest says {:?}",
                spec.name,
                &shape[..],
                spec.shape
            )));
        }
        let ty = outlet.dtype().tensor_type();
        if spec.dtype != "float32" || ty != Some(ort::value::TensorElementType::Float32) {
            return Err(err(format!(
                "{kind} `{}` has type {ty:?}; float32 expected (manifest: {})",
                spec.name, spec.dtype
            )));
        }
    }
    if kind == "input" && specs.len() != actual.len() {
        return Err(err(format!("the graph has {} inputs, the manifest lists {}", actual.len(), specs.len())));
    }
    Ok(())
}

/// Last-dimension size of a tensor spec, checked to be static.
fn last_dim(spec: &TensorSpec) -> Option<usize> {
    spec.shape.last().and_then(|&d| usize::try_from(d).ok())
}

/// Raw BlazeFace output: per-anchor logits and 16 regressors, anchors in model order (16x16x2 then 8x8x6).
#[derive(Default, Debug)]
pub struct RawDetections {
    pub scores: Vec<f32>,
    pub boxes: Vec<f32>,
    scores8: Vec<f32>,
    boxes8: Vec<f32>,
}

/// BlazeFace short-range detector (role `face_detector`).
pub struct FaceDetector {
    inner: CheckedSession,
    names: [String; 4],
    pub pre: Preprocessing,
    out: RawDetections,
}

impl FaceDetector {
    pub fn load(manifest: &Manifest) -> Result<Self, InferenceError> {
        let inner = CheckedSession::open(manifest, "face_detector")?;
        let pre = inner.preprocessing()?;
        let want = [("scores_16", 512), ("boxes_16", 512 * 16), ("scores_8", 384), ("boxes_8", 384 * 16)];
        let mut names: [String; 4] = Default::default();
        for (i, (role, numel)) in want.iter().enumerate() {
            let spec = inner.output_spec(role)?;
            let n: i64 = spec.shape.iter().product();
            if n != *numel as i64 {
                return Err(inner.interface_error(format!(
                    "output `{}` ({role}) has {n} values, {numel} expected for the 896-anchor short-range BlazeFace",
                    spec.name
                )));
            }
            names[i] = spec.name;
        }
        Ok(Self { inner, names, pre, out: RawDetections::default() })
    }

    /// Run on a preprocessed `size x size` RGB tensor; returns the 896 logits and 896x16 regressors.
    pub fn run(&mut self, input: &[f32]) -> Result<&RawDetections, InferenceError> {
        let names = [self.names[0].as_str(), self.names[1].as_str(), self.names[2].as_str(), self.names[3].as_str()];
        let o = &mut self.out;
        let mut s16 = std::mem::take(&mut o.scores);
        let mut b16 = std::mem::take(&mut o.boxes);
        self.inner.run(input, &names, &mut [&mut s16, &mut b16, &mut o.scores8, &mut o.boxes8])?;
        s16.extend_from_slice(&o.scores8);
        b16.extend_from_slice(&o.boxes8);
        o.scores = s16;
        o.boxes = b16;
        Ok(&self.out)
    }
}

/// FaceMesh 468-landmark model (role `face_landmarks`).
pub struct FaceLandmarker {
    inner: CheckedSession,
    names: [String; 2],
    pub pre: Preprocessing,
    landmarks: Vec<f32>,
    flag: Vec<f32>,
}

impl FaceLandmarker {
    pub fn load(manifest: &Manifest) -> Result<Self, InferenceError> {
        let inner = CheckedSession::open(manifest, "face_landmarks")?;
        let pre = inner.preprocessing()?;
        let lm = inner.output_spec("landmarks")?;
        let flag = inner.output_spec("face_flag")?;
        if lm.shape.iter().product::<i64>() != 468 * 3 {
            return Err(inner.interface_error(format!("output `{}` must hold 468 x 3 values", lm.name)));
        }
        Ok(Self { names: [lm.name, flag.name], inner, pre, landmarks: Vec::new(), flag: Vec::new() })
    }

    /// Run on a preprocessed crop; returns 468x3 landmarks in crop pixels and the face-presence logit.
    pub fn run(&mut self, input: &[f32]) -> Result<(&[f32], f32), InferenceError> {
        let names = [self.names[0].as_str(), self.names[1].as_str()];
        self.inner.run(input, &names, &mut [&mut self.landmarks, &mut self.flag])?;
        Ok((&self.landmarks, self.flag.first().copied().unwrap_or(f32::NEG_INFINITY)))
    }
}

/// Spatial backbone (role `backbone`): image crop -> embedding.
pub struct Backbone {
    inner: CheckedSession,
    name: String,
    pub pre: Preprocessing,
    pub dim: usize,
    embedding: Vec<f32>,
}

impl Backbone {
    pub fn load(manifest: &Manifest) -> Result<Self, InferenceError> {
        let inner = CheckedSession::open(manifest, "backbone")?;
        let pre = inner.preprocessing()?;
        let spec = inner.output_spec("embedding")?;
        let dim = last_dim(&spec)
            .filter(|&d| d > 0)
            .ok_or_else(|| inner.interface_error(format!("embedding `{}` needs a static last dimension", spec.name)))?;
        Ok(Self { name: spec.name, inner, pre, dim, embedding: Vec::new() })
    }

    /// File the backbone was loaded from.
    pub fn file(&self) -> &Path {
        &self.inner.file
    }

    /// Run on a preprocessed crop; returns the embedding.
    pub fn run(&mut self, input: &[f32]) -> Result<&[f32], InferenceError> {
        self.inner.run(input, &[self.name.as_str()], &mut [&mut self.embedding])?;
        Ok(&self.embedding)
    }
}

/// Temporal head (role `temporal_head`): a window of feature rows and the window's sync vector ->
/// p(fake) and the audio/video offset.
pub struct TemporalHead {
    inner: CheckedSession,
    names: [String; 2],
    frames_ix: usize,
    pub params: HeadParams,
    /// Grid slots per window and values per row.
    pub slots: usize,
    pub row: usize,
    p_fake: Vec<f32>,
    offset: Vec<f32>,
}

/// Output of the temporal head for one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadOutput {
    pub p_fake: f32,
    pub offset_ms: f32,
}

impl TemporalHead {
    pub const ROLE: &'static str = "temporal_head";

    /// Load the head and check it against the feature layout of this build and the backbone's size.
    pub fn load(manifest: &Manifest, backbone_dim: usize, aux: usize, sync_len: usize) -> Result<Self, InferenceError> {
        let inner = CheckedSession::open(manifest, Self::ROLE)?;
        let params = inner
            .entry
            .head
            .clone()
            .ok_or_else(|| inner.interface_error("the manifest entry has no `head` settings".into()))?;
        if params.feature_version != crate::analysis::temporal::FEATURE_VERSION {
            return Err(inner.interface_error(format!(
                "the head was trained on feature set v{}, this build computes v{}: retrain it \
                 (models/training/README.md)",
                params.feature_version,
                crate::analysis::temporal::FEATURE_VERSION
            )));
        }
        let in01 = |x: f32| (0.0..=1.0).contains(&x);
        if !(in01(params.threshold) && in01(params.suspicious) && in01(params.clear))
            || params.suspicious > params.threshold
            || params.clear > params.threshold
        {
            return Err(inner.interface_error(format!(
                "head thresholds must satisfy 0 <= clear, suspicious <= threshold <= 1 (threshold {}, suspicious {}, \
                 clear {})",
                params.threshold, params.suspicious, params.clear
            )));
        }
        if params.grid_ms as i64 * 1000 != crate::analysis::temporal::GRID_US {
            return Err(inner.interface_error(format!("grid of {} ms; this build uses 40 ms", params.grid_ms)));
        }
        let frames_ix = inner.input_index("frames")?;
        let sync_ix = inner.input_index("sync")?;
        if inner.input_shapes.len() != 2 {
            return Err(inner.interface_error("the head takes exactly two inputs, `frames` and `sync`".into()));
        }
        let fs = &inner.input_shapes[frames_ix];
        if fs.len() != 3 || fs[1] <= 0 || fs[2] != (aux + backbone_dim) as i64 {
            return Err(inner.interface_error(format!(
                "input `frames` has shape {fs:?}; [1, slots, {}] expected ({aux} frame features + the backbone's \
                 {backbone_dim}-value embedding): was the head trained with another backbone?",
                aux + backbone_dim
            )));
        }
        if inner.input_shapes[sync_ix] != [1, sync_len as i64] {
            return Err(inner.interface_error(format!(
                "input `sync` has shape {:?}; [1, {sync_len}] expected",
                inner.input_shapes[sync_ix]
            )));
        }
        let p = inner.output_spec("p_fake")?;
        let o = inner.output_spec("offset_ms")?;
        let (slots, row) = (fs[1] as usize, fs[2] as usize);
        Ok(Self {
            names: [p.name, o.name],
            frames_ix,
            inner,
            params,
            slots,
            row,
            p_fake: Vec::new(),
            offset: Vec::new(),
        })
    }

    /// Run on one window: `frames` is `slots x row` values, `sync` the sync vector.
    pub fn run(&mut self, frames: &[f32], sync: &[f32]) -> Result<HeadOutput, InferenceError> {
        let inputs: [&[f32]; 2] = if self.frames_ix == 0 { [frames, sync] } else { [sync, frames] };
        let names = [self.names[0].as_str(), self.names[1].as_str()];
        self.inner.run_inputs(&inputs, &names, &mut [&mut self.p_fake, &mut self.offset])?;
        Ok(HeadOutput {
            p_fake: self.p_fake.first().copied().unwrap_or(f32::NAN),
            offset_ms: self.offset.first().copied().unwrap_or(f32::NAN),
        })
    }
}

/// The full model set of one worker.
pub struct Models {
    pub detector: FaceDetector,
    pub landmarks: FaceLandmarker,
    pub backbone: Backbone,
    /// The temporal head, when the manifest has one (without it there are measurements but no verdicts).
    pub head: Option<TemporalHead>,
}

impl Models {
    /// Load and check every model the manifest lists for the engine.
    pub fn load(manifest: &Manifest) -> Result<Self, InferenceError> {
        use crate::analysis::temporal::{AUX, SYNC_LEN};
        let detector = FaceDetector::load(manifest)?;
        let landmarks = FaceLandmarker::load(manifest)?;
        let backbone = Backbone::load(manifest)?;
        let head = if manifest.models.contains_key(TemporalHead::ROLE) {
            let head = TemporalHead::load(manifest, backbone.dim, AUX, SYNC_LEN)?;
            let bb_sha = &manifest.entry("backbone")?.sha256;
            let reads_embedding = head.params.embedding.as_deref() != Some("none");
            if let Some(trained) =
                head.params.backbone_sha256.as_deref().filter(|s| reads_embedding && !s.eq_ignore_ascii_case(bb_sha))
            {
                log::warn!(
                    "the temporal head was trained on the embeddings of another backbone (sha256 {}…, this one \
                     {}…): its scores may be off; retrain it for this backbone",
                    &trained[..12.min(trained.len())],
                    &bb_sha[..12.min(bb_sha.len())]
                );
            }
            Some(head)
        } else {
            None
        };
        Ok(Self { detector, landmarks, backbone, head })
    }
}
