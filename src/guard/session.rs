//! One stay in the room: a Janus session from join to disconnection.
//!
//! Publisher handle: joins as "Deepfake Guard" and publishes a data-only stream (the alert channel).
//! Subscriber handle (multistream): subscribes to the audio and video of every other publisher, follows
//! joins and departures, renegotiates on Janus's `updated` offers. RTP from each track is reassembled into
//! frames here and handed to the analysis workers; their findings come back and go out, signed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::{h264::H264Packet, vp8::Vp8Packet};
use rtc::rtp::packetizer::Depacketizer;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::worker::{Media, ParticipantHandle, WorkerEvent, Workers};
use super::{GuardConfig, Report};
use crate::alerts::outbox::{Outbox, Outgoing};
use crate::media::live::Codec;
use crate::media::reassembly::FrameAssembler;
use crate::media::rtc::{Peer, PeerEvent, RtcConfig, jsep};
use crate::metrics::{MessageKind, Metrics};
use crate::sfu::janus::{Credentials, Janus};
use crate::sfu::videoroom::{self, RoomEvent, SubStream};
use deepfake_guard_plugin_api::messages::{Message, NotJudged, State};

/// A hello goes out again with every this many heartbeats.
const HELLO_EVERY_BEATS: u64 = 4;
/// The most time closing a session's connections may take (Janus gone: nothing answers a close).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a session ended.
pub enum End {
    /// Asked to stop (Ctrl-C, SIGTERM).
    Shutdown,
    /// The room is gone or the guard was kicked out: do not come back.
    Evicted(String),
}

/// Where an incoming track's media goes: mid -> participant, and ssrc -> mid from Janus's offers.
#[derive(Default)]
struct Routes {
    by_mid: HashMap<String, Arc<ParticipantHandle>>,
    mid_by_ssrc: HashMap<u32, String>,
    /// Incoming video tracks by SSRC, for keyframe requests.
    video: HashMap<u32, Arc<dyn TrackRemote>>,
}

/// The routes, and a generation that changes with every edit of who gets which stream: a track's pump takes
/// the lock only after a change, and otherwise pays one atomic load per frame or packet.
#[derive(Default)]
struct RouteTable {
    routes: Mutex<Routes>,
    generation: AtomicU64,
}

impl RouteTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap()
    }

    /// Change the routing (mids, SSRCs): every pump looks again at its next frame or packet.
    fn edit(&self) -> RouteEdit<'_> {
        RouteEdit { routes: self.routes.lock().unwrap(), generation: &self.generation }
    }
}

struct RouteEdit<'a> {
    routes: std::sync::MutexGuard<'a, Routes>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for RouteEdit<'_> {
    type Target = Routes;
    fn deref(&self) -> &Routes {
        &self.routes
    }
}

impl std::ops::DerefMut for RouteEdit<'_> {
    fn deref_mut(&mut self) -> &mut Routes {
        &mut self.routes
    }
}

impl Drop for RouteEdit<'_> {
    fn drop(&mut self) {
        // Still under the lock: a pump that sees the new generation reads the edited routes.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

type SharedRoutes = Arc<RouteTable>;

/// A participant being analysed in this session.
struct Watched {
    handle: Arc<ParticipantHandle>,
    last_pli: Option<Instant>,
    /// The publisher's video codec as Janus lists it (`None`: no active video stream).
    video_codec: Option<String>,
    /// Video frames received at the last check, and when that count last grew.
    video_seen: (u64, Instant),
}

/// A participant whose video has not grown for this long is reported as not judged (camera off, audio only, or
/// a codec the guard does not decode).
const NO_VIDEO_AFTER: Duration = Duration::from_secs(4);

pub struct Session<'a> {
    cfg: &'a GuardConfig,
    workers: &'a Workers,
    outbox: &'a mut Outbox,
    worker_events: &'a mut mpsc::UnboundedReceiver<WorkerEvent>,
    report: &'a Report,
    metrics: &'a Metrics,
    started: Instant,
}

impl<'a> Session<'a> {
    pub fn new(
        cfg: &'a GuardConfig,
        workers: &'a Workers,
        outbox: &'a mut Outbox,
        worker_events: &'a mut mpsc::UnboundedReceiver<WorkerEvent>,
        report: &'a Report,
        metrics: &'a Metrics,
        started: Instant,
    ) -> Self {
        Session { cfg, workers, outbox, worker_events, report, metrics, started }
    }

    /// Join and stay until the connection is lost (Err), the room ends, or `shutdown` fires.
    pub async fn run(&mut self, shutdown: &mut tokio::sync::watch::Receiver<bool>) -> anyhow::Result<End> {
        let cfg = self.cfg;
        let creds = Credentials { api_secret: cfg.api_secret.clone(), token: cfg.token.clone() };
        let janus = Janus::connect(&cfg.janus, creds, Duration::from_secs_f64(cfg.keepalive_s)).await?;
        let rtc_cfg = RtcConfig {
            udp_addrs: if cfg.ice_addrs.is_empty() { vec!["0.0.0.0:0".into()] } else { cfg.ice_addrs.clone() },
            ice_servers: cfg.ice_servers.clone(),
        };
        let (peer_tx, mut peer_rx) = mpsc::unbounded_channel::<(Side, PeerEvent)>();

        // Publisher: join, then publish the data-only stream.
        let (ph, mut pub_events) = janus.attach(videoroom::PLUGIN).await?;
        let mut join = json!({"request": "join", "ptype": "publisher", "room": cfg.room, "display": cfg.display});
        if let Some(pin) = &cfg.pin {
            join["pin"] = json!(pin);
        }
        let r = janus.message("join the room", ph, join, None).await?;
        let data = &r["plugindata"]["data"];
        let my_id = data["id"].as_u64().ok_or_else(|| anyhow::anyhow!("Janus did not give the guard an id: {data}"))?;
        self.outbox.set_bot_id(my_id);
        let initial = videoroom::publishers(data);
        let joined = data.clone();
        self.report.line(format!("joined room {} as participant {my_id} ({})", cfg.room, cfg.display));

        let pub_peer = Peer::new(&rtc_cfg, side_sender(&peer_tx, Side::Publisher)).await?;
        let routes: SharedRoutes = Default::default();
        let mut watched: HashMap<u64, Watched> = HashMap::new();
        let mut sub: Option<(Peer, u64, mpsc::UnboundedReceiver<Value>)> = None;
        let mut heartbeat = tokio::time::interval(self.cfg.heartbeat());
        heartbeat.tick().await;
        let mut video_check = tokio::time::interval(Duration::from_secs(1));
        video_check.tick().await;
        let mut beats = 0u64;

        // From here on the peer connections exist: whatever happens, they are closed below.
        let result: anyhow::Result<End> = async {
            let channel = pub_peer.pc.create_data_channel("JanusDataChannel", None).await?;
            let offer = pub_peer.offer().await?;
            let r = janus
                .message(
                    "publish the alert channel",
                    ph,
                    json!({"request": "configure", "audio": false, "video": false, "data": true}),
                    Some(jsep(&offer)),
                )
                .await?;
            let answer = r["jsep"]["sdp"].as_str().ok_or_else(|| anyhow::anyhow!("no SDP answer to the data-only publish"))?;
            pub_peer.set_answer(answer.to_owned()).await?;
            self.metrics.sfu_joined.set(1);
            let (open_tx, mut channel_open) = mpsc::unbounded_channel::<()>();
            spawn_channel_watch(channel.clone(), Some(open_tx), None);
            let mut alert_channel: Option<Arc<dyn DataChannel>> = None;
            self.follow(&janus, &rtc_cfg, &peer_tx, &routes, &mut watched, &mut sub, my_id, initial, &joined).await?;
            loop {
                let sub_event = async {
                    match sub.as_mut() {
                        Some((_, _, ev)) => ev.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.changed() => return Ok(End::Shutdown),
                    _ = janus.closed() => anyhow::bail!("the connection to Janus was lost"),
                    Some(()) = channel_open.recv() => {
                        alert_channel = Some(channel.clone());
                        let hello = self.outbox.hello(unix_ms());
                        self.send(&alert_channel, hello).await;
                        self.report.line(format!(
                            "alert channel open; signing key {} (key id {})",
                            self.outbox.signer().public_key_b64(), self.outbox.signer().key_id()
                        ));
                    }
                    _ = video_check.tick() => {
                        // A participant without video is never judged by windows (windows close on video
                        // frames): say so instead of leaving its last state standing.
                        let now = Instant::now();
                        let mut news = Vec::new();
                        for (id, w) in watched.iter_mut() {
                            let n = w.handle.stats.video_in.load(std::sync::atomic::Ordering::Relaxed);
                            if n != w.video_seen.0 {
                                w.video_seen = (n, now);
                            } else if now - w.video_seen.1 >= NO_VIDEO_AFTER {
                                let reason = match w.video_codec.as_deref() {
                                    Some(c) if !videoroom::decodes_video(c) => NotJudged::UnsupportedCodec,
                                    _ => NotJudged::CameraOff,
                                };
                                let at_ms = w.handle.epoch.elapsed().as_millis() as u64;
                                news.extend(self.outbox.not_judged(*id, reason, at_ms, unix_ms()));
                            }
                        }
                        if !news.is_empty() {
                            self.metrics.set_states(self.outbox.states());
                            self.metrics.set_not_judged(self.outbox.reasons());
                            for out in news {
                                self.metrics.verdict(State::NoFace);
                                self.send(&alert_channel, out).await;
                            }
                        }
                    }
                    _ = heartbeat.tick() => {
                        // Janus relays no past data: repeat the hello now and then for clients that joined after
                        // it and take the guard's key from it (pinning the key printed at start is better).
                        beats += 1;
                        if beats.is_multiple_of(HELLO_EVERY_BEATS) && alert_channel.is_some() {
                            let hello = self.outbox.hello(unix_ms());
                            self.send(&alert_channel, hello).await;
                        }
                        let hb = self.outbox.heartbeat(self.started.elapsed().as_secs(), unix_ms());
                        self.send(&alert_channel, hb).await;
                        self.report.stats(&watched.iter().map(|(id, w)| (*id, w.handle.stats.clone())).collect::<Vec<_>>());
                    }
                    ev = pub_events.recv() => {
                        let Some(ev) = ev else { anyhow::bail!("the connection to Janus was lost") };
                        if ev["janus"] == "hangup" {
                            anyhow::bail!("Janus hung up the alert channel: {}", ev["reason"]);
                        }
                        let data = &ev["plugindata"]["data"];
                        match videoroom::room_event(data, my_id) {
                            RoomEvent::Publishers(list) => {
                                self.follow(&janus, &rtc_cfg, &peer_tx, &routes, &mut watched, &mut sub, my_id, list, data)
                                    .await?;
                            }
                            RoomEvent::Gone(id) => self.forget(id, &routes, &mut watched),
                            RoomEvent::Destroyed => return Ok(End::Evicted("the room was destroyed".into())),
                            RoomEvent::Kicked => return Ok(End::Evicted("the guard was kicked out of the room".into())),
                            RoomEvent::Other => {}
                        }
                    }
                    ev = sub_event => {
                        let Some(ev) = ev else { anyhow::bail!("the connection to Janus was lost") };
                        let data = &ev["plugindata"]["data"];
                        let streams = videoroom::sub_streams(data);
                        if !streams.is_empty() {
                            self.route_streams(&streams, &routes, &watched);
                        }
                        if ev["jsep"]["type"] == "offer" {
                            let (peer, sh, _) = sub.as_ref().expect("subscriber events come from a subscriber");
                            renegotiate(&janus, peer, *sh, cfg.room, &ev, &routes).await?;
                        }
                    }
                    Some((side, ev)) = peer_rx.recv() => match ev {
                        PeerEvent::Track(track) if side == Side::Subscriber => {
                            let routes = routes.clone();
                            tokio::spawn(pump(track, routes));
                        }
                        PeerEvent::Track(_) => {}
                        PeerEvent::DataChannel(dc) => {
                            // Janus relays other publishers' data to us: read it so it does not pile up.
                            spawn_channel_watch(dc, None, None);
                        }
                        PeerEvent::State(s) => {
                            log::debug!("{side:?} connection: {s}");
                            if side == Side::Publisher
                                && matches!(s, webrtc::peer_connection::RTCPeerConnectionState::Failed)
                            {
                                anyhow::bail!("the alert channel's connection failed");
                            }
                        }
                    },
                    Some(ev) = self.worker_events.recv() => match ev {
                        WorkerEvent::Window { participant, report, changed } => {
                            log::debug!(
                                "participant {participant}: window {}-{} ms p {:?} state {:?} frames {} held {} skipped {} offset, confidence {:?}",
                                report.start_us / 1000, report.end_us / 1000, report.head.map(|h| h.p_fake), report.state,
                                report.frames, report.held_slots, report.skipped, report.sync.map(|e| (e.offset_ms, e.confidence))
                            );
                            if let Some(out) = self.outbox.window(participant, &report, changed, unix_ms()) {
                                if let Some(state) = report.state {
                                    self.metrics.verdict(state);
                                }
                                self.metrics.set_states(self.outbox.states());
                                self.metrics.set_not_judged(self.outbox.reasons());
                                self.send(&alert_channel, out).await;
                            }
                        }
                        WorkerEvent::KeyframeWanted { participant } => {
                            if let Some(w) = watched.get_mut(&participant) {
                                request_keyframe(w, &routes, self.metrics).await;
                            }
                        }
                    },
                }
            }
        }
        .await;

        // Leave cleanly whatever happened: stop the analysis, close both connections, end the session. When
        // Janus is gone nothing answers, so the closes run together and are bounded: the guard rejoins (and
        // is blind) only once they are done.
        if let Err(e) = &result {
            log::debug!("session ends: {e:#}");
        }
        let leaving = Instant::now();
        self.metrics.sfu_joined.set(0);
        for (_, w) in watched.drain() {
            self.workers.remove(&w.handle);
        }
        self.outbox.clear();
        self.metrics.set_states(self.outbox.states());
        let sub_peer = sub.take().map(|(peer, _, _)| peer);
        let close = tokio::spawn(async move {
            let close_sub = async {
                if let Some(peer) = &sub_peer {
                    peer.close().await;
                }
            };
            tokio::join!(close_sub, pub_peer.close());
            if !janus.is_closed() {
                janus.destroy().await;
            }
        });
        if tokio::time::timeout(LEAVE_TIMEOUT, close).await.is_err() {
            log::warn!(
                "closing the session's connections takes more than {} s; finishing in the background",
                LEAVE_TIMEOUT.as_secs()
            );
        }
        log::debug!("left the session in {} ms", leaving.elapsed().as_millis());
        result
    }

    /// Subscribe to the media of publishers not yet watched (`list`, read from the plugin data `data`).
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &mut self,
        janus: &Janus,
        rtc_cfg: &RtcConfig,
        peer_tx: &mpsc::UnboundedSender<(Side, PeerEvent)>,
        routes: &SharedRoutes,
        watched: &mut HashMap<u64, Watched>,
        sub: &mut Option<(Peer, u64, mpsc::UnboundedReceiver<Value>)>,
        my_id: u64,
        list: Vec<videoroom::Publisher>,
        data: &Value,
    ) -> anyhow::Result<()> {
        // A publisher already watched that published again (camera on or off, another codec): its video now.
        for p in &list {
            if let Some(w) = watched.get_mut(&p.id) {
                w.video_codec = p.video_codec.clone();
            }
        }
        let new: Vec<_> =
            list.into_iter().filter(|p| p.id != my_id && p.has_media && !watched.contains_key(&p.id)).collect();
        if new.is_empty() {
            return Ok(());
        }
        for p in &new {
            let handle = Arc::new(self.workers.add(p.id));
            self.outbox.add(p.id, p.display.clone());
            self.metrics.set_states(self.outbox.states());
            let video_seen = (0, Instant::now());
            watched.insert(p.id, Watched { handle, last_pli: None, video_codec: p.video_codec.clone(), video_seen });
            self.report.line(format!("watching participant {} ({})", p.id, p.display.as_deref().unwrap_or("no name")));
        }
        // Every stream of the feed (its audio and video are analysed, its data, if any, is read and ignored), but
        // for video the guard does not decode.
        let streams: Vec<Value> = new.iter().flat_map(|p| subscription(data, p.id)).collect();
        if streams.is_empty() {
            return Ok(()); // nothing but undecodable video: watched (and reported), nothing to receive
        }
        let room = self.cfg.room;
        match sub {
            None => {
                let (sh, events) = janus.attach(videoroom::PLUGIN).await?;
                let mut body = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
                if let Some(pin) = &self.cfg.pin {
                    body["pin"] = json!(pin);
                }
                let r = janus.message("subscribe", sh, body, None).await?;
                let peer = Peer::new(rtc_cfg, side_sender(peer_tx, Side::Subscriber)).await?;
                let started: anyhow::Result<()> = async {
                    self.route_streams(&videoroom::sub_streams(&r["plugindata"]["data"]), routes, watched);
                    let offer =
                        r["jsep"]["sdp"].as_str().ok_or_else(|| anyhow::anyhow!("no SDP offer to subscribe"))?;
                    learn_ssrcs(routes, offer);
                    peer.apply_offer(offer.to_owned()).await?;
                    // Janus relays nothing to a subscriber whose own data channel carried no traffic: open one.
                    let own = peer.pc.create_data_channel("JanusDataChannel", None).await?;
                    spawn_channel_watch(own, None, Some("deepfake-guard subscriber"));
                    let answer = peer.answer().await?;
                    let start = json!({"request": "start", "room": room});
                    janus.message("start the subscription", sh, start, Some(jsep(&answer))).await?;
                    Ok(())
                }
                .await;
                if let Err(e) = started {
                    peer.close().await;
                    return Err(e);
                }
                *sub = Some((peer, sh, events));
            }
            Some((peer, sh, _)) => {
                let r =
                    janus.message("subscribe", *sh, json!({"request": "subscribe", "streams": streams}), None).await?;
                self.route_streams(&videoroom::sub_streams(&r["plugindata"]["data"]), routes, watched);
                if r["jsep"]["type"] == "offer" {
                    renegotiate(janus, peer, *sh, room, &r, routes).await?;
                }
            }
        }
        Ok(())
    }

    fn forget(&mut self, id: u64, routes: &SharedRoutes, watched: &mut HashMap<u64, Watched>) {
        if let Some(w) = watched.remove(&id) {
            routes.edit().by_mid.retain(|_, h| h.id != id);
            self.workers.remove(&w.handle);
            let name = self.outbox.display(id).unwrap_or("no name").to_owned();
            self.outbox.remove(id);
            self.metrics.set_states(self.outbox.states());
            self.metrics.set_not_judged(self.outbox.reasons());
            self.report.line(format!("participant {id} ({name}) left"));
        }
    }

    fn route_streams(&self, streams: &[SubStream], routes: &SharedRoutes, watched: &HashMap<u64, Watched>) {
        let mut r = routes.edit();
        for s in streams {
            if s.kind != "audio" && s.kind != "video" {
                continue;
            }
            log::debug!("stream mid {} {} feed {:?} active {}", s.mid, s.kind, s.feed_id, s.active);
            match s.feed_id.and_then(|f| watched.get(&f)).filter(|_| s.active) {
                Some(w) => {
                    r.by_mid.insert(s.mid.clone(), w.handle.clone());
                }
                None => {
                    r.by_mid.remove(&s.mid);
                }
            }
        }
    }

    async fn send(&self, channel: &Option<Arc<dyn DataChannel>>, out: Outgoing) {
        self.report.message(&out, self.outbox);
        if let Some(dc) = channel {
            let kind = match &out.message {
                Message::Hello(_) => Some(MessageKind::Hello),
                Message::Verdict(_) => Some(MessageKind::Verdict),
                Message::Heartbeat(_) => Some(MessageKind::Heartbeat),
                _ => None,
            };
            match dc.send_text(&out.wire).await {
                Ok(_) => kind.into_iter().for_each(|k| self.metrics.message_sent(k)),
                Err(e) => {
                    self.metrics.send_errors.inc();
                    log::warn!("sending on the alert channel: {e}");
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Publisher,
    Subscriber,
}

fn side_sender(tx: &mpsc::UnboundedSender<(Side, PeerEvent)>, side: Side) -> mpsc::UnboundedSender<PeerEvent> {
    let (t, mut r) = mpsc::unbounded_channel();
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(ev) = r.recv().await {
            if tx.send((side, ev)).is_err() {
                break;
            }
        }
    });
    t
}

/// The streams of publisher `feed` (as listed in the plugin data `data`) to subscribe to: the whole feed, or, when
/// it sends video in a codec the guard does not decode (VP9, AV1), its other streams only. Such an m-line would do
/// worse than waste bandwidth: the subscriber connection settles the codecs of a media kind on the first m-line
/// of that kind it negotiates, so after a VP9 one it never receives VP8 or H.264 video again (every participant
/// after it is "camera off" to the guard until it rejoins), and it logs an error for every packet of a track it
/// cannot open. The participant is reported `unsupported-codec` from the publisher list either way.
fn subscription(data: &Value, feed: u64) -> Vec<Value> {
    let id = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let listed = data["publishers"].as_array().into_iter().flatten().find(|p| id(&p["id"]) == Some(feed));
    let Some(streams) = listed.and_then(|p| p["streams"].as_array()) else { return vec![json!({"feed": feed})] };
    let disabled = |s: &Value| s["disabled"].as_bool().unwrap_or(false);
    let undecodable = |s: &Value| {
        s["type"] == "video"
            && !disabled(s)
            && !videoroom::decodes_video(&s["codec"].as_str().unwrap_or("").to_ascii_lowercase())
    };
    if !streams.iter().any(undecodable) {
        return vec![json!({"feed": feed})];
    }
    streams
        .iter()
        .filter(|s| !undecodable(s) && !disabled(s))
        .filter_map(|s| s["mid"].as_str())
        .map(|mid| json!({"feed": feed, "mid": mid}))
        .collect()
}

fn learn_ssrcs(routes: &SharedRoutes, sdp: &str) {
    let mut r = routes.edit();
    for (mid, ssrcs) in videoroom::sdp_ssrcs_by_mid(sdp) {
        for s in ssrcs {
            r.mid_by_ssrc.insert(s, mid.clone());
        }
    }
}

async fn renegotiate(
    janus: &Janus,
    peer: &Peer,
    sh: u64,
    room: u64,
    ev: &Value,
    routes: &SharedRoutes,
) -> anyhow::Result<()> {
    let offer = ev["jsep"]["sdp"].as_str().ok_or_else(|| anyhow::anyhow!("no SDP in Janus's updated offer"))?;
    learn_ssrcs(routes, offer);
    peer.apply_offer(offer.to_owned()).await?;
    let answer = peer.answer().await?;
    janus
        .message("renegotiate the subscription", sh, json!({"request": "start", "room": room}), Some(jsep(&answer)))
        .await?;
    Ok(())
}

/// Read a data channel until it closes; `opened` fires on open, `probe` is sent once open.
fn spawn_channel_watch(
    dc: Arc<dyn DataChannel>,
    opened: Option<mpsc::UnboundedSender<()>>,
    probe: Option<&'static str>,
) {
    tokio::spawn(async move {
        while let Some(ev) = dc.poll().await {
            match ev {
                DataChannelEvent::OnOpen => {
                    if let Some(tx) = &opened {
                        let _ = tx.send(());
                    }
                    if let Some(p) = probe {
                        let _ = dc.send_text(p).await;
                    }
                }
                DataChannelEvent::OnClose => break,
                _ => {}
            }
        }
    });
}

async fn request_keyframe(w: &mut Watched, routes: &SharedRoutes, metrics: &Metrics) {
    if w.last_pli.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
        return;
    }
    w.last_pli = Some(Instant::now());
    let tracks: Vec<(u32, Arc<dyn TrackRemote>)> = {
        let r = routes.lock();
        r.video
            .iter()
            .filter(|(ssrc, _)| {
                r.mid_by_ssrc.get(ssrc).and_then(|m| r.by_mid.get(m)).is_some_and(|h| h.id == w.handle.id)
            })
            .map(|(s, t)| (*s, t.clone()))
            .collect()
    };
    for (ssrc, track) in tracks {
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
        match track.write_rtcp(vec![Box::new(pli)]).await {
            Ok(()) => metrics.keyframe_requests.inc(),
            Err(e) => log::debug!("keyframe request: {e}"),
        }
    }
}

/// RTP of one incoming track -> frames -> the participant its mid currently belongs to.
async fn pump(track: Arc<dyn TrackRemote>, routes: SharedRoutes) {
    // The SSRC comes with the first packet (Janus also announces it in the SDP).
    let mut first = None;
    let mut ssrcs = track.ssrcs().await;
    while ssrcs.is_empty() {
        match track.poll().await {
            Some(TrackRemoteEvent::OnRtpPacket(p)) => {
                ssrcs = vec![p.header.ssrc];
                first = Some(p);
            }
            Some(_) => {}
            None => return,
        }
    }
    let ssrc = ssrcs[0];
    let codec = track.codec(ssrc).await.and_then(|c| Codec::from_mime(&c.mime_type));
    let Some(codec) = codec else {
        // Read to its end and dropped: a track nobody reads fills its queue, and the connection then logs an
        // error for every packet.
        log::warn!("track with SSRC {ssrc}: codec not supported, its packets are dropped");
        while next_packet(&track, &mut first).await.is_some() {}
        return;
    };
    {
        let mut r = routes.lock();
        if codec.is_video() {
            r.video.insert(ssrc, track.clone());
        }
        log::debug!("track {} ssrc {ssrc} -> mid {:?}", codec.name(), r.mid_by_ssrc.get(&ssrc));
    }
    // Up to 4 frames may wait behind an incomplete one, for at most 300 ms (then it is given up).
    let wait = Duration::from_millis(300);
    match codec {
        Codec::Vp8 => {
            video_pump(track, first, ssrc, codec, FrameAssembler::new(Vp8Packet::default(), 4, wait), routes).await
        }
        Codec::H264 => {
            video_pump(track, first, ssrc, codec, FrameAssembler::new(H264Packet::default(), 4, wait), routes).await
        }
        Codec::Opus => audio_pump(track, first, ssrc, routes).await,
    }
}

/// The next RTP packet of a track (`first` if one was read already); `None` when the track ended.
async fn next_packet(track: &Arc<dyn TrackRemote>, first: &mut Option<rtc::rtp::Packet>) -> Option<rtc::rtp::Packet> {
    if let Some(p) = first.take() {
        return Some(p);
    }
    loop {
        match track.poll().await {
            Some(TrackRemoteEvent::OnRtpPacket(p)) => return Some(p),
            Some(TrackRemoteEvent::OnEnded) | None => return None,
            Some(_) => {}
        }
    }
}

/// Which participant a track's media currently goes to (Janus reuses a mid for the next feed), looked up
/// again only when the routes changed.
struct Route {
    ssrc: u32,
    current: Option<Arc<ParticipantHandle>>,
    /// The routes' generation `current` was read at.
    seen: Option<u64>,
}

impl Route {
    fn new(ssrc: u32) -> Self {
        Route { ssrc, current: None, seen: None }
    }

    /// The participant, and whether it is new to this track (its decoder must start at a keyframe).
    fn resolve(&mut self, routes: &SharedRoutes) -> Option<(&Arc<ParticipantHandle>, bool)> {
        let generation = routes.generation.load(Ordering::Acquire);
        let mut fresh = false;
        if self.seen != Some(generation) {
            let r = routes.lock();
            let h = r.mid_by_ssrc.get(&self.ssrc).and_then(|mid| r.by_mid.get(mid));
            fresh = h.is_some_and(|h| self.current.as_ref().is_none_or(|c| !Arc::ptr_eq(c, h)));
            self.current = h.cloned();
            self.seen = Some(generation);
        }
        self.current.as_ref().map(|h| (h, fresh))
    }
}

async fn video_pump<T: Depacketizer>(
    track: Arc<dyn TrackRemote>,
    mut first: Option<rtc::rtp::Packet>,
    ssrc: u32,
    codec: Codec,
    mut frames: FrameAssembler<T>,
    routes: SharedRoutes,
) {
    let mut route = Route::new(ssrc);
    while let Some(p) = next_packet(&track, &mut first).await {
        let now = Instant::now();
        frames.push(now, p.header.sequence_number, p.header.timestamp, p.header.marker, p.payload);
        while let Some(f) = frames.pop(now) {
            let Some((h, fresh)) = route.resolve(&routes) else { continue };
            h.push(Media {
                codec,
                data: f.data,
                rtp_ts: f.rtp_ts,
                seq: f.seq,
                arrival_us: f.arrival.saturating_duration_since(h.epoch).as_micros() as i64,
                after_loss: f.after_loss || fresh,
            });
        }
    }
}

async fn audio_pump(track: Arc<dyn TrackRemote>, mut first: Option<rtc::rtp::Packet>, ssrc: u32, routes: SharedRoutes) {
    let mut route = Route::new(ssrc);
    while let Some(p) = next_packet(&track, &mut first).await {
        let Some((h, _)) = route.resolve(&routes) else { continue };
        h.push(Media {
            codec: Codec::Opus,
            data: p.payload,
            rtp_ts: p.header.timestamp,
            seq: p.header.sequence_number,
            arrival_us: h.epoch.elapsed().as_micros() as i64,
            after_loss: false,
        });
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_the_guard_does_not_decode_is_never_subscribed() {
        let data = json!({"publishers": [
            {"id": 1, "streams": [{"type": "audio", "mid": "0", "codec": "opus"}, {"type": "video", "mid": "1", "codec": "vp8"}]},
            {"id": 2, "streams": [{"type": "audio", "mid": "0", "codec": "opus"}, {"type": "data", "mid": "1"}]},
            {"id": "3", "streams": [
                {"type": "audio", "mid": "0", "codec": "opus"}, {"type": "video", "mid": "1", "codec": "VP9"},
                {"type": "data", "mid": "2"}]},
            {"id": 4, "streams": [{"type": "video", "mid": "0", "codec": "av1"}]},
            {"id": 5, "streams": [{"type": "video", "mid": "0", "codec": "vp9", "disabled": true}, {"type": "audio", "mid": "1"}]},
            {"id": 6},
        ]});
        // decodable video, audio only, or no stream list: the whole feed (Janus adds streams published later)
        assert_eq!(subscription(&data, 1), [json!({"feed": 1})]);
        assert_eq!(subscription(&data, 2), [json!({"feed": 2})]);
        assert_eq!(subscription(&data, 6), [json!({"feed": 6})]);
        assert_eq!(subscription(&data, 5), [json!({"feed": 5})], "a disabled stream is not offered anyway");
        // VP9 / AV1 video: every other stream, by mid; nothing when there is nothing else
        assert_eq!(subscription(&data, 3), [json!({"feed": 3, "mid": "0"}), json!({"feed": 3, "mid": "2"})]);
        assert!(subscription(&data, 4).is_empty());
        // a feed the data does not list: the whole feed
        assert_eq!(subscription(&data, 9), [json!({"feed": 9})]);
    }
}
