#!/usr/bin/env bash
# Write a private Janus 1.1.x config into OUTDIR (from Debian's /etc/janus), for the e2e harness:
#  - only the plugins/transports the harness needs, mDNS off, a small RTP port range;
#  - loopback-only by default: transports bound to 127.0.0.1, ICE enforced as in recipes/janus/setup-janus-conf.sh
#    (the harness runs Janus in a private network namespace with 127.0.0.2 on a non-loopback interface);
#  - static VideoRoom rooms (they survive a Janus restart): 4321 VP8 (VP9 allowed too, for a publisher that asks for
#    it: the guard does not decode VP9 and must say so) and 4322 H.264, 8 publishers, 512 kbps,
#    fir_freq = 2 (Janus asks every publisher for a keyframe every 2 s), notify_joining = true (participants, the guard
#    too, hear of every joining participant, viewers included: a cue to repeat the hello), plus Debian's demo room 1234.
# Usage: bash scripts/e2e/janus-conf.sh OUTDIR
# Knobs: JANUS_BIND (default 127.0.0.1; 0.0.0.0 for a demo on a machine with a real interface),
#        JANUS_ICE_ENFORCE (default "lo" as in the recipe; empty = let Janus gather on every interface).
set -euo pipefail
D=${1:?usage: janus-conf.sh OUTDIR}
BIND="${JANUS_BIND:-127.0.0.1}"
ENFORCE="${JANUS_ICE_ENFORCE-lo}"
for f in janus.jcfg janus.transport.websockets.jcfg janus.transport.http.jcfg janus.plugin.videoroom.jcfg; do
  [[ -f /etc/janus/$f ]] || { echo "janus-conf.sh: /etc/janus/$f missing: apt-get install -y janus" >&2; exit 1; }
done
rm -rf "$D"; mkdir -p "$D"
cp /etc/janus/janus.jcfg /etc/janus/janus.transport.websockets.jcfg /etc/janus/janus.transport.http.jcfg "$D"/
cd "$D"
sed -i "s|configs_folder = \"/etc/janus\"|configs_folder = \"$D\"|" janus.jcfg
if [[ -n "$ENFORCE" ]]; then
  sed -i "s|^\tice_ignore_list = \"vmnet\"|\tice_enforce_list = \"$ENFORCE\"\n\tignore_mdns = true|" janus.jcfg
else
  sed -i 's|^\tice_ignore_list = "vmnet"|\tice_ignore_list = "vmnet"\n\tignore_mdns = true|' janus.jcfg
fi
sed -i 's|^\t#rtp_port_range = "20000-40000"|\trtp_port_range = "20000-20999"|' janus.jcfg
sed -i 's|^\t#disable = "libjanus_voicemail.so,libjanus_recordplay.so"|\tdisable = "libjanus_voicemail.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_nosip.so,libjanus_lua.so,libjanus_duktape.so,libjanus_audiobridge.so,libjanus_streaming.so,libjanus_videocall.so,libjanus_textroom.so,libjanus_echotest.so"|' janus.jcfg
sed -i 's|^\t#disable = "libjanus_rabbitmq.so"|\tdisable = "libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so"|' janus.jcfg
sed -i 's|^\t#disable = "libjanus_jsonlog.so"|\tdisable = "libjanus_jsonlog.so"|' janus.jcfg
sed -i "s|^\t#ws_ip = \"192.168.0.1\".*|\tws_ip = \"$BIND\"|" janus.transport.websockets.jcfg
sed -i "s|^\t#ip = \"192.168.0.1\".*|\tip = \"$BIND\"|" janus.transport.http.jcfg
# every edit above must have landed (a changed Debian config would otherwise give a silently open or broken Janus)
grep -q "configs_folder = \"$D\"" janus.jcfg && grep -q 'ignore_mdns = true' janus.jcfg \
  && grep -q 'rtp_port_range = "20000-20999"' janus.jcfg \
  && grep -q "ws_ip = \"$BIND\"" janus.transport.websockets.jcfg && grep -qE "^\s*ip = \"$BIND\"" janus.transport.http.jcfg \
  || { echo "janus-conf.sh: /etc/janus/*.jcfg did not have the expected lines; check $D" >&2; exit 1; }
cat > janus.plugin.videoroom.jcfg <<'EOF'
# deepfake-guard e2e: static rooms (re-created by Janus at every start, so they survive a restart)
general: {
}
room-1234: {
	description = "Demo Room"
	publishers = 6
	bitrate = 128000
	fir_freq = 10
}
room-4321: {
	description = "deepfake-guard e2e (VP8)"
	publishers = 8
	bitrate = 512000
	fir_freq = 2
	notify_joining = true
	videocodec = "vp8,vp9"
	audiocodec = "opus"
}
room-4322: {
	description = "deepfake-guard e2e (H.264)"
	publishers = 8
	bitrate = 512000
	fir_freq = 2
	notify_joining = true
	videocodec = "h264"
	audiocodec = "opus"
}
EOF
echo "$D"
