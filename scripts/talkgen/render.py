"""Frame rendering: mouth warp on the still photo, head motion, background, lighting, sensor noise.

Everything is vectorised (numpy + OpenCV); per frame: one remap of the mouth region, one affine warp of
the canvas into the output frame, a lighting LUT and additive noise."""
import cv2
import numpy as np

from . import face as F

cv2.setNumThreads(1)


def _smooth01(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class MouthRig:
    """Lip/jaw warp of one still image (the canvas), driven by a mouth opening a in [0,1].

    Works in a face frame (u towards the subject's left = image right, v down the face), centred between
    the inner lip centres 13/14. Per image column u it remaps v piecewise-linearly (inverse mapping with
    bilinear sampling): the region under the nose stays; the upper lip rises by up_frac*D at the centre;
    the lower lip and the jaw drop by D (the lip opening follows a lens shape between the mouth corners,
    the jaw a taper towards the sides of the face, the corners drop by corner_drop*D); under the chin the
    displacement fades out over 0.3 face heights. The gap opening between the inner lips is filled with
    a mouth interior (dark cavity, a hint of upper teeth and tongue). D = a * open_frac * face height."""

    def __init__(self, img, lm, params):
        self.img = img
        self.p = params
        P = lm[:, :2]
        ex = P[F.EYE_OUTER[1]] - P[F.EYE_OUTER[0]]
        ex = ex / np.linalg.norm(ex)
        ey = np.array([-ex[1], ex[0]])
        self.ex, self.ey = ex, ey
        self.O = (P[13] + P[14]) / 2
        uv = np.stack([(P - self.O) @ ex, (P - self.O) @ ey], 1)
        self.uv = uv
        self.fh = uv[F.CHIN, 1] - uv[F.FOREHEAD, 1]
        self.fw = abs(uv[F.FACE_SIDES[1], 0] - uv[F.FACE_SIDES[0], 0])
        # seam between the lips: midway between the inner upper and inner lower contours
        su = np.linspace(uv[78, 0], uv[308, 0], 24)
        vu = np.interp(su, *self._sorted(uv[F.INNER_UPPER]))
        vl = np.interp(su, *self._sorted(uv[F.INNER_LOWER]))
        seam_u, seam_v = su, (vu + vl) / 2
        self.uc = (uv[78, 0] + uv[308, 0]) / 2
        self.hw = (uv[308, 0] - uv[78, 0]) / 2 * params.get("mouth_width", 1.0)
        self.v_top = uv[F.SUBNASALE, 1] * 0.85          # just under the nose
        jaw_u, jaw_v = self._sorted(uv[F.JAW])
        self.fall = 0.30 * self.fh
        # region of interest (axis-aligned box around the warped area), in image px
        umax = 0.62 * self.fw
        vmin, vmax = self.v_top - 2, jaw_v.max() + self.fall + 2
        corners = np.array([[u, v] for u in (self.uc - umax, self.uc + umax) for v in (vmin, vmax)])
        pts = self.O + corners[:, :1] * ex + corners[:, 1:] * ey
        H, W = img.shape[:2]
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        self.box = (max(0, x0), max(0, y0), min(W, x1), min(H, y1))
        bx0, by0, bx1, by1 = self.box
        ys, xs = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
        dx, dy = xs - self.O[0], ys - self.O[1]
        self.U = (dx * ex[0] + dy * ex[1]).astype(np.float32)
        self.V = (dx * ey[0] + dy * ey[1]).astype(np.float32)
        du = self.U - self.uc
        self.lens = (np.clip(1 - (du / self.hw) ** 2, 0, 1) ** params.get("lens_pow", 1.0)).astype(np.float32)
        r = np.abs(du) / self.fw
        self.jaw = (1 - _smooth01((r - 0.22) / (0.62 - 0.22))).astype(np.float32)
        self.vm = np.interp(self.U, seam_u, seam_v).astype(np.float32)
        self.vj = np.interp(self.U, jaw_u, jaw_v).astype(np.float32)
        # the narrowing of the lips when open, weighted around the mouth line
        self.narrow_w = (self.lens * np.clip(1 - np.abs(self.V - self.vm) / (0.25 * self.fh), 0, 1)
                         * (self.U - self.uc)).astype(np.float32)
        # mouth interior colours, scaled to the brightness of the lips in the photo
        lip = F.LIPS_OUTER
        lp = self.O + uv[lip, :1] * ex + uv[lip, 1:] * ey
        lx, ly = np.clip(lp.mean(0).astype(int), 0, [W - 1, H - 1])
        patch = img[max(0, ly - 6):ly + 7, max(0, lx - 10):lx + 11].reshape(-1, 3).astype(np.float32)
        k = float(np.clip(patch.mean() / 120.0, 0.5, 1.4)) if len(patch) else 1.0
        self.interior = np.asarray(params.get("interior_rgb", (60, 22, 24)), np.float32) * k
        self.teeth = np.asarray(params.get("teeth_rgb", (200, 192, 180)), np.float32) * min(k, 1.1)
        self.tongue = np.asarray((150, 62, 66), np.float32) * k * 0.75

    @staticmethod
    def _sorted(pts):
        o = np.argsort(pts[:, 0])
        return pts[o, 0], pts[o, 1]

    def max_open_px(self):
        return self.p["open_frac"] * self.fh

    def warp(self, a):
        """Returns the warped region (h,w,3 uint8) for mouth opening a, and its box (x0,y0,x1,y1)."""
        bx0, by0, bx1, by1 = self.box
        if a <= 0:
            return self.img[by0:by1, bx0:bx1], self.box
        D = a * self.max_open_px()
        p = self.p
        lens, jaw, V, vm, vj = self.lens, self.jaw, self.V, self.vm, self.vj
        corner = (p["corner_drop"] * D) * jaw * (1 - lens)
        d_up = corner - (p["up_frac"] * D) * lens
        d_lo = corner + D * lens
        d_jaw = D * jaw
        vt, fall = np.float32(self.v_top), np.float32(self.fall)
        up_out = vm + d_up
        lo_out = vm + d_lo
        jaw_out = vj + d_jaw
        # piecewise-linear inverse map along v (regions are disjoint; the default is identity)
        vs = V.copy()
        m = (V > vt) & (V <= up_out)
        vs[m] = (vt + (V - vt) * (vm - vt) / np.maximum(up_out - vt, 1e-3))[m]
        m = (V > up_out) & (V < lo_out)
        vs[m] = vm[m]
        m = (V >= lo_out) & (V <= jaw_out)
        vs[m] = (vm + (V - lo_out) * (vj - vm) / np.maximum(jaw_out - lo_out, 1e-3))[m]
        m = (V > jaw_out) & (V < vj + fall)
        vs[m] = (vj + (V - jaw_out) * fall / np.maximum(fall - d_jaw, 1e-3))[m]
        us = self.U + self.narrow_w * np.float32(p["narrow"] * a)
        ex, ey, O = self.ex, self.ey, self.O
        mx = (O[0] + us * ex[0] + vs * ey[0]).astype(np.float32)
        my = (O[1] + us * ex[1] + vs * ey[1]).astype(np.float32)
        out = cv2.remap(self.img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # mouth interior between the inner lips, with 1 px soft edges
        gap = d_lo - d_up
        inside = (V > up_out - 0.5) & (V < lo_out + 0.5) & (gap > 0.05)
        if inside.any():
            Vi, gi, ui, li = V[inside], gap[inside], up_out[inside], lens[inside]
            alpha = np.clip(Vi - ui + 0.5, 0, 1) * np.clip(ui + gi - Vi + 0.5, 0, 1) * np.clip(gi, 0, 1)
            t = np.clip((Vi - ui) / np.maximum(gi, 1e-3), 0, 1)          # 0 at the upper lip, 1 at the lower
            col = self.interior[None, :] * (0.65 + 0.35 * np.abs(2 * t - 1))[:, None]
            wide = _smooth01((gi - 0.02 * self.fh) / (0.03 * self.fh))
            tongue = _smooth01((t - 0.55) / 0.45) * wide * 0.6 * li
            col += (self.tongue[None, :] - col) * tongue[:, None]
            th = np.minimum(p["teeth_frac"] * gi, 0.03 * self.fh)
            teeth = np.clip((ui + th - Vi) / np.maximum(th, 1e-3), 0, 1) * wide
            teeth *= np.clip(li * 1.6 - 0.4, 0, 1) * p["teeth_amount"]
            col += (self.teeth[None, :] - col) * teeth[:, None]
            o = out[inside].astype(np.float32)
            out[inside] = np.clip(o + (col - o) * alpha[:, None] + 0.5, 0, 255).astype(np.uint8)
        return out, self.box


def make_background(W, H, rng, kind, vary=True):
    """A static background image (H,W,3 uint8): plain, gradient, radial or noise."""
    def col():
        base = rng.uniform(40, 215)
        return np.clip(base + rng.normal(0, 18, 3), 0, 255)
    if not vary or kind == "plain":
        c = col() if vary else np.array([128, 128, 128], float)
        return (np.broadcast_to(c, (H, W, 3)).astype(np.uint8).copy(),
                {"kind": "plain", "rgb": [int(v) for v in c]})
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    c1, c2 = col(), col()
    if kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        t = (xx - W / 2) * np.cos(ang) + (yy - H / 2) * np.sin(ang)
        t = (t - t.min()) / (t.max() - t.min())
        info = {"kind": "gradient", "angle_deg": round(float(np.degrees(ang)), 1)}
    elif kind == "radial":
        cx, cy = rng.uniform(0.2, 0.8) * W, rng.uniform(0.1, 0.6) * H
        t = np.hypot(xx - cx, yy - cy)
        t = t / t.max()
        info = {"kind": "radial", "centre_frac": [round(float(cx / W), 3), round(float(cy / H), 3)]}
    else:  # low-frequency noise (a blotchy wall)
        g = rng.uniform(0, 1, (int(rng.integers(3, 7)), int(rng.integers(4, 9)))).astype(np.float32)
        t = np.clip(cv2.resize(g, (W, H), interpolation=cv2.INTER_CUBIC), 0, 1)
        info = {"kind": "noise"}
    img = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    img += rng.normal(0, 1.5, (H, W, 1)).astype(np.float32)   # a little grain so it is not flat
    info.update({"rgb1": [int(v) for v in c1], "rgb2": [int(v) for v in c2]})
    return np.clip(img, 0, 255).astype(np.uint8), info


def smooth_motion(rng, n, fps, amp, fmin=0.05, fmax=0.5, k=3):
    """Sum of k sinusoids with random frequencies and phases; peak |value| <= amp."""
    t = np.arange(n) / fps
    f = rng.uniform(fmin, fmax, k)
    ph = rng.uniform(0, 2 * np.pi, k)
    w = rng.uniform(0.3, 1.0, k)
    s = (w[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None])).sum(0)
    return amp * s / w.sum()


def lighting_lut(gain, gamma, temp):
    """(256,1,3) uint8 LUT for gain, gamma and colour temperature (temp > 0 warmer)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    y = x ** gamma * gain
    mul = np.array([1 + temp, 1 + 0.15 * temp, 1 - temp])
    return np.clip(np.round(y[:, None] * mul[None, :] * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)


def canvas_reach(v, W, H):
    """Half-size of the square canvas around the face centre that covers the output frame under any motion."""
    cx, cy = v["face_centre"]
    corner = max(np.hypot(x - cx, y - cy) for x in (0, W) for y in (0, H))
    move = v["motion_amp"]["trans_frac"] * W * 1.25
    return (corner + move) / v["scale_min"] + 16


class Scene:
    """The photo, prescaled so the face has the wanted width, on a canvas large enough to fill the output
    under any motion (the rest filled by a generated background or by the photo's own edges, blurred);
    renders frame k from the mouth opening a_k."""

    def __init__(self, rgb, lm, W, H, v, rng):
        self.W, self.H, self.v = W, H, v
        P = lm[:, :2]
        fw = np.linalg.norm(P[F.FACE_SIDES[1]] - P[F.FACE_SIDES[0]])
        s0 = v["face_width_px"] / fw
        ph, pw = rgb.shape[:2]
        nw, nh = max(1, int(round(pw * s0))), max(1, int(round(ph * s0)))
        arr = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s0 < 1 else cv2.INTER_CUBIC)
        sx, sy = nw / pw, nh / ph
        lm2 = lm.copy()
        lm2[:, 0] = (lm[:, 0] + 0.5) * sx - 0.5
        lm2[:, 1] = (lm[:, 1] + 0.5) * sy - 0.5
        centre = lm2[:, :2].mean(0)
        # canvas = the part of the plane that can reach the output frame under any motion
        reach = canvas_reach(v, W, H)
        cx0 = int(np.floor(centre[0] - reach))
        cy0 = int(np.floor(centre[1] - reach))
        cw = ch = int(np.ceil(2 * reach))
        px0, py0 = -cx0, -cy0                       # photo origin in the canvas
        ix0, iy0 = max(0, px0), max(0, py0)
        ix1, iy1 = min(cw, px0 + nw), min(ch, py0 + nh)
        sub = arr[iy0 - py0:iy1 - py0, ix0 - px0:ix1 - px0]
        if v["bg"]["kind"] == "extend":
            # extend the photo by repeating its edge pixels, more and more blurred with the distance
            # from the photo (like an out-of-focus background)
            ext = cv2.copyMakeBorder(sub, iy0, ch - iy1, ix0, cw - ix1, cv2.BORDER_REPLICATE)
            bp = v["bg"]["blur_px"]
            b1 = cv2.GaussianBlur(ext, (0, 0), bp).astype(np.float32)
            small = cv2.resize(ext, (max(1, cw // 8), max(1, ch // 8)), interpolation=cv2.INTER_AREA)
            b2 = cv2.resize(cv2.GaussianBlur(small, (0, 0), max(2.0, 5 * bp / 8)), (cw, ch),
                            interpolation=cv2.INTER_CUBIC).astype(np.float32)
            yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
            dist = np.maximum(np.maximum(ix0 - xx, xx - (ix1 - 1)), np.maximum(iy0 - yy, yy - (iy1 - 1)))
            w1 = np.clip(dist / 16.0, 0, 1)[..., None]
            w2 = np.clip((dist - 20) / 80.0, 0, 1)[..., None]
            far = b1 * (1 - w2) + b2 * w2
            canvas = np.clip(ext * (1 - w1) + far * w1 + 0.5, 0, 255).astype(np.uint8)
        else:
            canvas = v["bg_img"].copy()
            feather = max(2.0, v["bg"].get("feather_px", 6))
            yy, xx = np.mgrid[iy0:iy1, ix0:ix1].astype(np.float32)
            dx = np.minimum(xx - px0 + 0.5, px0 + nw - 0.5 - xx)
            dy = np.minimum(yy - py0 + 0.5, py0 + nh - 0.5 - yy)
            al = np.clip(np.minimum(dx, dy) / feather, 0, 1)[..., None]
            region = canvas[iy0:iy1, ix0:ix1].astype(np.float32)
            canvas[iy0:iy1, ix0:ix1] = (region + (sub - region) * al + 0.5).astype(np.uint8)
        lm2[:, 0] -= cx0
        lm2[:, 1] -= cy0
        self.lm = lm2                               # landmarks on the canvas (the swap fake's face mask)
        self.canvas_size = (cw, ch)
        self.base = np.ascontiguousarray(canvas)
        self.work = self.base.copy()
        self.centre = centre - [cx0, cy0]
        self.rig = MouthRig(self.base, lm2, v["mouth"])
        self.face_width = fw * s0
        # sensor noise: a pool of Gaussian noise, read at a random offset each frame
        sig = v["noise_sigma"]
        self.rng = rng
        n = W * H * 3
        self.pool = (np.round(rng.standard_normal(3 * n, dtype=np.float32) * sig).astype(np.int16)
                     if sig > 0 else None)
        L = v["light"]
        self.luts = None if (L["gain"] == 1 and L["gamma"] == 1 and L["temp"] == 0 and L["flicker_amp"] == 0) else L

    def transform(self, k):
        """Forward transform of frame k: canvas px -> output px (2x3)."""
        m = self.v["motion"]
        s = m["scale"][k]
        th = np.radians(m["rot_deg"][k])
        c, sn = np.cos(th), np.sin(th)
        A = s * np.array([[c, -sn], [sn, c]])
        t = np.array([m["x"][k], m["y"][k]]) - A @ self.centre
        return np.c_[A, t]

    def render(self, k, a):
        roi, (x0, y0, x1, y1) = self.rig.warp(a)
        self.work[y0:y1, x0:x1] = roi
        M = self.transform(k)
        f = cv2.warpAffine(self.work, M, (self.W, self.H), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        if self.luts is not None:
            L = self.luts
            f = cv2.LUT(f, lighting_lut(L["gain"] * L["flicker"][k], L["gamma"], L["temp"]))
        if self.pool is not None:
            o = int(self.rng.integers(0, len(self.pool) - f.size))
            g = f.astype(np.int16)
            g += self.pool[o:o + f.size].reshape(f.shape)
            f = np.clip(g, 0, 255).astype(np.uint8)
        mc = M[:, :2] @ self.rig.O + M[:, 2]
        return f, {"mouth_xy": [round(float(mc[0]), 1), round(float(mc[1]), 1)],
                   "face_w": round(float(self.face_width * self.v["motion"]["scale"][k]), 1), "M": M}
