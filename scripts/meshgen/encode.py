"""ffmpeg: raw RGB frames on stdin + a wav -> .mp4 (H.264 + AAC), .webm (VP8 + Opus), .mkv (H.264 + Opus), .y4m."""
import os
import shutil
import subprocess

VF = "scale=out_color_matrix=bt601:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int+bitexact,format=yuv420p"
TAGS = ["-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-color_range", "tv"]
EXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


class EncodeError(RuntimeError):
    pass


def check_out(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".webm", ".mkv"):
        raise EncodeError(f"--out {path}: unsupported extension '{ext}' (use .mp4, .webm or .mkv)")
    return ext


def out_args(path, crf, fps, gop_s):
    ext = check_out(path)
    g = ["-g", str(max(1, int(round(gop_s * fps))))]
    if ext == ".webm":
        q = max(4, min(63, int(round(8 + (crf - 18) * 2.3))))
        v = ["-c:v", "libvpx", "-crf", str(q), "-b:v", "2500k", "-deadline", "good", "-cpu-used", "6",
             "-threads", "1", "-auto-alt-ref", "0"]
        a = ["-c:a", "libopus", "-b:a", "64k"]
    else:
        v = ["-c:v", "libx264", "-preset", "faster", "-crf", str(crf), "-threads", "1", "-x264-params",
             "sliced-threads=0"]
        a = ["-c:a", "aac", "-b:a", "128k"] if ext == ".mp4" else ["-c:a", "libopus", "-b:a", "64k"]
    extra = ["-movflags", "+faststart"] if ext == ".mp4" else []
    return ["-map", "0:v", "-map", "1:a", "-vf", VF, *TAGS, *v, *g, *a, "-ar", "48000", "-ac", "1",
            *EXACT, *extra, path]


class Encoder:
    def __init__(self, W, H, fps, wav, outs, crf, gop_s, y4m=None, y4m_frames=None):
        if shutil.which("ffmpeg") is None:
            raise EncodeError("'ffmpeg' not found: install it (Debian: apt-get install -y ffmpeg)")
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{W}x{H}", "-framerate", str(fps), "-i", "pipe:0", "-i", wav]
        for o in outs:
            cmd += out_args(o, crf, fps, gop_s)
        if y4m:
            cmd += ["-map", "0:v", "-vf", VF, "-frames:v", str(y4m_frames), "-f", "yuv4mpegpipe", "-strict", "-1",
                    *EXACT, y4m]
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame):
        try:
            self.p.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        err = self.p.stderr.read().decode(errors="replace")
        rc = self.p.wait()
        if rc != 0:
            raise EncodeError(f"ffmpeg failed (exit {rc}): {err.strip().splitlines()[-1:] or ''}")
