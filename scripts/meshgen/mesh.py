"""The face rig: the 468 FaceMesh landmarks of the photo, three rings of extra points around the face, a
triangulation of all of them, and the deformation of the points for given articulation / blink / brow / head
pose parameters. The renderer (warp.py) maps the photo through the triangles (piecewise affine).

All displacement fields are written in the face's own frame (u along the eye line, v down the face, origin
between the inner lips) and are continuous everywhere except across the mouth opening (the triangles
between the inner lips are removed: that hole is where the mouth interior is painted)."""
import cv2
import numpy as np

# FaceMesh (MediaPipe 468) indices
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
OUTER_LIPS = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
EYES = {  # outer corner, inner corner, upper lid (outer->inner), lower lid (outer->inner)
    "right": (33, 133, [246, 161, 160, 159, 158, 157, 173], [7, 163, 144, 145, 153, 154, 155]),
    "left": (263, 362, [466, 388, 387, 386, 385, 384, 398], [249, 390, 373, 374, 380, 381, 382]),
}
BROWS = {"right": [70, 63, 105, 66, 107, 46, 53, 52, 65, 55],
         "left": [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]}
FOREHEAD, CHIN, SUBNASALE, NOSE_TIP = 10, 152, 2, 1
FACE_SIDES = (234, 454)
EYE_LINE = (33, 263)


def smooth(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _interp(xq, xs, ys):
    o = np.argsort(xs)
    return np.interp(xq, np.asarray(xs)[o], np.asarray(ys)[o])


class Rig:
    def __init__(self, lm, p):
        """lm: (468,3) landmarks in base-image px (x, y, z); p: the rig's seeded parameters (cli.variation)."""
        self.p = p
        P = lm[:, :2].astype(np.float64)
        z = lm[:, 2].astype(np.float64)
        self._z_raw = z - np.median(z)
        ex = P[EYE_LINE[1]] - P[EYE_LINE[0]]
        ex /= np.linalg.norm(ex)
        ey = np.array([-ex[1], ex[0]])
        self.ex, self.ey = ex, ey
        self.O = (P[13] + P[14]) / 2
        uv = np.stack([(P - self.O) @ ex, (P - self.O) @ ey], 1)
        self.uv0 = uv
        u, v = uv[:, 0], uv[:, 1]
        self.fh = fh = v[CHIN] - v[FOREHEAD]
        self.fw = fw = abs(u[FACE_SIDES[1]] - u[FACE_SIDES[0]])
        self.uc = (u[78] + u[308]) / 2
        self.hw = (u[308] - u[78]) / 2
        self.hwo = (u[291] - u[61]) / 2
        su = np.r_[u[INNER_UPPER], u[INNER_LOWER]]
        sv = np.r_[v[INNER_UPPER], v[INNER_LOWER]]
        grid = np.linspace(u[78], u[308], 21)
        self.seam_u = grid
        self.seam_v = (_interp(grid, u[INNER_UPPER], v[INNER_UPPER]) + _interp(grid, u[INNER_LOWER], v[INNER_LOWER])) / 2
        del su, sv
        vs = self.vs(u)
        self.h_up = max(self.vs(np.array([self.uc]))[0] - v[0], 0.02 * fh)
        self.h_lo = max(v[17] - self.vs(np.array([self.uc]))[0], 0.02 * fh)
        self.v_nose = v[SUBNASALE]
        self.v_chin = v[CHIN]
        # side of the lip seam: -1 upper, +1 lower, 0 on the seam (the mouth corners)
        side = np.sign(v - vs)
        side[INNER_UPPER] = -1
        side[INNER_LOWER] = 1
        near = (np.abs(v - vs) < 0.012 * fh) & (np.abs(u - self.uc) > 0.85 * self.hw)
        side[near] = 0
        side[[78, 308, 61, 291]] = 0
        self.side = side
        # constant per-point weights of the mouth fields
        x = (u - self.uc) / self.hw
        self.x = x
        self.taper = 1 - smooth((np.abs(u - self.uc) - 0.18 * fw) / (0.32 * fw))
        self.e = smooth((v - vs - self.h_lo) / max(self.v_chin - vs.mean() - self.h_lo, 1e-3))
        self.e = np.where(v > vs, smooth((v - vs - self.h_lo) / np.maximum(self.v_chin - vs - self.h_lo, 1e-3)), 0)
        self.g_up = smooth((v - self.v_nose) / max(self.vs(np.array([self.uc]))[0] - self.h_up - self.v_nose, 1e-3))
        self.f_c = smooth((v - (vs - 0.25 * fh)) / (0.25 * fh))
        ax = np.abs(x)
        self.phi = np.where(ax <= 1, x, np.sign(x) * np.clip(1 - (ax - 1) / 1.0, 0, 1))
        self.psi = np.exp(-((v - vs) / (0.09 * fh)) ** 2)
        xo = (u - self.uc) / self.hwo
        self.lens_o = np.clip(1 - xo ** 2, 0, 1)
        d = np.abs(v - vs)
        hl = np.where(side < 0, self.h_up, self.h_lo)
        self.pout_w = np.where(d <= hl, d / hl, np.clip(2 - d / hl, 0, 1)) * self.lens_o * side
        self.z = self._smooth_depth(u, v, self._z_raw) * p.get("depth", 0.7)
        self._eye_fields(u, v)
        self._brow_fields(u, v)
        self._rings(P)

    # ---------------------------------------------------------------- geometry helpers
    def vs(self, u):
        return np.interp(u, self.seam_u, self.seam_v)

    def lens(self, power):
        return np.clip(1 - self.x ** 2, 0, 1) ** power

    def _smooth_depth(self, u, v, z):
        """The depth used for head rotation: a cubic surface fitted to FaceMesh's z (smooth, so neighbouring
        points cannot cross when the head turns: the warp cannot show self-occlusion), plus the landmarks'
        own relief (the nose) clipped and faded out towards the face outline, where FaceMesh's depth is noisy."""
        s = self.fw
        a, b = (u - self.uc) / s, (v - 0.35 * self.fh + self.fh * 0.5 - self.fh * 0.5) / s
        X = np.stack([np.ones_like(a), a, b, a * a, a * b, b * b, a ** 3, a * a * b, a * b * b, b ** 3], 1)
        coef, *_ = np.linalg.lstsq(X, z, rcond=None)
        fit = X @ coef
        oval = np.stack([u[FACE_OVAL], v[FACE_OVAL]], 1)
        c = oval.mean(0)
        rad = np.linalg.norm(oval - c, axis=1).mean()
        r = np.hypot(u - c[0], v - c[1]) / rad
        inner = 1 - smooth((r - 0.45) / 0.35)
        return fit + np.clip(z - fit, -0.12 * s, 0.12 * s) * inner

    def _eye_fields(self, u, v):
        """Per eye: the displacement per unit blink of every landmark (in v)."""
        self.blink_dv = np.zeros(len(u))
        self.lash = {}
        for name, (c_out, c_in, up, lo) in EYES.items():
            uu = np.r_[u[c_out], u[up], u[c_in]]
            vu = np.r_[v[c_out], v[up], v[c_in]]
            vl = np.r_[v[c_out], v[lo], v[c_in]]
            ul = np.r_[u[c_out], u[lo], u[c_in]]
            ew = abs(u[c_in] - u[c_out])
            um = (u[c_in] + u[c_out]) / 2
            upper = _interp(u, uu, vu)
            lower = _interp(u, ul, vl)
            close = upper + 0.78 * (lower - upper)          # where the lids meet
            lat = 1 - smooth((np.abs(u - um) - ew / 2) / (0.25 * ew))
            dv = np.zeros(len(u))
            above = v <= upper
            d_up = np.clip(upper - v, 0, None)
            dv_above = (close - upper) * np.exp(-(d_up / (0.38 * ew)) ** 2) * lat
            d_lo = np.clip(v - lower, 0, None)
            dv_below = (close - lower) * np.exp(-(d_lo / (0.22 * ew)) ** 2) * lat
            dv = np.where(above, dv_above, np.where(v >= lower, dv_below, 0))
            dv[up] = (close - upper)[up]
            dv[lo] = (close - lower)[lo]
            dv[[c_out, c_in]] = 0
            # keep the strongest field where the two eyes' regions would overlap
            self.blink_dv = np.where(np.abs(dv) > np.abs(self.blink_dv), dv, self.blink_dv)
            self.lash[name] = [c_out] + up + [c_in]

    def _brow_fields(self, u, v):
        self.brow_w = np.zeros(len(u))
        v_top = v[FOREHEAD] - 0.05 * self.fh
        for name, idx in BROWS.items():
            c_out, c_in, up, _ = EYES[name]
            bu, bv = u[idx], v[idx]
            b0, b1 = bu.min(), bu.max()
            bw = b1 - b0
            vb = _interp(np.clip(u, b0, b1), bu[5:], bv[5:])          # lower brow line
            vlid = _interp(np.clip(u, min(u[c_out], u[c_in]), max(u[c_out], u[c_in])),
                           np.r_[u[c_out], u[up], u[c_in]], np.r_[v[c_out], v[up], v[c_in]])
            below = np.clip((vlid - v) / np.maximum(vlid - vb, 1e-3), 0, 1)            # lid 0 -> brow 1
            above = 1 - 0.65 * smooth((vb - v) / max(np.mean(vb) - v_top, 1e-3))
            w = np.where(v >= vb, below, above)
            w = np.where(v > vlid, 0, w)
            lat = 1 - smooth((np.maximum(b0 - u, u - b1) + 0.15 * bw) / (0.45 * bw))
            self.brow_w = np.maximum(self.brow_w, w * np.clip(lat, 0, 1))

    def _rings(self, P):
        """Extra points: ring 1 (hair/ears/neck, moves with the head), ring 2 (partly), ring 3 (static box)."""
        oval = P[FACE_OVAL]
        c = oval.mean(0)
        self.centre = c
        r1 = c + 1.20 * (oval - c)
        r2 = c + 1.75 * (oval[::2] - c)
        lo, hi = r2.min(0) - 0.15 * self.fw, r2.max(0) + 0.15 * self.fw
        self.roi = (int(np.floor(lo[0])), int(np.floor(lo[1])), int(np.ceil(hi[0])) + 1, int(np.ceil(hi[1])) + 1)
        x0, y0, x1, y1 = self.roi
        box = []
        nx, ny = max(2, int((x1 - x0) / 60)), max(2, int((y1 - y0) / 60))
        for i in range(nx + 1):
            box += [[x0 + (x1 - x0) * i / nx, y0], [x0 + (x1 - x0) * i / nx, y1]]
        for j in range(1, ny):
            box += [[x0, y0 + (y1 - y0) * j / ny], [x1, y0 + (y1 - y0) * j / ny]]
        box = np.array(box)
        zo = np.full(len(FACE_OVAL), float(self.z[FACE_OVAL].mean()))
        self.extra = np.r_[r1, r2, box]
        self.extra_z = np.r_[zo, zo[::2], np.zeros(len(box)) + zo.mean()]
        self.extra_w = np.r_[np.full(len(r1), 0.9), np.full(len(r2), 0.35), np.zeros(len(box))]
        self.n_lm = len(P)
        self.P0 = np.r_[P, self.extra]

    # ---------------------------------------------------------------- deformation
    def deform(self, q):
        """q: dict of parameters for one frame -> (N,2) point positions in base-image px.
        Mouth: jaw, lip, press, width, uplift (visemes.CH); blink 0..1, brow 0..1; head: yaw, pitch, roll (deg),
        tx, ty (px)."""
        p = self.p
        fh = self.fh
        u = self.uv0[:, 0].copy()
        v = self.uv0[:, 1].copy()
        Dj = q["jaw"] * p["jaw_max"] * fh
        press = q["press"]
        U = p["uplift_max"] * fh * q["uplift"] * (1 - press)
        G = max(0.0, Dj * (1 - press) + q["lip"] * p["lip_max"] * fh * (1 - 0.9 * press) + U)
        up = p["up_frac"] * (G - U) + U
        k = p["corner"]
        lens = self.lens(p["lens_pow"])
        t = self.taper
        low = t * ((1 - self.e) * (k * Dj + lens * (G - up - k * Dj)) + self.e * Dj)
        upp = t * (k * Dj * (1 - lens) * self.f_c - up * lens * self.g_up)
        seam = t * k * Dj
        dv = np.where(self.side > 0, low, np.where(self.side < 0, upp, seam))
        w = q["width"]
        wmax = (p["spread"] if w > 0 else p["round"]) * self.hw
        narrow = p["narrow"] * self.hw * min(G / (0.06 * fh), 1.5)
        du = (wmax * w - narrow) * self.phi * self.psi
        if w < 0:
            dv += -w * p["pout"] * fh * self.pout_w
        self.last_gap = G
        dv_oval = dv[FACE_OVAL].copy()
        dv += q["blink"] * self.blink_dv
        dv += -q["brow"] * p["brow_max"] * fh * self.brow_w
        u += du
        v += dv
        # head pose: 3-D rotation of (u, v, z) about the head's centre, then back to the image
        pts = self._pose(u, v, self.z, q, 1.0)
        ex = self.extra - self.O
        eu, ev = ex @ self.ex, ex @ self.ey
        res = np.empty((len(self.P0), 2))
        res[: self.n_lm] = pts
        # rings: the same rotation, scaled by their weight (0 = static)
        for wgt in np.unique(self.extra_w):
            m = np.nonzero(self.extra_w == wgt)[0]
            if wgt == 0:
                res[self.n_lm + m] = self.extra[m]
                continue
            # the rings follow the jaw's drop of the face outline (the neck under the chin stretches less)
            jd = dv_oval if len(m) == len(FACE_OVAL) else dv_oval[::2]
            res[self.n_lm + m] = self._pose(eu[m], ev[m] + jd * (0.7 if wgt > 0.5 else 0.2), self.extra_z[m], q, wgt)
        return res

    def _pose(self, u, v, z, q, wgt):
        yaw, pitch, roll = (np.radians(q[k] * wgt) for k in ("yaw", "pitch", "roll"))
        uc, vc = self.uv_centre
        zc = self.z_centre
        vp = self.v_pivot
        # pitch about the neck (v_pivot, zc), yaw about the head's vertical axis, roll in the image plane
        dv, dz = v - vp, z - zc
        v1 = vp + dv * np.cos(pitch) - dz * np.sin(pitch)
        z1 = zc + dv * np.sin(pitch) + dz * np.cos(pitch)
        du, dz = u - uc, z1 - zc
        u2 = uc + du * np.cos(yaw) + dz * np.sin(yaw)
        du, dv = u2 - uc, v1 - vc
        u3 = uc + du * np.cos(roll) - dv * np.sin(roll)
        v3 = vc + du * np.sin(roll) + dv * np.cos(roll)
        xy = self.O + u3[:, None] * self.ex + v3[:, None] * self.ey
        xy += wgt * np.array([q.get("tx", 0.0), q.get("ty", 0.0)])
        return xy

    def finish(self):
        """Pose centre and the triangulation (after __init__; separate so the swap donor can skip it)."""
        u, v = self.uv0[:, 0], self.uv0[:, 1]
        oval_uv = self.uv0[FACE_OVAL]
        self.uv_centre = oval_uv.mean(0)
        self.z_centre = float(self.z[FACE_OVAL].mean() + 0.55 * self.fw)
        self.v_pivot = float(self.v_chin + 0.35 * self.fh)
        # triangulate with the mouth wide open, so no triangle crosses the opening; then drop the ones inside
        q = neutral()
        q.update(jaw=1.0, lip=1.0)
        Po = self.deform(q)
        x0, y0, x1, y1 = self.roi
        sub = cv2.Subdiv2D((x0 - 2, y0 - 2, x1 - x0 + 5, y1 - y0 + 5))
        for pt in Po:
            sub.insert((float(pt[0]), float(pt[1])))
        tl = sub.getTriangleList().reshape(-1, 3, 2)
        tree = {}
        key = lambda a: (round(float(a[0]), 3), round(float(a[1]), 3))  # noqa: E731
        for i, pt in enumerate(Po):
            tree.setdefault(key(pt), i)
        tris = []
        for t in tl:
            ids = [tree.get(key(a)) for a in t]
            if None in ids:
                # Subdiv2D returns the inserted coordinates as float32: match to the nearest point
                ids = [int(np.argmin(((Po - a) ** 2).sum(1))) for a in t]
                if min(((Po[ids] - t) ** 2).sum(1).max(), 1e9) > 0.01:
                    continue
            if len(set(ids)) == 3:
                tris.append(ids)
        tris = np.array(tris)
        hole = np.r_[Po[INNER_UPPER], Po[INNER_LOWER][::-1]].astype(np.float32)
        cen = Po[tris].mean(1)
        inside = np.array([cv2.pointPolygonTest(hole, (float(c[0]), float(c[1])), False) > 0 for c in cen])
        # orientation from the open mesh (the triangles of the opening are degenerate in a closed-mouth photo)
        a = _area(Po, tris)
        tris[a < 0] = tris[a < 0][:, ::-1]
        # the opening's triangles stay (they stretch the photo's own lip gap; the painted interior covers it)
        # but come last, so that they are drawn first and never hide the lips
        tris = np.r_[tris[~inside], tris[inside]]
        self.n_hole = int(inside.sum())
        self.tris = tris
        return self

    def fold_check(self, qs):
        """Smallest (signed area / neutral area) over the triangles for each pose in qs (negative: a fold)."""
        a0 = _area(self.P0, self.tris)
        big = np.abs(a0) > 0.5
        big[len(big) - self.n_hole:] = False
        return [float((_area(self.deform(q), self.tris)[big] / a0[big]).min()) for q in qs]


def _area(P, tris):
    a, b, c = P[tris[:, 0]], P[tris[:, 1]], P[tris[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def neutral():
    return {"jaw": 0.0, "lip": 0.0, "press": 0.0, "width": 0.0, "uplift": 0.0, "blink": 0.0, "brow": 0.0,
            "yaw": 0.0, "pitch": 0.0, "roll": 0.0, "tx": 0.0, "ty": 0.0}
