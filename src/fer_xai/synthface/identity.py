"""Who a synthetic subject is: face proportions, skin, hair, clothes, background, lighting, pose.

Everything here is drawn from the subject's own RNG *before* any expression is known, so none
of it can carry label information. The result is a :class:`Subject`: a texture canvas in the
template frame (warped per image) plus output-frame layers that never move with the face.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .template import AUX_INDEX, N_MOVABLE, Template
from .warp import min_area_ratio

# Hair colours (linear-ish RGB 0..1): black, dark/mid brown, auburn, blond, grey.
HAIR_COLOURS = np.array(
    [[0.05, 0.04, 0.04], [0.12, 0.08, 0.06], [0.24, 0.16, 0.10], [0.34, 0.18, 0.10],
     [0.55, 0.44, 0.28], [0.50, 0.49, 0.47]]
)
# Background photographs bundled with scikit-image (no faces among them).
BACKGROUND_SOURCES = ("brick", "gravel", "grass", "coffee", "rocket", "coins", "page", "hubble_deep_field")


@dataclass(frozen=True)
class Subject:
    index: int
    id: str
    offsets: np.ndarray  # (N_MOVABLE, 2) identity moves of landmarks+aux, face units
    canvas: np.ndarray  # (C, C, 5) float32: premultiplied RGB, alpha, facial-skin weight
    background: np.ndarray  # (N, N, 3) float32, output frame (the camera does not move)
    lighting: np.ndarray  # (N, N, 3) float32 multiplicative light field, output frame
    lip_colour: np.ndarray  # (3,) used to shade the mouth opening
    pose: tuple[float, float, float, float]  # subject's habitual (angle rad, scale, dx px, dy px)
    info: dict


def _tn(rng: np.random.Generator, sd: float, size=None) -> np.ndarray | float:
    """Normal clipped at 2 SD: identity never leaves the range the warp is checked for."""
    return np.clip(rng.normal(0.0, sd, size), -2 * sd, 2 * sd)


def shape_offsets(tpl: Template, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Per-subject landmark/aux moves (face units) that change proportions, not expression."""
    pts = tpl.control[:N_MOVABLE].copy()
    base = pts.copy()
    x, y = pts[:, 0], pts[:, 1]
    p = {
        "face_width": float(_tn(rng, 0.045)),
        "jaw_length": float(_tn(rng, 0.06)),
        "forehead": float(_tn(rng, 0.08)),
        "eye_spacing": float(_tn(rng, 0.025)),
        "eye_size": float(_tn(rng, 0.07)),
        "brow_height": float(_tn(rng, 0.035)),
        "nose_length": float(_tn(rng, 0.035)),
        "nose_width": float(_tn(rng, 0.07)),
        "mouth_width": float(_tn(rng, 0.06)),
        "mouth_height": float(_tn(rng, 0.03)),
        "lip_thickness": float(_tn(rng, 0.12)),
    }
    x *= 1 + p["face_width"]
    y += p["jaw_length"] * np.clip(y - 0.6, 0, None)
    y += p["forehead"] * np.clip(y + 0.3, None, 0)  # only above the brows
    eyes = np.r_[36:48]
    for idx in (np.r_[36:42], np.r_[42:48]):
        c = pts[idx].mean(axis=0)
        pts[idx] = c + (pts[idx] - c) * (1 + p["eye_size"])
    side = np.sign(base[:, 0])
    pts[eyes, 0] += side[eyes] * p["eye_spacing"]
    brows = np.r_[17:27]
    pts[brows, 0] += side[brows] * p["eye_spacing"] * 0.5
    pts[brows, 1] += p["brow_height"]
    nose = np.r_[30:36]
    pts[nose, 1] += p["nose_length"]
    pts[np.r_[31:36], 0] *= 1 + p["nose_width"]
    mouth = np.r_[48:68]
    m_c = pts[mouth].mean(axis=0)
    pts[mouth, 0] = m_c[0] + (pts[mouth, 0] - m_c[0]) * (1 + p["mouth_width"])
    line = (pts[60, 1] + pts[64, 1]) / 2
    pts[mouth, 1] = line + (pts[mouth, 1] - line) * (1 + p["lip_thickness"])
    pts[mouth, 1] += p["mouth_height"]
    for name in ("r_nasolabial", "l_nasolabial"):
        pts[AUX_INDEX[name], 1] += p["mouth_height"] * 0.5
    # Slight asymmetry, as in every real face; not on the inner lips, whose 0.02 gap must stay open.
    pts[:60] += _tn(rng, 0.008, (60, 2))
    off = pts - base
    # A rare extreme combination may pinch a thin triangle (e.g. at a mouth corner): shrink the
    # whole identity move until every triangle keeps its orientation with some margin.
    moved = tpl.control.copy()
    for _ in range(10):
        moved[:N_MOVABLE] = base + off
        if min_area_ratio(tpl.control, moved, tpl.triangles) >= 0.05:
            break
        off = off * 0.7
        p["shrunk"] = p.get("shrunk", 1.0) * 0.7
    else:
        raise RuntimeError("identity shape folds the template triangulation")
    return off, p


def _units_grid(tpl: Template) -> tuple[np.ndarray, np.ndarray]:
    """Face-unit coordinates of every canvas pixel centre."""
    c = tpl.canvas
    ys, xs = np.mgrid[0:c, 0:c].astype(np.float32)
    u = tpl.from_output(np.stack([xs - tpl.pad, ys - tpl.pad], axis=-1))
    return u[..., 0], u[..., 1]


def _poly_mask(tpl: Template, polys_units: list[np.ndarray], ellipses=()) -> np.ndarray:
    """Anti-aliased float mask (canvas) of polygons / ellipses given in face units."""
    m = np.zeros((tpl.canvas, tpl.canvas), np.uint8)
    sh = 4
    for poly in polys_units:
        p = np.round(tpl.to_canvas(poly) * (1 << sh)).astype(np.int32)
        cv2.fillPoly(m, [p], 255, cv2.LINE_AA, shift=sh)
    for (cx, cy), (rx, ry) in ellipses:
        c = tpl.to_canvas(np.array([cx, cy]))
        cv2.ellipse(
            m, ((float(c[0]), float(c[1])), (2 * rx * tpl.iod_px, 2 * ry * tpl.iod_px), 0.0), 255, -1, cv2.LINE_AA
        )
    return m.astype(np.float32) / 255.0


def _streaks(rng: np.random.Generator, shape, along_y: float = 5.0) -> np.ndarray:
    """Zero-mean hair-like texture: fine strands plus broad locks, unit SD."""
    fine = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigmaX=0.6, sigmaY=along_y)
    locks = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigmaX=3.0, sigmaY=3 * along_y)
    n = fine / (fine.std() + 1e-6) * 0.5 + locks / (locks.std() + 1e-6)
    return n / (n.std() + 1e-6)


def _skin(tpl: Template, rng: np.random.Generator, face_mask: np.ndarray) -> tuple[np.ndarray, dict]:
    """Blend of the base textures with per-subject tone, contrast, pores and blemishes."""
    k = len(tpl.textures)
    i, j = rng.integers(0, k, 2)
    w = float(rng.beta(0.7, 0.7))
    rgb = (1 - w) * tpl.textures[i] + w * tpl.textures[j]
    info = {"textures": [tpl.texture_names[i], tpl.texture_names[j]], "blend": w}
    soft = float(rng.uniform(0.0, 0.8))
    if soft > 0.2:
        rgb = cv2.GaussianBlur(rgb, (0, 0), soft)
    # Pores / fine texture and blemishes live in the canvas so they move with the skin.
    grain = cv2.GaussianBlur(rng.normal(0, 1, rgb.shape[:2]).astype(np.float32), (0, 0), 0.6)
    rgb = rgb * (1 + float(rng.uniform(0.01, 0.05)) * grain[..., None] * face_mask[..., None])
    spots = np.zeros(rgb.shape[:2], np.float32)
    for _ in range(int(rng.poisson(rng.uniform(0, 25)))):
        u = np.array([rng.uniform(-0.9, 0.9), rng.uniform(-0.6, 1.4)])
        c = tpl.to_canvas(u)
        cv2.circle(spots, (int(c[0]), int(c[1])), int(rng.integers(0, 2)), float(rng.uniform(0.04, 0.15)), -1)
    spots = cv2.GaussianBlur(spots, (0, 0), 0.8) * face_mask
    rgb = rgb * (1 - spots[..., None])
    tone = float(rng.uniform(0.55, 1.12))
    tint = np.array([1 + _tn(rng, 0.05), 1.0, 1 - abs(_tn(rng, 0.06))], np.float32)
    contrast = float(rng.uniform(0.85, 1.15))
    rgb = np.clip((rgb - 0.5) * contrast + 0.5, 0, 1) * (tone * tint)
    info.update(tone=tone, tint=tint.tolist(), contrast=contrast, softness=soft)
    return np.clip(rgb, 0, 1).astype(np.float32), info


# One function for all layers: they draw from one RNG stream in a fixed order, which the dataset's
# bytes depend on; split into steps, that order would be spread over several signatures.
def _head_layers(tpl: Template, rng: np.random.Generator, skin: np.ndarray) -> tuple[np.ndarray, dict]:
    """Composite hair (back), face, neck, clothes and fringe on the canvas (premultiplied RGBA)."""
    shape68 = tpl.shape68
    jaw = shape68[0:17]
    centre = np.array([0.0, 0.3])
    jaw_out = centre + (jaw - centre) * 1.03
    top = np.array([[jaw_out[16, 0], -0.3], [jaw_out[0, 0], -0.3]])
    half_w = abs(jaw_out[0, 0])
    face = _poly_mask(tpl, [np.concatenate([jaw_out, top])], [((0.0, -0.3), (half_w, 0.95))])
    face = cv2.GaussianBlur(face, (0, 0), 0.8)
    ux, uy = _units_grid(tpl)

    neck_w = float(rng.uniform(0.42, 0.58))
    neck = _poly_mask(tpl, [np.array([[-neck_w, 0.9], [neck_w, 0.9], [neck_w * 1.05, 3.0], [-neck_w * 1.05, 3.0]])])
    shoulder_y = float(rng.uniform(2.05, 2.35))
    body = _poly_mask(
        tpl,
        [
            np.array(
                [
                    [-neck_w, shoulder_y - 0.15],
                    [neck_w, shoulder_y - 0.15],
                    [2.6, shoulder_y + 0.35],
                    [2.6, 4.0],
                    [-2.6, 4.0],
                    [-2.6, shoulder_y + 0.35],
                ]
            )
        ],
    )
    body = cv2.GaussianBlur(body, (0, 0), 1.0)

    # Neck: the face's own cheek colour, darker under the jaw (the shadow dlib's jaw points see).
    cheek = tpl.to_canvas(np.array([[-0.55, 0.55], [0.55, 0.55]])).astype(int)
    skin_rgb = np.mean([skin[c[1] - 2 : c[1] + 3, c[0] - 2 : c[0] + 3].reshape(-1, 3).mean(0) for c in cheek], axis=0)
    jaw_y = np.interp(ux, jaw_out[:, 0], jaw_out[:, 1])  # jaw x increases from point 0 to 16
    shadow = np.clip((uy - jaw_y) / 0.35, 0, 1)
    neck_rgb = (
        skin_rgb * (0.55 + 0.3 * shadow)[..., None] * (1 - 0.1 * (np.abs(ux) / neck_w).clip(0, 1) ** 2)[..., None]
    )
    cloth = np.clip(rng.uniform(0.05, 0.8, 3) * rng.uniform(0.4, 1.0), 0, 1).astype(np.float32)
    cloth_rgb = (
        cloth
        * (0.8 + 0.05 * _streaks(rng, ux.shape, 2.0)[..., None])
        * (1 - 0.25 * np.clip((uy - shoulder_y) / 2, 0, 1))[..., None]
    )

    hair_col = HAIR_COLOURS[rng.integers(0, len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)
    hair_tex = 1 + 0.22 * _streaks(rng, ux.shape)
    hair_rgb = np.clip(hair_col[None, None, :] * hair_tex[..., None], 0, 1)
    volume = float(rng.uniform(0.15, 0.4))
    hair_len = float(rng.choice([0.4, 1.0, 1.6, 2.3]))
    back = _poly_mask(tpl, [], [((0.0, -0.3), (half_w + volume, 1.0 + volume * 0.8))])
    if hair_len > 0.5:
        w0 = half_w + volume * 0.8
        back = np.maximum(
            back, _poly_mask(tpl, [np.array([[-w0, -0.3], [w0, -0.3], [w0 + 0.05, hair_len], [-w0 - 0.05, hair_len]])])
        )
    back = cv2.GaussianBlur(back, (0, 0), 1.2)
    # Volume shading: hair is darker towards its silhouette, lighter on top of the head.
    hair_rgb = hair_rgb * (0.6 + 0.55 * cv2.GaussianBlur(back, (0, 0), 0.25 * tpl.iod_px))[..., None]
    # Fringe: hair over the top of the head down to a wavy hairline that hides the photos' own
    # hair and hat but stays above the forehead band where AU1/AU2 act (anchored, never moved).
    hairline = float(rng.uniform(-0.84, -0.7))
    curve = float(rng.uniform(0.15, 0.45))
    wave = float(rng.uniform(0.0, 0.05)) * np.sin(ux * rng.uniform(4, 9) + rng.uniform(0, 6.3))
    side_drop = float(rng.uniform(-0.1, 0.45))  # how far the side hair comes down over the temples
    line_y = hairline + curve * ux**2 + wave
    line_y = np.where(np.abs(ux) > 0.88, np.maximum(line_y, side_drop), line_y)
    front = (uy < line_y).astype(np.float32) * _poly_mask(
        tpl, [], [((0.0, -0.3), (half_w + volume * 0.6, 1.0 + volume * 0.6))]
    )
    front = cv2.GaussianBlur(front, (0, 0), 1.0)

    # Channels: premultiplied RGB, alpha, and "visible facial skin" (where AU skin cues may be
    # painted: not on hair, clothes or background).
    rgba = np.zeros((tpl.canvas, tpl.canvas, 5), np.float32)

    def over(rgb: np.ndarray, a: np.ndarray, is_skin: bool = False) -> None:
        rgba[..., :3] = rgb * a[..., None] + rgba[..., :3] * (1 - a[..., None])
        rgba[..., 3] = a + rgba[..., 3] * (1 - a)
        rgba[..., 4] = (a if is_skin else 0) + rgba[..., 4] * (1 - a)

    over(hair_rgb, back)
    over(np.broadcast_to(cloth_rgb, rgba.shape[:2] + (3,)), body)
    over(neck_rgb, neck * (1 - body))
    over(skin, face, is_skin=True)
    over(hair_rgb * 0.9, front)
    info = {"hair_colour": hair_col.tolist(), "hair_length": hair_len, "hairline": hairline, "neck": neck_w}
    return rgba, info


@functools.cache
def _background_photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return img[..., :3].astype(np.float32) / 255.0


def _background(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Out-of-focus photo texture, colour gradient and blurred clutter shapes."""
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) / n
    c0, c1 = rng.uniform(0.1, 0.95, 3), rng.uniform(0.1, 0.95, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (np.cos(a) * (xs - 0.5) + np.sin(a) * (ys - 0.5)), 0, 1)[..., None]
    bg = (c0 * (1 - t) + c1 * t).astype(np.float32)
    name = str(rng.choice(BACKGROUND_SOURCES))
    photo = _background_photo(name)
    side = int(rng.uniform(0.35, 1.0) * min(photo.shape[:2]))
    y0 = int(rng.integers(0, photo.shape[0] - side + 1))
    x0 = int(rng.integers(0, photo.shape[1] - side + 1))
    crop = cv2.resize(photo[y0 : y0 + side, x0 : x0 + side], (n, n), interpolation=cv2.INTER_AREA)
    crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.8, 4.0))
    mix = float(rng.uniform(0.2, 0.8))
    bg = bg * (1 - mix) + (bg * 0.4 + crop * 0.9) * mix
    for _ in range(int(rng.integers(0, 7))):
        layer = np.zeros((n, n), np.float32)
        cx, cy = rng.uniform(0, n, 2)
        if rng.random() < 0.5:
            w, h = rng.uniform(0.05, 0.5, 2) * n
            cv2.rectangle(layer, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2), int(cy + h / 2)), 1.0, -1)
        else:
            ax = tuple(int(v) for v in rng.uniform(0.03, 0.25, 2) * n)
            cv2.ellipse(layer, (int(cx), int(cy)), ax, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.5, 5.0))[..., None]
        bg = bg * (1 - 0.8 * layer) + rng.uniform(0, 1, 3) * 0.8 * layer
    return np.clip(bg, 0, 1).astype(np.float32), {"background": name}


def _lighting(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Directional gradient + ambient level + colour temperature, fixed to the camera."""
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    a = rng.uniform(0, 2 * np.pi)
    strength = float(rng.uniform(0.05, 0.5))
    ambient = float(rng.uniform(0.78, 1.12))
    field = ambient * (1 + strength * (np.cos(a) * xs + np.sin(a) * ys) * 2)
    colour = np.array([1 + _tn(rng, 0.04), 1.0, 1 + _tn(rng, 0.05)], np.float32)
    info = {"light_angle": float(a), "light_strength": strength, "ambient": ambient}
    return np.clip(field, 0.3, 1.6)[..., None].astype(np.float32) * colour, info


def make_subject(tpl: Template, rng: np.random.Generator, index: int) -> Subject:
    """Subject number ``index`` drawn from ``rng`` (the generator passes ``default_rng([seed, index])``)."""
    offsets, shape_info = shape_offsets(tpl, rng)
    ux, uy = _units_grid(tpl)
    face_mask = np.clip(1.2 - np.hypot(ux / 1.05, (uy - 0.35) / 1.35), 0, 1).astype(np.float32)
    face_mask = np.minimum(face_mask * 4, 1)
    skin, skin_info = _skin(tpl, rng, face_mask)
    canvas, head_info = _head_layers(tpl, rng, skin)
    background, bg_info = _background(tpl.size, rng)
    lighting, light_info = _lighting(tpl.size, rng)
    pose = (
        float(_tn(rng, np.deg2rad(2.0))),
        float(1 + _tn(rng, 0.03)),
        float(_tn(rng, 0.015 * tpl.size)),
        float(_tn(rng, 0.015 * tpl.size)),
    )
    lip_c = tpl.to_canvas(np.array([0.0, 1.03])).astype(int)
    lip = canvas[lip_c[1] - 1 : lip_c[1] + 2, lip_c[0] - 3 : lip_c[0] + 4, :3].reshape(-1, 3).mean(0)
    info = {**shape_info, **skin_info, **head_info, **bg_info, **light_info}
    return Subject(index, f"s{index + 1:03d}", offsets, canvas, background, lighting, lip, pose, info)
