//! The v1 data-channel wire format: what the guard tells every client in the call.
//!
//! The guard sends one JSON object per data-channel text message, tagged by its `"type"` member:
//!
//! | `type` | struct | when |
//! |---|---|---|
//! | `deepfake-guard.hello` | [`Hello`] | once when the guard joins a room: who it is, its public key |
//! | `deepfake-guard.verdict` | [`Verdict`] | when a participant's [`State`] changes, and while it is not clear |
//! | `deepfake-guard.heartbeat` | [`Heartbeat`] | periodically: the state of every watched participant |
//!
//! The JSON Schema of the same messages is [`SCHEMA_JSON`] (`plugin-api/schema/v1.schema.json`);
//! a signed message this module writes is valid against it, given in-range values (scores in `[0, 1]`,
//! `sent_at` from [`format_sent_at`]).
//!
//! # Reading
//!
//! [`parse`] (or `str::parse::<Message>()`) reads a message. Members this version does not know are
//! ignored, so a newer guard that adds members still talks to older readers. A message whose `type` is
//! unknown gives [`ParseError::UnknownType`], one of another wire version [`ParseError::UnsupportedVersion`]:
//! a reader skips both. Optional members may be absent or `null`; writers omit them.
//!
//! # Signing contract
//!
//! Any participant can publish on the data channel, so every message is signed with the guard's Ed25519
//! key (the public half is in [`Hello::public_key`]). No crypto lives here, only the bytes:
//!
//! 1. The **payload** is the message serialized as compact JSON *without* its `sig` member:
//!    [`signing_payload`]. The signature is Ed25519 over the payload's exact UTF-8 bytes.
//! 2. The **wire text** is the payload with its final `}` replaced by `,"sig":"<base64>"}`, where
//!    `<base64>` is the 64-byte signature in standard base64 with padding (always 88 characters, the last
//!    two `==`): [`attach_signature`]. This is byte for byte what `serde_json` writes for the message with
//!    `sig` set, since `sig` is always the last member.
//! 3. A reader recovers the payload from the wire text *without re-serializing anything*:
//!    [`split_signed`] accepts exactly the texts that match the regular expression
//!    ```text
//!    ^(\{[\s\S]*),"sig":"([A-Za-z0-9+/]{86}==)"\}$
//!    ```
//!    and returns `payload = group 1 + "}"`, `sig = group 2`. A text with anything after the closing `}`
//!    (whitespace included), or whose last member is not a well-formed `sig`, is rejected.
//! 4. The reader verifies the signature over the payload's UTF-8 bytes (in a browser: `TextEncoder`,
//!    then WebCrypto `verify("Ed25519", ...)`), and then **parses the payload, not the wire text**, so that
//!    what it acts on is exactly what was signed.
//!
//! ```
//! use deepfake_guard_plugin_api::messages::{
//!     attach_signature, parse, signing_payload, split_signed, Message, Participant, State, Verdict,
//!     Window,
//! };
//!
//! let mut verdict = Verdict::new(
//!     17,
//!     "1234",
//!     Participant::new("4401").with_display("Alice"),
//!     State::Alert,
//!     Some(0.94),
//!     Window::new(81_200, 84_400),
//!     "2026-11-25T18:02:11.201Z",
//! );
//! verdict.signals.lipsync = Some(0.97);
//! let msg = Message::from(verdict);
//!
//! // The guard: sign the payload (Ed25519 lives in the bot, not here) and send the wire text.
//! let payload = signing_payload(&msg);
//! let sig = "A".repeat(86) + "=="; // stands in for base64(ed25519_sign(payload.as_bytes()))
//! let wire = attach_signature(&payload, &sig);
//! assert!(wire.ends_with(r#","sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}"#));
//!
//! // A client: split, verify `sig` over `signed.as_bytes()`, then parse what was signed.
//! let (signed, sig_b64) = split_signed(&wire).expect("a well-formed sig member");
//! assert_eq!((signed.as_str(), sig_b64.as_str()), (payload.as_str(), sig.as_str()));
//! assert_eq!(parse(&signed).unwrap(), msg);
//! ```
//!
//! # Versioning
//!
//! Every message carries `"v": 1` ([`WIRE_VERSION`]). Within v1 the format only grows: new optional
//! members, new message types, new members of [`Signals`]. Anything a v1 reader could misread (a removed or
//! retyped member, a changed meaning, a new [`State`]) is a new wire version, and a major version of this
//! crate.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

/// The wire version this module reads and writes: the `v` member of every message.
pub const WIRE_VERSION: u32 = 1;

/// The `$id` of the v1 JSON Schema, and the value the guard puts in [`Hello::schema`].
pub const SCHEMA_ID: &str = "urn:deepfake-guard:wire:v1";

/// The v1 JSON Schema (draft 2020-12) of all messages, as shipped in `plugin-api/schema/v1.schema.json`.
pub const SCHEMA_JSON: &str = include_str!("../schema/v1.schema.json");

/// The `type` of a [`Hello`].
pub const TYPE_HELLO: &str = "deepfake-guard.hello";
/// The `type` of a [`Verdict`].
pub const TYPE_VERDICT: &str = "deepfake-guard.verdict";
/// The `type` of a [`Heartbeat`].
pub const TYPE_HEARTBEAT: &str = "deepfake-guard.heartbeat";

/// Length of the `sig` member's value: an Ed25519 signature (64 bytes) in padded standard base64.
pub const SIG_B64_LEN: usize = 88;

/// One data-channel message, tagged on the wire by its `"type"` member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Message {
    /// `deepfake-guard.hello`: the guard's identity and public key, sent when it joins.
    #[serde(rename = "deepfake-guard.hello")]
    Hello(Hello),
    /// `deepfake-guard.verdict`: one participant's state.
    #[serde(rename = "deepfake-guard.verdict")]
    Verdict(Verdict),
    /// `deepfake-guard.heartbeat`: the guard is alive, and the state of everyone it watches.
    #[serde(rename = "deepfake-guard.heartbeat")]
    Heartbeat(Heartbeat),
}

/// `deepfake-guard.hello`: sent once when the guard joins a room (and again when it rejoins).
///
/// The hello is self-signed: its signature only proves that the sender holds the key in `public_key`.
/// Whether to trust that key is the client's decision: a key (or `key_id`) pinned in its configuration,
/// or the sender id that the media server itself attaches to data-channel messages matching `bot.id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hello {
    /// Wire version, always [`WIRE_VERSION`]; parsing rejects any other.
    #[serde(deserialize_with = "only_v1")]
    pub v: u32,
    /// Sequence number, strictly increasing over all messages the guard sends in one session.
    pub seq: u64,
    /// The media server's room id.
    pub room: String,
    /// The guard's own participant id and display name in the room.
    pub bot: Participant,
    /// The raw 32-byte Ed25519 public key, standard base64 with padding (44 characters).
    pub public_key: String,
    /// A short label of the key for display and pinning; by convention the first 8 bytes of the
    /// SHA-256 of the raw public key, as 16 lowercase hex digits. Informative only: verify against
    /// `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Which schema the guard speaks: [`SCHEMA_ID`].
    pub schema: String,
    /// Wall-clock send time, RFC 3339 UTC with milliseconds (`2026-11-25T18:02:11.201Z`); see
    /// [`format_sent_at`].
    pub sent_at: String,
    /// The signature; `None` in a payload (see the module docs), `Some` on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// `deepfake-guard.verdict`: the guard's judgement of one participant over one window of media.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// Wire version, always [`WIRE_VERSION`]; parsing rejects any other.
    #[serde(deserialize_with = "only_v1")]
    pub v: u32,
    /// Sequence number, strictly increasing over all messages the guard sends in one session.
    pub seq: u64,
    /// The media server's room id.
    pub room: String,
    /// Who the verdict is about.
    pub participant: Participant,
    /// The participant's state after this window.
    pub state: State,
    /// Probability in `[0, 1]` that the participant's face or voice is manipulated; absent when the
    /// guard has none (no face, no audio, not enough media yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The separate signals behind the score; each absent when unknown.
    pub signals: Signals,
    /// Why the participant is not judged now (added within v1; with `state` `no-face`, which a reader that
    /// does not know this member already shows as "no judgement"). Absent while the guard judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<NotJudged>,
    /// The span of the participant's media the verdict covers.
    pub window: Window,
    /// Wall-clock send time, RFC 3339 UTC with milliseconds; see [`format_sent_at`].
    pub sent_at: String,
    /// The signature; `None` in a payload (see the module docs), `Some` on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// `deepfake-guard.heartbeat`: sent periodically while the guard is in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Wire version, always [`WIRE_VERSION`]; parsing rejects any other.
    #[serde(deserialize_with = "only_v1")]
    pub v: u32,
    /// Sequence number, strictly increasing over all messages the guard sends in one session.
    pub seq: u64,
    /// The media server's room id.
    pub room: String,
    /// Every participant the guard watches, with its current state.
    pub participants: Vec<ParticipantStatus>,
    /// Seconds since the guard process started.
    pub uptime_s: u64,
    /// Wall-clock send time, RFC 3339 UTC with milliseconds; see [`format_sent_at`].
    pub sent_at: String,
    /// The signature; `None` in a payload (see the module docs), `Some` on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// A participant of the room, as the media server names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Participant {
    /// The media server's id of the participant (Janus: the publisher id, as a string).
    pub id: String,
    /// The display name the participant joined with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// One entry of [`Heartbeat::participants`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParticipantStatus {
    /// The media server's id of the participant.
    pub id: String,
    /// The display name the participant joined with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The participant's current state.
    pub state: State,
    /// The latest score in `[0, 1]`, if any (as [`Verdict::score`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// When the current state began, in milliseconds on the participant's media clock (the clock of
    /// [`Window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// The window that last judged the participant (added within v1): a heartbeat repeats a state, it never
    /// makes an old judgement current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Milliseconds of the guard's wall time between judging that window and sending this heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// Why the participant is not judged now, as [`Verdict::not_judged`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<NotJudged>,
}

/// Why the guard cannot judge a participant now (kebab-case on the wire). Sent with state `no-face`. A reader
/// maps reasons it does not know to [`NotJudged::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NotJudged {
    /// `"too-few-frames"`: frames are missing from the video (a stalled or very slow sender).
    #[serde(rename = "too-few-frames")]
    TooFewFrames,
    /// `"over-capacity"`: the guard cannot analyse this participant's video in real time (too many
    /// participants for the machine).
    #[serde(rename = "over-capacity")]
    OverCapacity,
    /// `"camera-off"`: the participant sends no video (audio only, or the camera is off).
    #[serde(rename = "camera-off")]
    CameraOff,
    /// `"unsupported-codec"`: the participant's video is in a codec the guard does not decode.
    #[serde(rename = "unsupported-codec")]
    UnsupportedCodec,
    /// `"other"`, or a reason this version does not know.
    #[serde(rename = "other", other)]
    Other,
}

impl NotJudged {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            NotJudged::TooFewFrames => "too-few-frames",
            NotJudged::OverCapacity => "over-capacity",
            NotJudged::CameraOff => "camera-off",
            NotJudged::UnsupportedCodec => "unsupported-codec",
            NotJudged::Other => "other",
        }
    }
}

impl fmt::Display for NotJudged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the guard currently thinks of a participant. Serialized as the kebab-case strings below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum State {
    /// `"clear"`: face and voice look real.
    #[serde(rename = "clear")]
    Clear,
    /// `"suspicious"`: signs of manipulation, not yet enough for an alert.
    #[serde(rename = "suspicious")]
    Suspicious,
    /// `"alert"`: the face or voice is very likely not real.
    #[serde(rename = "alert")]
    Alert,
    /// `"no-face"`: no face found in the video, so no judgement.
    #[serde(rename = "no-face")]
    NoFace,
    /// `"no-audio"`: no audio to check the lips against.
    #[serde(rename = "no-audio")]
    NoAudio,
}

/// The signals a verdict's score is fused from; each `None` (absent on the wire) when unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Signals {
    /// Probability in `[0, 1]` that the face's appearance is manipulated (spatial + temporal network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual: Option<f64>,
    /// Probability in `[0, 1]` that the lips do not match the audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lipsync: Option<f64>,
    /// Estimated offset of the audio against the lip motion, in milliseconds; positive when the audio
    /// comes after the lips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub av_offset_ms: Option<i64>,
    /// The lip-sync estimator's confidence in `av_offset_ms`, in `[0, 1]` (added within v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lipsync_confidence: Option<f64>,
    /// Which detectors agree on the state (added within v1): `temporal` (the learned head's score reached
    /// its threshold), `lipsync` (the classical estimator measured audio and lips apart beyond what capture
    /// paths give). An `alert` names at least two; empty for `clear`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// A span of a participant's media: milliseconds on that participant's media clock, counted from the
/// first media the guard received from them; `start_ms <= end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Start of the span.
    pub start_ms: u64,
    /// End of the span.
    pub end_ms: u64,
}

impl Hello {
    /// A hello for [`SCHEMA_ID`] with no `key_id` and no signature.
    pub fn new(
        seq: u64,
        room: impl Into<String>,
        bot: Participant,
        public_key: impl Into<String>,
        sent_at: impl Into<String>,
    ) -> Self {
        Hello {
            v: WIRE_VERSION,
            seq,
            room: room.into(),
            bot,
            public_key: public_key.into(),
            key_id: None,
            schema: SCHEMA_ID.to_owned(),
            sent_at: sent_at.into(),
            sig: None,
        }
    }
}

impl Verdict {
    /// A verdict with empty [`Signals`] and no signature; set `signals` members afterwards.
    pub fn new(
        seq: u64,
        room: impl Into<String>,
        participant: Participant,
        state: State,
        score: Option<f64>,
        window: Window,
        sent_at: impl Into<String>,
    ) -> Self {
        Verdict {
            v: WIRE_VERSION,
            seq,
            room: room.into(),
            participant,
            state,
            score,
            signals: Signals::default(),
            not_judged: None,
            window,
            sent_at: sent_at.into(),
            sig: None,
        }
    }
}

impl Heartbeat {
    /// A heartbeat with no signature.
    pub fn new(
        seq: u64,
        room: impl Into<String>,
        participants: Vec<ParticipantStatus>,
        uptime_s: u64,
        sent_at: impl Into<String>,
    ) -> Self {
        Heartbeat {
            v: WIRE_VERSION,
            seq,
            room: room.into(),
            participants,
            uptime_s,
            sent_at: sent_at.into(),
            sig: None,
        }
    }
}

impl Participant {
    /// A participant with no display name.
    pub fn new(id: impl Into<String>) -> Self {
        Participant { id: id.into(), display: None }
    }

    /// The same participant with a display name.
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }
}

impl ParticipantStatus {
    /// A status with no display name, score or `since_ms`; set those members afterwards.
    pub fn new(id: impl Into<String>, state: State) -> Self {
        ParticipantStatus {
            id: id.into(),
            display: None,
            state,
            score: None,
            since_ms: None,
            window: None,
            age_ms: None,
            not_judged: None,
        }
    }
}

impl Window {
    /// The span from `start_ms` to `end_ms`.
    pub fn new(start_ms: u64, end_ms: u64) -> Self {
        Window { start_ms, end_ms }
    }
}

impl State {
    /// The wire string: `clear`, `suspicious`, `alert`, `no-face` or `no-audio`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Clear => "clear",
            State::Suspicious => "suspicious",
            State::Alert => "alert",
            State::NoFace => "no-face",
            State::NoAudio => "no-audio",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// The wire `type`, e.g. `deepfake-guard.verdict`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello(_) => TYPE_HELLO,
            Message::Verdict(_) => TYPE_VERDICT,
            Message::Heartbeat(_) => TYPE_HEARTBEAT,
        }
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Message::Hello(m) => m.seq,
            Message::Verdict(m) => m.seq,
            Message::Heartbeat(m) => m.seq,
        }
    }

    /// The room id.
    pub fn room(&self) -> &str {
        match self {
            Message::Hello(m) => &m.room,
            Message::Verdict(m) => &m.room,
            Message::Heartbeat(m) => &m.room,
        }
    }

    /// The RFC 3339 send time.
    pub fn sent_at(&self) -> &str {
        match self {
            Message::Hello(m) => &m.sent_at,
            Message::Verdict(m) => &m.sent_at,
            Message::Heartbeat(m) => &m.sent_at,
        }
    }

    /// The base64 signature, if the message carries one.
    pub fn sig(&self) -> Option<&str> {
        self.sig_slot().as_deref()
    }

    /// Sets or clears the signature.
    pub fn set_sig(&mut self, sig: Option<String>) {
        *self.sig_slot_mut() = sig;
    }

    fn sig_slot(&self) -> &Option<String> {
        match self {
            Message::Hello(m) => &m.sig,
            Message::Verdict(m) => &m.sig,
            Message::Heartbeat(m) => &m.sig,
        }
    }

    fn sig_slot_mut(&mut self) -> &mut Option<String> {
        match self {
            Message::Hello(m) => &mut m.sig,
            Message::Verdict(m) => &mut m.sig,
            Message::Heartbeat(m) => &mut m.sig,
        }
    }
}

impl From<Hello> for Message {
    fn from(m: Hello) -> Self {
        Message::Hello(m)
    }
}

impl From<Verdict> for Message {
    fn from(m: Verdict) -> Self {
        Message::Verdict(m)
    }
}

impl From<Heartbeat> for Message {
    fn from(m: Heartbeat) -> Self {
        Message::Heartbeat(m)
    }
}

/// Why a text is not a v1 message this version can read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or not a well-formed v1 message (a member missing, of the wrong type, an unknown
    /// `state`).
    Json(serde_json::Error),
    /// A message whose `type` this version does not know (a newer guard's); readers skip it.
    UnknownType(String),
    /// A known message type with a `v` other than [`WIRE_VERSION`]; readers skip it.
    UnsupportedVersion(u64),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(e) => write!(f, "not a v{WIRE_VERSION} deepfake-guard message: {e}"),
            ParseError::UnknownType(t) => write!(f, "unknown deepfake-guard message type {t:?}"),
            ParseError::UnsupportedVersion(v) => {
                write!(f, "deepfake-guard wire version {v} is not supported (this reader speaks v{WIRE_VERSION})")
            }
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseError::Json(e) => Some(e),
            ParseError::UnknownType(_) | ParseError::UnsupportedVersion(_) => None,
        }
    }
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Json(e)
    }
}

/// Reads one message from a wire text or a payload. Verifies nothing: see the module docs for the
/// order (split, verify, then parse the payload).
pub fn parse(text: &str) -> Result<Message, ParseError> {
    serde_json::from_str(text).map_err(|e| classify(text, e))
}

impl FromStr for Message {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Tells an unknown type or version from a plain malformed message (only on the error path).
fn classify(text: &str, err: serde_json::Error) -> ParseError {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        ty: String,
        v: Option<u64>,
    }
    let Ok(probe) = serde_json::from_str::<Probe>(text) else {
        return ParseError::Json(err);
    };
    if ![TYPE_HELLO, TYPE_VERDICT, TYPE_HEARTBEAT].contains(&probe.ty.as_str()) {
        return ParseError::UnknownType(probe.ty);
    }
    match probe.v {
        Some(v) if v != u64::from(WIRE_VERSION) => ParseError::UnsupportedVersion(v),
        _ => ParseError::Json(err),
    }
}

fn only_v1<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u64::deserialize(d)?;
    if v == u64::from(WIRE_VERSION) {
        Ok(WIRE_VERSION)
    } else {
        Err(D::Error::custom(format_args!("unsupported wire version {v} (this reader speaks v{WIRE_VERSION})")))
    }
}

/// The bytes the guard signs: `msg` as compact JSON without its `sig` member (whether or not `msg`
/// carries one).
pub fn signing_payload(msg: &Message) -> String {
    let text = if msg.sig().is_some() {
        let mut unsigned = msg.clone();
        unsigned.set_sig(None);
        serde_json::to_string(&unsigned)
    } else {
        serde_json::to_string(msg)
    };
    // Invariant: these types have only string keys and serializable values, so this cannot fail.
    text.expect("a Message always serializes to JSON")
}

/// The wire text for a signed payload: `payload` with its final `}` replaced by `,"sig":"<sig_b64>"}`.
///
/// # Panics
///
/// If `payload` is not a JSON object text (starting with `{`, ending with `}`), or `sig_b64` is not an
/// Ed25519 signature in padded standard base64 ([`SIG_B64_LEN`] characters ending in `==`). Both come
/// from the guard's own code, so either is a bug there.
pub fn attach_signature(payload: &str, sig_b64: &str) -> String {
    assert!(
        payload.starts_with('{') && payload.ends_with('}'),
        "attach_signature: the payload must be a JSON object text, as signing_payload makes"
    );
    assert!(
        is_ed25519_sig_b64(sig_b64),
        "attach_signature: the signature must be {SIG_B64_LEN} characters of padded standard base64"
    );
    let body = &payload[..payload.len() - 1];
    let mut wire = String::with_capacity(payload.len() + SIG_B64_LEN + 9);
    wire.push_str(body);
    wire.push_str(",\"sig\":\"");
    wire.push_str(sig_b64);
    wire.push_str("\"}");
    wire
}

/// Splits a wire text into the exact payload that was signed and the base64 signature.
///
/// Accepts exactly the texts that match `^(\{[\s\S]*),"sig":"([A-Za-z0-9+/]{86}==)"\}$`, returning
/// `(group 1 + "}", group 2)`; `None` for anything else. It checks only the shape, not that the payload is
/// valid JSON: verify the signature, then [`parse`] the payload.
pub fn split_signed(wire: &str) -> Option<(String, String)> {
    const SIG_OPEN: &str = ",\"sig\":\"";
    if !wire.starts_with('{') {
        return None;
    }
    let body = wire.strip_suffix("\"}")?;
    // The signature alphabet has no `,` or `"`, so only the last `,"sig":"` can open it.
    let at = body.rfind(SIG_OPEN)?;
    let sig = &body[at + SIG_OPEN.len()..];
    if !is_ed25519_sig_b64(sig) {
        return None;
    }
    let mut payload = String::with_capacity(at + 1);
    payload.push_str(&body[..at]);
    payload.push('}');
    Some((payload, sig.to_owned()))
}

/// `[A-Za-z0-9+/]{86}==`: 64 bytes in padded standard base64.
fn is_ed25519_sig_b64(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == SIG_B64_LEN
        && b.ends_with(b"==")
        && b[..SIG_B64_LEN - 2].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Formats a Unix time in milliseconds as `sent_at` wants it: RFC 3339, UTC, milliseconds,
/// e.g. `2026-11-25T18:02:11.201Z`. (The caller reads the clock; this module never does.) Times from the
/// year 10000 on do not fit the 4-digit year the schema asks for.
pub fn format_sent_at(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let secs = unix_ms / 1000;
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); H. Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
