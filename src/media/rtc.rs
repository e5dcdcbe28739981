//! WebRTC peer connections (webrtc 0.21 over the sans-IO `rtc` crate), set up the way a bot next to a media
//! server needs them: no mDNS, ICE bound to the configured addresses, full (non-trickle) candidates in each
//! description, and every event of the connection handed to the owner through one channel.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

/// Network settings of the bot's peer connections.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// Local UDP addresses ICE binds to (`IP:0` for any port). A concrete address: a wildcard skips every
    /// loopback-range interface address.
    pub udp_addrs: Vec<String>,
    /// STUN/TURN URLs (`stun:host:port`); none on a LAN next to the media server.
    pub ice_servers: Vec<String>,
}

/// Events of one peer connection, in the order the connection raised them.
pub enum PeerEvent {
    Track(Arc<dyn TrackRemote>),
    DataChannel(Arc<dyn DataChannel>),
    State(RTCPeerConnectionState),
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    events: mpsc::UnboundedSender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        let _ = self.gathered.send(s == RTCIceGatheringState::Complete);
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.state.send(s);
        let _ = self.events.send(PeerEvent::State(s));
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // The driver calls this inline: hand the track over, never block here.
        let _ = self.events.send(PeerEvent::Track(track));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.events.send(PeerEvent::DataChannel(dc));
    }
}

/// One peer connection and the watchers its negotiation needs.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

impl Peer {
    pub async fn new(cfg: &RtcConfig, events: mpsc::UnboundedSender<PeerEvent>) -> anyhow::Result<Peer> {
        let mut me = MediaEngine::default();
        me.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut me)?;
        let (g_tx, gathered) = watch::channel(false);
        let (s_tx, state) = watch::channel(RTCPeerConnectionState::New);
        // mDNS off: next to a media server it is useless, and in a namespace without a multicast route it
        // makes build() fail ("No such device").
        let se =
            SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled).build();
        let ice_servers = cfg
            .ice_servers
            .iter()
            .map(|u| RTCIceServer { urls: vec![u.clone()], ..Default::default() })
            .collect::<Vec<_>>();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
            .with_setting_engine(se)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler { gathered: g_tx, state: s_tx, events }))
            .with_udp_addrs(cfg.udp_addrs.clone())
            .build()
            .await?;
        Ok(Peer { pc: Arc::new(pc), gathered, state })
    }

    /// Our local description once ICE gathering is complete (Janus gets every candidate at once).
    async fn gathered_description(&self) -> anyhow::Result<RTCSessionDescription> {
        let mut g = self.gathered.clone();
        if tokio::time::timeout(Duration::from_secs(5), g.wait_for(|v| *v)).await.is_err() {
            log::warn!("ICE gathering did not complete within 5 s; sending the candidates found so far");
        }
        self.pc.local_description().await.ok_or_else(|| anyhow::anyhow!("no local description"))
    }

    /// Create and apply an offer; returns it with its candidates.
    pub async fn offer(&self) -> anyhow::Result<RTCSessionDescription> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.gathered_description().await
    }

    /// Apply a remote offer (the caller may add its own data channel before answering).
    pub async fn apply_offer(&self, offer_sdp: String) -> anyhow::Result<()> {
        self.pc.set_remote_description(RTCSessionDescription::offer(offer_sdp)?).await?;
        Ok(())
    }

    /// Answer the applied remote offer; returns the answer with its candidates.
    pub async fn answer(&self) -> anyhow::Result<RTCSessionDescription> {
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.gathered_description().await
    }

    pub async fn set_answer(&self, answer_sdp: String) -> anyhow::Result<()> {
        self.pc.set_remote_description(RTCSessionDescription::answer(answer_sdp)?).await?;
        Ok(())
    }

    /// Wait until the connection is up; false when it failed or `timeout` passed.
    pub async fn connected(&self, timeout: Duration) -> bool {
        let mut s = self.state.clone();
        let r = tokio::time::timeout(
            timeout,
            s.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected | RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        matches!(r, Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected)
    }

    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            log::debug!("closing a peer connection: {e}");
        }
    }
}

/// A description as Janus takes it in a `jsep` member.
pub fn jsep(d: &RTCSessionDescription) -> Value {
    json!({"type": d.sdp_type.to_string(), "sdp": d.sdp, "trickle": false})
}
