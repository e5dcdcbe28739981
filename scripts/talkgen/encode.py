"""ffmpeg CLI encoding of rendered RGB frames + a wav into mp4 / webm / mkv / y4m."""
import os
import shutil
import subprocess

VF = ("scale=out_color_matrix=bt601:out_range=tv:"
      "flags=bicubic+accurate_rnd+full_chroma_int+bitexact,format=yuv420p")
TAGS = ["-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
        "-color_range", "tv"]
EXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


class EncodeError(RuntimeError):
    pass


def container(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".webm", ".mkv", ".mov"):
        raise EncodeError(f"--out {path}: unsupported extension '{ext}' (use .mp4, .webm or .mkv)")
    return ext


def output_args(path, crf, fps, threads=2):
    ext = container(path)
    gop = ["-g", str(int(round(2 * fps)))]
    if ext == ".webm":
        # libvpx's -crf is on a 4..63 scale; x264's 20..32 maps to about 10..38
        vcrf = int(round(10 + (crf - 20) * 28 / 12))
        v = ["-c:v", "libvpx", "-crf", str(max(4, min(63, vcrf))), "-b:v", "2M", "-deadline", "good",
             "-cpu-used", "8", "-threads", str(threads), "-auto-alt-ref", "0"]
        a = ["-c:a", "libopus", "-b:a", "64k"]
    else:
        v = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-threads", str(threads),
             "-x264-params", "sliced-threads=0"]
        a = ["-c:a", "aac", "-b:a", "128k"] if ext in (".mp4", ".mov") else ["-c:a", "libopus", "-b:a", "64k"]
    extra = ["-movflags", "+faststart"] if ext in (".mp4", ".mov") else []
    return ["-map", "0:v", "-map", "1:a", "-vf", VF, *TAGS, *v, *gop, *a, "-ar", "48000", "-ac", "1",
            *EXACT, *extra, path]


def y4m_args(path, frames):
    return ["-map", "0:v", "-vf", VF, "-frames:v", str(frames), "-f", "yuv4mpegpipe",
            "-strict", "-1", *EXACT, path]


class Encoder:
    """One ffmpeg process fed raw RGB frames on stdin, writing every requested output at once."""

    def __init__(self, W, H, fps, wav_path, outs, crf, y4m=None, y4m_frames=None):
        if shutil.which("ffmpeg") is None:
            raise EncodeError("'ffmpeg' not found: install it (Debian: apt-get install -y ffmpeg)")
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-framerate", str(fps), "-i", "pipe:0",
               "-i", wav_path]
        for o in outs:
            cmd += output_args(o, crf, fps)
        if y4m:
            cmd += y4m_args(y4m, y4m_frames)
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame):
        try:
            self.p.stdin.write(frame.tobytes())
        except BrokenPipeError:
            self.close()

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        err = self.p.stderr.read().decode(errors="replace")
        rc = self.p.wait()
        if rc != 0:
            raise EncodeError(f"ffmpeg failed (exit {rc}): {err.strip()}\ncommand: {' '.join(self.cmd)}")
