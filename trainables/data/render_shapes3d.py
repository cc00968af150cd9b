"""Procedural Shapes3D: a lit 3D scene (floor, back wall, shaded object) ray-cast per pixel.

Scene (y up, metres-ish): the floor is the plane y = 0, the wall the plane z = -WALL_DISTANCE facing
the camera, the object stands on the floor at the origin. The camera orbits the object at the
orientation angle (azimuth, degrees), so the floor/wall edge and the object's faces turn with it.
A directional light fixed in the world gives diffuse shading, a specular highlight on the object and
the object's shadow on the floor and wall; an ambient term keeps shadows coloured.

Speed. Geometry depends only on (scale, shape, orientation): 8 x 4 x 15 = 480 configurations. Each is
ray-cast once (2 x 2 samples a pixel for anti-aliasing) into four weight maps per pixel: how much of
the pixel is lit floor, lit wall, lit object and specular highlight. An image is then a weighted sum
of the three hue colours and white: cheap, vectorised, and exactly linear in the colours.
"""
from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
import torch

from trainables.data.factors import SHAPES3D

WALL_DISTANCE = 2.6
CAMERA_DISTANCE = 4.5
CAMERA_HEIGHT = 2.1
LOOK_AT = np.array([0.0, 0.55, 0.0])
FOCAL = 2.2                      # image-plane distance for a half-width of 1 (about 49 degrees FOV)
SUPERSAMPLE = 2
LIGHT = np.array([-0.45, 0.85, 0.55]) / np.linalg.norm([-0.45, 0.85, 0.55])
AMBIENT = 0.38
DIFFUSE = 0.62
SHADOW = 0.45                    # fraction of direct light left in the object's shadow
SPECULAR = 0.35
SHININESS = 24.0
NO_HIT = np.inf

FLOOR, WALL, OBJECT = 0, 1, 2


def hue_colours(saturation: float, value: float) -> np.ndarray:
    """float32 [10, 3]: RGB in [0, 1] of the 10 hue values (the factor's label values)."""
    hues = SHAPES3D.factors[0].values
    return np.asarray([colorsys.hsv_to_rgb(h, saturation, value) for h in hues], dtype=np.float32)


FLOOR_COLOURS = hue_colours(0.75, 0.95)
WALL_COLOURS = hue_colours(0.75, 0.95)
OBJECT_COLOURS = hue_colours(0.9, 1.0)


# --------------------------------------------------------------------------------------- geometry


def _camera_rays(azimuth_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin [3] and unit ray directions [64 * S, 64 * S, 3] (row 0 at the top)."""
    phi = np.deg2rad(azimuth_deg)
    origin = np.array([CAMERA_DISTANCE * np.sin(phi), CAMERA_HEIGHT, CAMERA_DISTANCE * np.cos(phi)])
    forward = LOOK_AT - origin
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    n = 64 * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / n * 2.0 - 1.0          # -1 .. 1 across the image
    sx = coords[None, :, None]
    sy = -coords[:, None, None]                             # rows go down
    directions = FOCAL * forward + sx * right + sy * up
    directions = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    return origin, directions.reshape(-1, 3)


def _solve_quadratic(a, b, c):
    """Smallest root > eps of a t^2 + b t + c (per ray), else inf; and the larger root."""
    disc = b * b - 4 * a * c
    hit = (disc >= 0) & (np.abs(a) > 1e-12)
    root = np.sqrt(np.where(hit, disc, 0.0))
    safe_a = np.where(hit, a, 1.0)
    t0 = (-b - root) / (2 * safe_a)
    t1 = (-b + root) / (2 * safe_a)
    return np.where(hit, t0, NO_HIT), np.where(hit, t1, NO_HIT)


def _first_positive(*candidates):
    """The smallest candidate t > eps, per ray, and which candidate it was."""
    stacked = np.stack([np.where(c > 1e-6, c, NO_HIT) for c in candidates])
    which = np.argmin(stacked, axis=0)
    return np.take_along_axis(stacked, which[None], axis=0)[0], which


def _hit_object(shape: int, scale: float, origin: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray distance to the object (inf on a miss) and the unit surface normal [R, 3] at the hit.

    ``origin`` is one point [3] or one per ray [R, 3]; ``d`` unit directions [R, 3].
    """
    o = np.broadcast_to(origin, d.shape)
    if shape == 0:       # cube, axis aligned, edge 1.0 * scale, standing on the floor
        half = 0.5 * scale
        lo = np.array([-half, 0.0, -half])
        hi = np.array([half, 2 * half, half])
        with np.errstate(divide="ignore", invalid="ignore"):
            t_lo = (lo - o) / d
            t_hi = (hi - o) / d
        t_near = np.minimum(t_lo, t_hi)
        t_far = np.maximum(t_lo, t_hi)
        t_enter = np.nanmax(t_near, axis=1)
        t_exit = np.nanmin(t_far, axis=1)
        hit = (t_enter <= t_exit) & (t_exit > 1e-6)
        t = np.where(hit, t_enter, NO_HIT)
        axis = np.nanargmax(t_near, axis=1)
        normal = np.zeros_like(d)
        normal[np.arange(len(d)), axis] = -np.sign(d[np.arange(len(d)), axis])
        return t, normal
    if shape == 2:       # sphere, radius 0.55 * scale, resting on the floor
        radius = 0.55 * scale
        centre = np.array([0.0, radius, 0.0])
        oc = o - centre
        t0, _ = _solve_quadratic(np.ones(len(d)), 2 * np.sum(oc * d, axis=1), np.sum(oc * oc, axis=1) - radius ** 2)
        point = o + d * np.where(np.isfinite(t0), t0, 0.0)[:, None]
        return t0, (point - centre) / radius
    if shape == 1:       # cylinder, vertical, radius 0.5 * scale, height 1.0 * scale
        return _capped_cylinder(o, d, radius=0.5 * scale, height=1.0 * scale)
    # capsule lying along x: a cylinder of radius r between two hemispheres
    radius, half_length = 0.36 * scale, 0.5 * scale
    return _capsule(o, d, radius=radius, half_length=half_length)


def _capped_cylinder(o, d, *, radius: float, height: float):
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2 * (o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2])
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - radius ** 2
    t_side, _ = _solve_quadratic(a, b, c)
    y_side = o[:, 1] + t_side * d[:, 1]
    t_side = np.where((y_side >= 0) & (y_side <= height), t_side, NO_HIT)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = (height - o[:, 1]) / d[:, 1]
    cap_point = o + d * np.where(np.isfinite(t_cap), t_cap, 0.0)[:, None]
    t_cap = np.where(cap_point[:, 0] ** 2 + cap_point[:, 2] ** 2 <= radius ** 2, t_cap, NO_HIT)
    t, which = _first_positive(t_side, t_cap)
    point = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    side_normal = np.stack([point[:, 0], np.zeros(len(d)), point[:, 2]], axis=1) / radius
    cap_normal = np.tile([0.0, 1.0, 0.0], (len(d), 1))
    return t, np.where((which == 0)[:, None], side_normal, cap_normal)


def _capsule(o, d, *, radius: float, half_length: float):
    centre_y = radius
    oy = o[:, 1] - centre_y
    a = d[:, 1] ** 2 + d[:, 2] ** 2
    b = 2 * (oy * d[:, 1] + o[:, 2] * d[:, 2])
    c = oy ** 2 + o[:, 2] ** 2 - radius ** 2
    t_body, _ = _solve_quadratic(a, b, c)
    x_body = o[:, 0] + t_body * d[:, 0]
    t_body = np.where(np.abs(x_body) <= half_length, t_body, NO_HIT)
    candidates = [t_body]
    centres = [np.array([-half_length, centre_y, 0.0]), np.array([half_length, centre_y, 0.0])]
    for centre in centres:
        oc = o - centre
        t_end, _ = _solve_quadratic(np.ones(len(d)), 2 * np.sum(oc * d, axis=1), np.sum(oc * oc, axis=1) - radius ** 2)
        candidates.append(t_end)
    t, which = _first_positive(*candidates)
    point = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    axis_point = np.stack([np.clip(point[:, 0], -half_length, half_length),
                           np.full(len(d), centre_y), np.zeros(len(d))], axis=1)
    return t, (point - axis_point) / radius


def _lit(normal: np.ndarray) -> np.ndarray:
    return np.clip(normal @ LIGHT, 0.0, None)


def scene_weights(scale_class: int, shape_class: int, orientation_class: int) -> np.ndarray:
    """float32 [4, 64, 64]: per pixel, the weight of floor colour, wall colour, object colour, white."""
    scale = SHAPES3D.factors[3].values[scale_class]
    azimuth = SHAPES3D.factors[5].values[orientation_class]
    origin, d = _camera_rays(azimuth)
    count = len(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[:, 1] < 0, -origin[1] / d[:, 1], NO_HIT)
        t_wall = np.where(d[:, 2] < 0, (-WALL_DISTANCE - origin[2]) / d[:, 2], NO_HIT)
    t_object, object_normal = _hit_object(shape_class, scale, origin, d)
    t, surface = _first_positive(t_floor, t_wall, t_object)
    surface = np.where(np.isfinite(t), surface, WALL)
    point = origin + d * np.where(np.isfinite(t), t, 0.0)[:, None]

    normals = np.empty_like(d)
    normals[surface == FLOOR] = [0.0, 1.0, 0.0]
    normals[surface == WALL] = [0.0, 0.0, 1.0]
    normals[surface == OBJECT] = object_normal[surface == OBJECT]
    direct = _lit(normals)
    # the object's shadow on the floor and the wall: a ray from the point toward the light
    background = surface != OBJECT
    shadowed = np.zeros(count, dtype=bool)
    if background.any():
        starts = point[background] + 1e-4 * normals[background]
        shadow_hit = _shadow_rays(shape_class, scale, starts)
        shadowed[np.flatnonzero(background)] = shadow_hit
    direct = np.where(shadowed, SHADOW * direct, direct)
    # gentle fall-off with distance so that the floor and wall read as surfaces in depth
    falloff = np.clip(1.15 - 0.035 * np.where(np.isfinite(t), t, 10.0), 0.75, 1.05)
    shade = (AMBIENT + DIFFUSE * direct) * np.where(surface == OBJECT, 1.0, falloff)
    half_vector = LIGHT - d
    half_vector /= np.linalg.norm(half_vector, axis=1, keepdims=True)
    specular = np.where(
        (surface == OBJECT) & ~shadowed,
        SPECULAR * np.clip(np.sum(normals * half_vector, axis=1), 0.0, None) ** SHININESS,
        0.0,
    )
    weights = np.zeros((4, count), dtype=np.float64)
    for material in (FLOOR, WALL, OBJECT):
        weights[material] = np.where(surface == material, shade, 0.0)
    weights[3] = specular
    s = SUPERSAMPLE
    weights = weights.reshape(4, 64, s, 64, s).mean(axis=(2, 4))
    return weights.astype(np.float32)


def _shadow_rays(shape_class: int, scale: float, starts: np.ndarray) -> np.ndarray:
    """bool [n]: does the ray from each start point toward the light hit the object?"""
    t, _ = _hit_object(shape_class, scale, starts, np.ascontiguousarray(np.broadcast_to(LIGHT, starts.shape)))
    return np.isfinite(t)


@lru_cache(maxsize=1)
def all_scene_weights() -> torch.Tensor:
    """float32 [8 * 4 * 15, 4, 64, 64] for every (scale, shape, orientation), row-major."""
    sizes = SHAPES3D.factor_sizes
    maps = [
        scene_weights(scale, shape, orientation)
        for scale in range(sizes[3]) for shape in range(sizes[4]) for orientation in range(sizes[5])
    ]
    return torch.from_numpy(np.stack(maps))


def render_shapes3d(classes: np.ndarray, *, weights: torch.Tensor | None = None) -> np.ndarray:
    """uint8 [n, 64, 64, 3]: the scenes of factor classes [n, 6] (official column order)."""
    classes = torch.as_tensor(np.asarray(classes, dtype=np.int64))
    sizes = SHAPES3D.factor_sizes
    if weights is None:
        weights = all_scene_weights()
    geometry = (classes[:, 3] * sizes[4] + classes[:, 4]) * sizes[5] + classes[:, 5]
    colours = torch.stack(
        [
            torch.from_numpy(FLOOR_COLOURS)[classes[:, 0]],
            torch.from_numpy(WALL_COLOURS)[classes[:, 1]],
            torch.from_numpy(OBJECT_COLOURS)[classes[:, 2]],
            torch.ones(len(classes), 3),
        ],
        dim=1,
    )                                                              # [n, 4, 3]
    image = torch.einsum("nkhw,nkc->nhwc", weights[geometry], colours)
    return image.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).numpy()
