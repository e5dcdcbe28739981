"""The frame around the face: layout of the photo in the output frame, background, the per-frame mesh warp,
camera shake, exposure drift, colour and sensor noise."""
import cv2
import numpy as np

from . import mesh as M
from . import warp as Wp

cv2.setNumThreads(1)


def layout(rgb, lm, W, H, v):
    """Scales and places the photo so the face has the wanted width and position; returns (base image (H,W,3),
    landmarks in frame px, info). Outside the photo: the photo mirrored and blurred ('mirror') or a wall
    (flat colour with a soft gradient and a little texture) with the photo's border feathered into it."""
    P = lm[:, :2]
    fw = np.linalg.norm(P[M.FACE_SIDES[1]] - P[M.FACE_SIDES[0]])
    s = v["face_width_px"] / fw
    c = P[M.FACE_OVAL].mean(0)
    cx, cy = v["face_centre"]
    A = np.array([[s, 0, cx - s * c[0]], [0, s, cy - s * c[1]]])
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    big = cv2.warpAffine(rgb, A, (W, H), flags=interp, borderMode=cv2.BORDER_REFLECT_101)
    ph, pw = rgb.shape[:2]
    # where the photo itself is (1) and how far outside it a pixel is (px)
    inside = cv2.warpAffine(np.ones((ph, pw), np.uint8) * 255, A, (W, H), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    dist = cv2.distanceTransform((inside < 128).astype(np.uint8), cv2.DIST_L2, 5)
    bg = v["bg"]
    cover = float((inside > 128).mean())
    info = {"scale": round(float(s), 4), "photo_cover": round(cover, 3), "bg": bg["kind"]}
    if bg["kind"] == "mirror" and cover < 0.7:
        # a small photo mirrored would show copies of the face: a wall in the photo's border colours instead
        edge = np.r_[rgb[:4].reshape(-1, 3), rgb[-4:].reshape(-1, 3), rgb[:, :4].reshape(-1, 3), rgb[:, -4:].reshape(-1, 3)]
        top = rgb[: max(4, ph // 6)].reshape(-1, 3).mean(0)
        bg = {"kind": "wall", "rgb1": [float(x) for x in top], "rgb2": [float(x) for x in edge.mean(0) * 0.9],
              "angle_deg": 90.0, "texture": bg.get("texture", 2.0), "texture_seed": bg["texture_seed"],
              "feather_px": bg["fallback_feather_px"]}
        info["bg"] = "wall (photo covers %.0f %% of the frame)" % (100 * cover)
    if bg["kind"] == "mirror":
        b1 = cv2.GaussianBlur(big, (0, 0), bg["blur_px"]).astype(np.float32)
        b2 = cv2.GaussianBlur(big, (0, 0), bg["blur_px"] * 3).astype(np.float32)
        w1 = np.clip(dist / 12.0, 0, 1)[..., None]
        w2 = np.clip((dist - 20) / 60.0, 0, 1)[..., None]
        out = big * (1 - w1) + (b1 * (1 - w2) + b2 * w2) * w1
    else:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        c1, c2 = np.asarray(bg["rgb1"], np.float32), np.asarray(bg["rgb2"], np.float32)
        ang = np.radians(bg["angle_deg"])
        t = ((xx - W / 2) * np.cos(ang) + (yy - H / 2) * np.sin(ang)) / max(W, H) + 0.5
        wall = c1 * (1 - t[..., None]) + c2 * t[..., None]
        rng = np.random.default_rng(bg["texture_seed"])
        tex = cv2.resize(rng.normal(0, 1, (H // 8 + 1, W // 8 + 1)).astype(np.float32), (W, H),
                         interpolation=cv2.INTER_CUBIC)
        wall += tex[..., None] * bg["texture"]
        a = np.clip(1 - dist / max(bg["feather_px"], 1.0), 0, 1)
        a = cv2.GaussianBlur((inside > 128).astype(np.float32) * a, (0, 0), bg["feather_px"] / 2)[..., None]
        out = big * a + wall * (1 - a)
    base = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    lm2 = lm.copy()
    lm2[:, 0] = P[:, 0] * s + A[0, 2]
    lm2[:, 1] = P[:, 1] * s + A[1, 2]
    lm2[:, 2] = lm[:, 2] * s
    return base, lm2, info


def lut(gain, gamma, temp, tint):
    x = np.arange(256, dtype=np.float64) / 255.0
    y = (x ** gamma) * gain
    mul = np.array([1 + temp, 1 + tint, 1 - temp])
    return np.clip(np.round(y[:, None] * mul[None, :] * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)


class Scene:
    def __init__(self, base, lm, rig, v, seed_noise):
        self.base = base
        self.H, self.W = base.shape[:2]
        self.rig = rig
        self.v = v
        self.warper = Wp.Warper(base, rig.P0, rig.tris, rig.roi, rig.n_lm, rig.n_hole)
        self.painter = Wp.MouthPainter(base, lm, rig.fh, v["mouth_paint"])
        self.lash_rgb = self._lash_colour(base, lm)
        cv2.setRNGSeed(int(seed_noise) & 0x7FFFFFFF)
        self.noise = np.empty((self.H, self.W, 3), np.int16)
        self.swap = None

    @staticmethod
    def _lash_colour(img, lm):
        P = lm[:, :2]
        pts = np.round(P[[159, 386, 145, 374]]).astype(int)
        H, W = img.shape[:2]
        vals = [img[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)].astype(np.float32) for x, y in pts]
        return np.minimum(np.mean(vals, 0) * 0.35, 70)

    def render(self, k, q):
        """Frame k (uint8 RGB) for the parameters q; returns (frame, deformed points)."""
        P = self.rig.deform(q)
        f = self.warper.warp(P)
        if self.swap is not None:
            self.swap.apply(f, P, k)
        self.painter.paint(f, P, q, self.rig.last_gap)
        Wp.paint_lashes(f, P, q["blink"], max(1.0, self.rig.fw / 90.0), self.lash_rgb)
        cam = self.v["camera"]
        if cam["shake_px"] > 0 or cam["zoom"] > 0:
            sx, sy, zs, rot = cam["track"][k]
            c, s_ = np.cos(np.radians(rot)) * (1 + zs), np.sin(np.radians(rot)) * (1 + zs)
            cx, cy = self.W / 2, self.H / 2
            A = np.array([[c, -s_, cx - c * cx + s_ * cy + sx], [s_, c, cy - s_ * cx - c * cy + sy]])
            f = cv2.warpAffine(f, A, (self.W, self.H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            P = P @ A[:, :2].T + A[:, 2]
        L = self.v["light"]
        g = L["gain"] * (1 + L["drift"][k])
        f = cv2.LUT(f, lut(g, L["gamma"], L["temp"], L["tint"]))
        sig = self.v["noise_sigma"]
        if sig > 0:
            cv2.randn(self.noise, 0, sig)
            f = np.clip(f.astype(np.int16) + self.noise, 0, 255).astype(np.uint8)
        return f, P
