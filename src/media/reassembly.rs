//! RTP packets -> encoded video frames, for one track.
//!
//! The packets of a frame share an RTP timestamp, run in sequence from a partition head to the packet with
//! the marker bit. Frames come out in order, each once complete; a frame still incomplete when newer ones
//! pile up (or after `max_wait`) is given up and the next frame carries `after_loss` (the decoder must
//! restart at a keyframe). The codec's depacketizer (from `rtc`) turns the payloads into the bitstream.
//!
//! This replaces `rtc`'s `SampleBuilder` on the live path: that one preallocates two 65 536-entry rings
//! (~11.5 MiB) per track, which for a bot watching many participants is most of its memory.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::packetizer::Depacketizer;

/// One encoded frame.
#[derive(Debug)]
pub struct Frame {
    pub data: Bytes,
    pub rtp_ts: u32,
    /// Sequence number of its last packet.
    pub seq: u16,
    /// Arrival of its first packet.
    pub arrival: Instant,
    /// Frames (or packets) before this one were lost: decoding must restart at a keyframe.
    pub after_loss: bool,
}

struct Pending {
    ts: u32,
    arrival: Instant,
    /// (sequence number, marker, payload), kept in sequence order.
    packets: Vec<(u16, bool, Bytes)>,
}

/// Whether `a` comes before `b` in 16-bit sequence space.
fn seq_before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

pub struct FrameAssembler<D: Depacketizer> {
    dep: D,
    pending: VecDeque<Pending>,
    last_out: Option<u16>,
    loss: bool,
    max_pending: usize,
    max_wait: Duration,
    pub frames_lost: u64,
}

impl<D: Depacketizer> FrameAssembler<D> {
    /// `max_pending` frames may wait behind an incomplete one, for at most `max_wait`.
    pub fn new(dep: D, max_pending: usize, max_wait: Duration) -> Self {
        FrameAssembler {
            dep,
            pending: VecDeque::new(),
            last_out: None,
            loss: false,
            max_pending: max_pending.max(1),
            max_wait,
            frames_lost: 0,
        }
    }

    pub fn push(&mut self, now: Instant, seq: u16, ts: u32, marker: bool, payload: Bytes) {
        if self.last_out.is_some_and(|l| !seq_before(l, seq)) {
            return; // late or duplicate: its frame is gone already
        }
        let i = match self.pending.iter().position(|f| f.ts == ts) {
            Some(i) => i,
            None => {
                // Frames stay in order of their packets' sequence numbers.
                let at = self
                    .pending
                    .iter()
                    .position(|f| f.packets.first().is_some_and(|p| seq_before(seq, p.0)))
                    .unwrap_or(self.pending.len());
                self.pending.insert(at, Pending { ts, arrival: now, packets: Vec::with_capacity(8) });
                at
            }
        };
        let f = &mut self.pending[i];
        match f.packets.iter().position(|p| !seq_before(p.0, seq)) {
            Some(j) if f.packets[j].0 == seq => {} // duplicate
            Some(j) => f.packets.insert(j, (seq, marker, payload)),
            None => f.packets.push((seq, marker, payload)),
        }
    }

    fn complete(&self, f: &Pending) -> bool {
        let (Some(first), Some(last)) = (f.packets.first(), f.packets.last()) else { return false };
        if !self.dep.is_partition_head(&first.2) || !self.dep.is_partition_tail(last.1, &last.2) {
            return false;
        }
        f.packets.windows(2).all(|w| w[0].0.wrapping_add(1) == w[1].0)
    }

    /// The next frame in order, if it is complete (or the ones before it were given up).
    pub fn pop(&mut self, now: Instant) -> Option<Frame> {
        loop {
            let front = self.pending.front()?;
            if self.complete(front) {
                let f = self.pending.pop_front().expect("front exists");
                let first = f.packets[0].0;
                let gap = self.last_out.is_some_and(|l| l.wrapping_add(1) != first);
                let last = f.packets.last().expect("complete frames have packets").0;
                self.last_out = Some(last);
                let mut data = BytesMut::new();
                let mut bad = false;
                for (_, _, p) in &f.packets {
                    match self.dep.depacketize(p) {
                        Ok(b) => data.extend_from_slice(&b),
                        Err(_) => bad = true,
                    }
                }
                if bad || data.is_empty() {
                    self.frames_lost += 1;
                    self.loss = true;
                    continue;
                }
                let after_loss = std::mem::take(&mut self.loss) || gap;
                return Some(Frame { data: data.freeze(), rtp_ts: f.ts, seq: last, arrival: f.arrival, after_loss });
            }
            let stale = self.pending.len() > self.max_pending || now.duration_since(front.arrival) > self.max_wait;
            if !stale {
                return None;
            }
            let f = self.pending.pop_front().expect("front exists");
            if let Some(last) = f.packets.last() {
                self.last_out = Some(last.0);
            }
            self.frames_lost += 1;
            self.loss = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::codec::vp8::Vp8Packet;

    /// A VP8 payload: descriptor byte (S bit on the first packet of a frame), then data (at least 4 bytes in
    /// all, or the depacketizer calls it short).
    fn vp8(start: bool, body: &[u8]) -> Bytes {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn frames_in_order_reordered_packets_and_losses() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(Vp8Packet::default(), 3, Duration::from_millis(200));
        // Frame 1 (ts 1000): packets 10, 11, 12 arriving 11, 10, 12.
        a.push(t, 11, 1000, false, vp8(false, b"bbbb"));
        assert!(a.pop(t).is_none());
        a.push(t, 10, 1000, false, vp8(true, b"aaaa"));
        a.push(t, 12, 1000, true, vp8(false, b"cccc"));
        let f = a.pop(t).expect("frame 1 complete");
        assert_eq!((&f.data[..], f.rtp_ts, f.seq, f.after_loss), (&b"aaaabbbbcccc"[..], 1000, 12, false));
        // Frame 2 (ts 4000) loses packet 14; frame 3 (ts 7000) is complete but waits behind it...
        a.push(t, 13, 4000, false, vp8(true, b"dddd"));
        a.push(t, 15, 4000, true, vp8(false, b"ffff"));
        a.push(t, 16, 7000, true, vp8(true, b"gggg"));
        assert!(a.pop(t).is_none(), "frame 2 may still complete");
        // ...until frame 2 is given up; frame 3 then comes out marked.
        let later = t + Duration::from_millis(250);
        let f = a.pop(later).expect("frame 3 after giving up frame 2");
        assert_eq!((&f.data[..], f.after_loss), (&b"gggg"[..], true));
        assert_eq!(a.frames_lost, 1);
        // A late packet of the given-up frame is ignored; the next frame is clean.
        a.push(later, 14, 4000, false, vp8(false, b"eeee"));
        a.push(later, 17, 10000, true, vp8(true, b"hhhh"));
        let f = a.pop(later).expect("frame 4");
        assert_eq!((&f.data[..], f.after_loss), (&b"hhhh"[..], false));
        assert!(a.pop(later).is_none());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t = Instant::now();
        let mut a = FrameAssembler::new(Vp8Packet::default(), 3, Duration::from_millis(200));
        a.push(t, 65535, 1, false, vp8(true, b"xxxx"));
        a.push(t, 0, 1, true, vp8(false, b"yyyy"));
        let f = a.pop(t).expect("frame across the wrap");
        assert_eq!(&f.data[..], b"xxxxyyyy");
        a.push(t, 1, 2, true, vp8(true, b"zzzz"));
        assert!(!a.pop(t).unwrap().after_loss);
    }
}
