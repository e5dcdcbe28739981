//! The Janus VideoRoom plugin (multistream API, Janus >= 1.0): what its answers and events mean, as plain
//! data. Pure functions over JSON and SDP, so they are tested without a server.

use serde_json::Value;

pub const PLUGIN: &str = "janus.plugin.videoroom";

/// A publisher of the room (another participant), as the `publishers` lists name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    pub id: u64,
    pub display: Option<String>,
    /// Whether it publishes audio or video (a data-only publisher, like another guard, has nothing to watch).
    pub has_media: bool,
    /// Its video: `None` when it publishes no active video stream (audio only, camera off), else the codec
    /// Janus names (lowercase; empty when the list does not say).
    pub video_codec: Option<String>,
}

impl Publisher {
    /// Whether the guard decodes this publisher's video (VP8, H.264; a list that names no codec: assumed).
    pub fn video_decoded(&self) -> bool {
        self.video_codec.as_deref().is_some_and(decodes_video)
    }
}

/// Whether the guard decodes video Janus lists with this codec name (lowercase; empty: not named, assumed).
pub fn decodes_video(codec: &str) -> bool {
    matches!(codec, "" | "vp8" | "h264")
}

/// One stream of the subscriber connection: which publisher's media arrives on which m-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubStream {
    pub mid: String,
    pub kind: String,
    pub feed_id: Option<u64>,
    pub feed_display: Option<String>,
    pub codec: Option<String>,
    pub active: bool,
}

/// What a VideoRoom event tells the guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomEvent {
    /// Publishers that (now) publish.
    Publishers(Vec<Publisher>),
    /// A publisher stopped publishing (`unpublished`) or left the room (`leaving`).
    Gone(u64),
    /// The room was destroyed: the guard cannot stay.
    Destroyed,
    /// The guard itself was kicked out.
    Kicked,
    Other,
}

/// Janus feed ids are numbers by default, strings when the room uses `string_ids`.
fn feed_id(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The `publishers` list of a `joined` answer or a `publishers` event.
pub fn publishers(data: &Value) -> Vec<Publisher> {
    let Some(list) = data["publishers"].as_array() else { return Vec::new() };
    list.iter()
        .filter_map(|p| {
            let id = feed_id(&p["id"])?;
            let has_media = match p["streams"].as_array() {
                Some(s) => s.iter().any(|s| {
                    matches!(s["type"].as_str(), Some("audio" | "video")) && !s["disabled"].as_bool().unwrap_or(false)
                }),
                // Old-style lists without streams: assume media.
                None => true,
            };
            let video_codec = match p["streams"].as_array() {
                Some(s) => s
                    .iter()
                    .find(|s| s["type"] == "video" && !s["disabled"].as_bool().unwrap_or(false))
                    .map(|s| s["codec"].as_str().unwrap_or("").to_ascii_lowercase()),
                None => Some(String::new()),
            };
            Some(Publisher { id, display: p["display"].as_str().map(str::to_owned), has_media, video_codec })
        })
        .collect()
}

/// Classify a plugin event (the `plugindata.data` object).
pub fn room_event(data: &Value, own_id: u64) -> RoomEvent {
    if data["videoroom"] == "destroyed" {
        return RoomEvent::Destroyed;
    }
    for key in ["unpublished", "leaving"] {
        if let Some(id) = feed_id(&data[key]) {
            return RoomEvent::Gone(id);
        }
        if data[key] == "ok" {
            // Our own unpublish/leave acknowledged.
            return RoomEvent::Other;
        }
    }
    if let Some(id) = feed_id(&data["kicked"]) {
        return if id == own_id { RoomEvent::Kicked } else { RoomEvent::Gone(id) };
    }
    if data["publishers"].is_array() {
        return RoomEvent::Publishers(publishers(data));
    }
    RoomEvent::Other
}

/// The `streams` array of a subscriber's `attached` / `updated` answer or event.
pub fn sub_streams(data: &Value) -> Vec<SubStream> {
    let Some(list) = data["streams"].as_array() else { return Vec::new() };
    list.iter()
        .filter_map(|s| {
            Some(SubStream {
                mid: s["mid"].as_str()?.to_owned(),
                kind: s["type"].as_str().unwrap_or("").to_owned(),
                feed_id: feed_id(&s["feed_id"]),
                feed_display: s["feed_display"].as_str().map(str::to_owned),
                codec: s["codec"].as_str().map(str::to_owned),
                active: s["active"].as_bool().unwrap_or(true),
            })
        })
        .collect()
}

/// SSRCs announced per m-line of an SDP (`a=mid:` + `a=ssrc:`): how an incoming track is tied to its mid.
pub fn sdp_ssrcs_by_mid(sdp: &str) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = Vec::new();
    let mut cur: Option<(Option<String>, Vec<u32>)> = None;
    let flush = |cur: &mut Option<(Option<String>, Vec<u32>)>, out: &mut Vec<(String, Vec<u32>)>| {
        if let Some((Some(mid), ssrcs)) = cur.take() {
            out.push((mid, ssrcs));
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            flush(&mut cur, &mut out);
            cur = Some((None, Vec::new()));
        } else if let Some(c) = cur.as_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                c.0 = Some(mid.to_owned());
            } else if let Some(rest) = line.strip_prefix("a=ssrc:")
                && let Some(ssrc) = rest.split(' ').next().and_then(|s| s.parse().ok())
                && !c.1.contains(&ssrc)
            {
                c.1.push(ssrc);
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn publishers_with_and_without_media() {
        let d = json!({"videoroom": "event", "publishers": [
            {"id": 11, "display": "alice", "streams": [{"type": "audio", "mid": "0"}, {"type": "video", "mid": "1"}]},
            {"id": 12, "display": "Deepfake Guard", "streams": [{"type": "data", "mid": "0"}]},
            {"id": "13", "streams": [{"type": "video", "mid": "0", "disabled": true}]},
        ]});
        let p = publishers(&d);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].id, p[0].display.as_deref(), p[0].has_media), (11, Some("alice"), true));
        assert!(!p[1].has_media, "a data-only publisher has nothing to analyse");
        assert_eq!((p[2].id, p[2].has_media), (13, false));
        assert_eq!(room_event(&d, 1), RoomEvent::Publishers(p));
    }

    #[test]
    fn a_publishers_video_codec_says_whether_it_can_be_judged() {
        let d = json!({"publishers": [
            {"id": 1, "streams": [{"type": "audio", "codec": "opus"}, {"type": "video", "codec": "VP8"}]},
            {"id": 2, "streams": [{"type": "audio", "codec": "opus"}]},
            {"id": 3, "streams": [{"type": "audio"}, {"type": "video", "codec": "vp9"}]},
            {"id": 4, "streams": [{"type": "video", "codec": "av1"}, {"type": "video", "codec": "h264", "disabled": true}]},
            {"id": 5},
        ]});
        let p = publishers(&d);
        let v: Vec<_> = p.iter().map(|p| (p.video_codec.as_deref(), p.video_decoded())).collect();
        assert_eq!(
            v,
            [(Some("vp8"), true), (None, false), (Some("vp9"), false), (Some("av1"), false), (Some(""), true)]
        );
    }

    #[test]
    fn departures_and_room_end() {
        assert_eq!(room_event(&json!({"videoroom": "event", "unpublished": 11}), 1), RoomEvent::Gone(11));
        assert_eq!(room_event(&json!({"videoroom": "event", "leaving": 12}), 1), RoomEvent::Gone(12));
        assert_eq!(room_event(&json!({"videoroom": "event", "leaving": "ok"}), 1), RoomEvent::Other);
        assert_eq!(room_event(&json!({"videoroom": "event", "kicked": 1}), 1), RoomEvent::Kicked);
        assert_eq!(room_event(&json!({"videoroom": "destroyed", "room": 4}), 1), RoomEvent::Destroyed);
    }

    #[test]
    fn subscriber_streams_and_ssrcs() {
        let d = json!({"videoroom": "updated", "streams": [
            {"type": "audio", "mid": "0", "feed_id": 11, "feed_display": "alice", "codec": "opus", "active": true},
            {"type": "video", "mid": "1", "feed_id": 11, "codec": "vp8"},
            {"type": "data", "mid": "2"},
            {"type": "video", "mid": "3", "feed_id": 12, "active": false},
        ]});
        let s = sub_streams(&d);
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].mid.as_str(), s[0].feed_id, s[0].codec.as_deref()), ("0", Some(11), Some("opus")));
        assert_eq!(s[2].feed_id, None);
        assert!(!s[3].active);
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ssrc:100 cname:janus\r\na=ssrc:100 msid:janus janus0\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=ssrc-group:FID 200 201\r\na=ssrc:200 cname:janus\r\na=ssrc:201 cname:janus\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert_eq!(
            sdp_ssrcs_by_mid(sdp),
            vec![("0".into(), vec![100]), ("1".into(), vec![200, 201]), ("2".into(), vec![])]
        );
    }
}
