"""Piecewise-affine warp of an image through a deformed triangle mesh, and the painting of what the still
photo does not have: the mouth interior (cavity, teeth, tongue) and the eyelash line of a closed eye.

Per frame: each destination triangle is rasterised (its index, cv2.fillConvexPoly, 1/16 px precision) into
an id image of the region of interest; every pixel gets the inverse affine map of its triangle (destination
-> source), which gives a dense sampling map for one cv2.remap. The piecewise-affine map is continuous across
shared edges, so the raster's edge decisions leave no seams."""
import cv2
import numpy as np

from . import mesh as M

cv2.setNumThreads(1)


def inverse_affines(dst, src, tris):
    """(T,2,3) affine maps taking each destination triangle onto its source triangle."""
    D = dst[tris]                                # (T,3,2)
    S = src[tris]
    A = np.concatenate([D, np.ones(D.shape[:2] + (1,))], 2)      # (T,3,3)
    det = np.linalg.det(A)
    bad = np.abs(det) < 1e-6
    if bad.any():
        A[bad] += np.eye(3)[None] * 1e-3
    X = np.linalg.solve(A, S)                    # (T,3,2): [x y 1] @ X = source
    return np.transpose(X, (0, 2, 1)), det


class Warper:
    """Warps `img` (H,W,3 uint8) from the mesh `src` (N,2) to `dst` inside roi (clipped to the image)."""

    def __init__(self, img, src, tris, roi, lm_count, n_hole=0):
        self.img = img
        self.src = np.asarray(src, np.float64)
        self.tris = tris
        H, W = img.shape[:2]
        x0, y0, x1, y1 = roi
        self.box = (max(0, x0), max(0, y0), min(W, x1), min(H, y1))
        bx0, by0, bx1, by1 = self.box
        self.ids = np.empty((by1 - by0, bx1 - bx0), np.int32)
        ys, xs = np.mgrid[by0:by1, bx0:bx1]
        self.xs = xs.astype(np.float32)
        self.ys = ys.astype(np.float32)
        self.n_lm = lm_count
        self.n_hole = n_hole

    def maps(self, dst, src=None):
        """Sampling maps (map_x, map_y float32 over the box) and the id image for destination points `dst`."""
        src = self.src if src is None else src
        bx0, by0, bx1, by1 = self.box
        aff, det = inverse_affines(dst, src, self.tris)
        ids = self.ids
        ids.fill(-1)
        P = np.round((dst - [bx0, by0]) * 16).astype(np.int32)
        # the mouth opening's triangles first, then small before large, so that collapsed triangles (a closed
        # eye, a closed mouth) never hide their neighbours
        area = np.abs(det)
        n = len(self.tris) - self.n_hole
        order = np.r_[np.arange(n, len(self.tris)), np.argsort(area[:n])]
        fill = cv2.fillConvexPoly
        tri_pts = P[self.tris]
        for t in order:
            fill(ids, tri_pts[t], int(t), cv2.LINE_8, 4)
        A = aff.reshape(-1, 6).astype(np.float32)
        A = np.vstack([A, np.array([[1, 0, 0, 0, 1, 0]], np.float32)])   # -1 (no triangle): identity
        a = A[ids]                                    # (h,w,6)
        xs, ys = self.xs, self.ys
        mx = a[..., 0] * xs + a[..., 1] * ys + a[..., 2]
        my = a[..., 3] * xs + a[..., 4] * ys + a[..., 5]
        return mx, my, ids

    def warp(self, dst, out=None):
        """Returns a copy of the image with the box warped to `dst`."""
        mx, my, ids = self.maps(dst)
        bx0, by0, bx1, by1 = self.box
        out = self.img.copy() if out is None else out
        out[by0:by1, bx0:bx1] = cv2.remap(self.img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return out


def _areas(P, tris):
    a, b, c = P[tris[:, 0]], P[tris[:, 1]], P[tris[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


# ------------------------------------------------------------------ mouth interior

class MouthPainter:
    """Paints the opening between the inner lips of the deformed mesh: a dark cavity (darker at the back),
    the upper teeth under the upper lip with faint gaps between the teeth, the lower teeth when the jaw is
    well open, the tongue at the bottom and its tip behind the upper teeth for th/l. Colours are scaled to
    the lips' brightness in the photo, so the mouth matches the picture's exposure."""

    def __init__(self, img, lm, fh, p):
        self.p = p
        self.fh = fh
        H, W = img.shape[:2]

        def sample(pts, r=2):
            out = []
            for x, y in np.clip(np.round(pts).astype(int), 0, [W - 1, H - 1]):
                out.append(img[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].reshape(-1, 3))
            return np.concatenate(out).astype(np.float32)

        P = lm[:, :2]
        lip = sample(np.vstack([(P[0] + P[13]) / 2, (P[14] + P[17]) / 2, (P[37] + P[82]) / 2, (P[267] + P[312]) / 2])).mean(0)
        skin = sample(P[[50, 280, 101, 330]], 3).mean(0)
        k = float(np.clip(lip.mean() / 125.0, 0.45, 1.4))
        ks = float(np.clip(skin.mean() / 165.0, 0.55, 1.15))
        self.k = k
        self.cavity = np.asarray(p["cavity_rgb"], np.float32) * k
        self.teeth = np.asarray(p["teeth_rgb"], np.float32) * ks
        # a photo that shows its teeth (a smile): take their colour from the bright, pale pixels between the lips
        self.photo_teeth = False
        poly = np.round(P[M.OUTER_LIPS]).astype(np.int32)
        m = np.zeros((H, W), np.uint8)
        cv2.fillPoly(m, [poly], 1)
        px = img[m > 0].astype(np.float32)
        if len(px) > 20:
            sat = px.max(1) - px.min(1)
            pale = px[(px.mean(1) > 0.95 * skin.mean()) & (sat < 0.35 * px.max(1))]
            if len(pale) > 0.04 * len(px):
                self.teeth = pale.mean(0) * 0.92
                self.photo_teeth = True
        self.tongue = np.asarray(p["tongue_rgb"], np.float32) * k
        self.lip = lip

    def paint(self, frame, P, q, G):
        """frame: full image (modified in place); P: deformed points; q: channels; G: the opening the rig
        added, in px (the photo's own lip gap, if any, is not counted: below ~1 % of the face height the
        painted interior fades into the photo's own)."""
        if G < 0.2:
            return
        fade = float(np.clip(G / (0.012 * self.fh), 0, 1))
        fade = fade * fade * (3 - 2 * fade)
        up = P[M.INNER_UPPER]
        lo = P[M.INNER_LOWER]
        poly = np.r_[up, lo[::-1]]
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
        H, W = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 <= x0 + 1 or y1 <= y0 + 1:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        if not mask.any():
            return
        # mouth frame: corners define the axis
        c0, c1 = P[78], P[308]
        ax = c1 - c0
        L = max(np.linalg.norm(ax), 1e-3)
        ax = ax / L
        ay = np.array([-ax[1], ax[0]])
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rel_x = (xs - c0[0]) * ax[0] + (ys - c0[1]) * ax[1]
        rel_y = (xs - c0[0]) * ay[0] + (ys - c0[1]) * ay[1]
        uu = (up - c0) @ ax
        uv = (up - c0) @ ay
        lu = (lo - c0) @ ax
        lv = (lo - c0) @ ay
        top = np.interp(rel_x, uu, uv)
        bot = np.interp(rel_x, lu, lv)
        gap = np.maximum(bot - top, 1e-3)
        tpos = np.clip((rel_y - top) / gap, 0, 1)                 # 0 upper lip .. 1 lower lip
        xn = np.clip(rel_x / L, 0, 1)                             # 0 .. 1 corner to corner
        side = np.abs(2 * xn - 1)
        p = self.p
        # cavity: darker in the middle of the opening and towards the back
        shade = 0.55 + 0.45 * (np.abs(2 * tpos - 1) ** 1.5) + 0.25 * side ** 2
        col = self.cavity[None, None, :] * shade[..., None]
        # tongue: at the bottom, more visible when wide open; its tip raised for th / l
        fh = self.fh
        wide = np.clip((gap - 0.02 * fh) / (0.04 * fh), 0, 1)
        tongue = np.clip((tpos - (0.62 - 0.1 * wide)) / 0.3, 0, 1) * (1 - side ** 2) * (0.35 + 0.5 * wide)
        tip = q["tongue"] * np.exp(-((tpos - 0.3) / 0.22) ** 2) * np.exp(-((xn - 0.5) / 0.18) ** 2)
        tw = np.clip(np.maximum(tongue, tip), 0, 1)
        col += (self.tongue[None, None, :] * (0.85 + 0.15 * tpos[..., None]) - col) * tw[..., None]
        # upper teeth: a band under the upper lip, with faint dark gaps between the teeth
        th = np.minimum(p["teeth_h"] * fh, (0.22 + 0.38 * q["teeth"]) * gap)
        d = rel_y - top
        tooth = np.clip((th - d) / 0.9, 0, 1) * np.clip(d + 0.5, 0, 1)
        tooth *= np.clip(1.1 - side ** 1.5 * 1.2, 0, 1) * (0.3 + 0.6 * q["teeth"])
        tw_ = p["tooth_w"] * L
        gaps = 1 - 0.09 * np.exp(-(((rel_x - L / 2) / tw_ + 0.5) % 1.0 - 0.5) ** 2 / 0.004)
        # teeth in the mouth's shade: darker towards the corners and under the lip
        lit = (0.78 + 0.2 * np.clip(d / np.maximum(th, 1e-3), 0, 1)) * (1 - 0.35 * side ** 2)
        tcol = self.teeth[None, None, :] * (gaps * lit)[..., None]
        col += (tcol - col) * tooth[..., None]
        # lower teeth when the jaw is open enough
        lo_th = p["teeth_h"] * fh * 0.6 * wide
        dl = bot - rel_y
        lt = np.clip((lo_th - dl) / 0.9, 0, 1) * np.clip(dl + 0.5, 0, 1) * (1 - side ** 2) * 0.45 * wide
        col += (self.teeth[None, None, :] * 0.55 - col) * lt[..., None]
        a = (mask.astype(np.float32) * (fade / 255.0))[..., None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi + (col - roi) * a + 0.5, 0, 255).astype(np.uint8)


def paint_lashes(frame, P, blink, thick, lash_rgb):
    """A dark line along the closed lids (the lashes meeting), faded in as the eye closes."""
    if blink < 0.45:
        return
    alpha = min(1.0, (blink - 0.45) / 0.45) * 0.75
    for name, idx in (("right", [33, 246, 161, 160, 159, 158, 157, 173, 133]),
                      ("left", [263, 466, 388, 387, 386, 385, 384, 398, 362])):
        pts = P[idx]
        x0, y0 = np.floor(pts.min(0)).astype(int) - 4
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 5
        H, W = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 <= x0 or y1 <= y0:
            continue
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.polylines(m, [np.round((pts - [x0, y0]) * 16).astype(np.int32)], False, 255,
                      max(1, int(round(thick))), cv2.LINE_AA, 4)
        a = (m.astype(np.float32) / 255.0 * alpha)[..., None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi + (np.asarray(lash_rgb, np.float32) - roi) * a + 0.5, 0, 255).astype(np.uint8)
