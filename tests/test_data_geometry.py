"""The generated images are right: sprites move, grow and turn; scenes have floor, wall and a shaded object."""
from __future__ import annotations

import numpy as np

from trainables.data.generate import render
from trainables.data.render_dsprites import sprite_centres_px

SQUARE, ELLIPSE, HEART = 0, 1, 2


def sprites(rows):
    """Render dSprites from (shape, scale, orientation, posX, posY) tuples."""
    return render("dsprites", np.array([[0, *row] for row in rows])).astype(np.float64)


def centroid(image):
    ys, xs = np.nonzero(image)
    return xs.mean() + 0.5, ys.mean() + 0.5      # pixel centres


def test_sprite_centre_follows_posx_and_posy():
    centres = sprite_centres_px()
    assert 8 <= centres[0] <= 9 and 55 <= centres[-1] <= 56
    across = sprites([(SQUARE, 2, 0, x, 16) for x in range(32)])
    down = sprites([(SQUARE, 2, 0, 16, y) for y in range(32)])
    xs = np.array([centroid(im)[0] for im in across])
    ys = np.array([centroid(im)[1] for im in down])
    np.testing.assert_allclose(xs, centres, atol=0.5)   # an unrotated square is centred exactly
    np.testing.assert_allclose(ys, centres, atol=0.5)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    # moving in x leaves y alone and vice versa
    np.testing.assert_allclose([centroid(im)[1] for im in across], centres[16], atol=0.5)
    np.testing.assert_allclose([centroid(im)[0] for im in down], centres[16], atol=0.5)


def test_sprite_area_grows_with_scale():
    for shape in (SQUARE, ELLIPSE, HEART):
        areas = sprites([(shape, k, 0, 16, 16) for k in range(6)]).sum(axis=(1, 2))
        assert np.all(np.diff(areas) > 0), (shape, areas)
        # area goes with scale^2: scale 1 vs 0.5 is about 4x
        assert 3.2 < areas[-1] / areas[0] < 4.8, (shape, areas)
    square_side = np.sqrt(sprites([(SQUARE, 5, 0, 16, 16)]).sum())
    assert 15 <= square_side <= 17


def test_orientation_turns_the_sprite_and_the_heart_is_not_symmetric():
    hearts = sprites([(HEART, 5, o, 16, 16) for o in range(40)])
    distinct = {im.tobytes() for im in hearts[:39]}
    assert len(distinct) == 39                      # 0 and 2 pi are the same angle; the rest differ
    assert np.abs(hearts[0] - hearts[39]).sum() <= 2
    upright = hearts[0]
    half_turn = hearts[np.argmin(np.abs(np.linspace(0, 2 * np.pi, 40) - np.pi))]
    assert np.abs(upright - upright[::-1]).sum() > 20    # not mirror symmetric top/bottom
    assert np.abs(upright - half_turn).sum() > 20        # not symmetric under a half turn
    ellipses = sprites([(ELLIPSE, 5, o, 16, 16) for o in (0, 10)])
    ys, xs = np.nonzero(ellipses[0])
    assert np.ptp(xs) > 1.6 * np.ptp(ys)              # long axis horizontal at angle 0
    ys, xs = np.nonzero(ellipses[1])
    assert np.ptp(ys) > 1.6 * np.ptp(xs)              # about a quarter turn later it is vertical
    area = hearts.sum(axis=(1, 2))
    assert area.max() - area.min() < 0.1 * area.mean()   # turning keeps the area


def scenes(rows):
    """Render Shapes3D from (floor, wall, object, scale, shape, orientation) tuples, as floats."""
    return render("shapes3d", np.array(rows)).astype(np.float64)


def changed(a, b):
    return np.abs(a - b).sum(axis=-1) > 1


def test_floor_is_at_the_bottom_and_wall_behind():
    base, floor, wall = scenes([(0, 3, 6, 4, 0, 7), (5, 3, 6, 4, 0, 7), (0, 8, 6, 4, 0, 7)])
    floor_pixels, wall_pixels = changed(base, floor), changed(base, wall)
    assert floor_pixels[56:].all() and not floor_pixels[:16].any()
    assert wall_pixels[:16].all() and not wall_pixels[56:].any()
    assert not (floor_pixels & wall_pixels).any()
    rows_floor = np.nonzero(floor_pixels)[0].mean()
    rows_wall = np.nonzero(wall_pixels)[0].mean()
    assert rows_floor > 40 and rows_wall < 24


def test_object_is_in_the_middle_and_shaded_not_flat():
    for shape in range(4):
        a, b = scenes([(0, 3, 2, 4, shape, 7), (0, 3, 7, 4, shape, 7)])
        object_pixels = changed(a, b)
        ys, xs = np.nonzero(object_pixels)
        assert 60 < len(ys) < 900, (shape, len(ys))
        assert 22 < xs.mean() < 42 and 22 < ys.mean() < 46, (shape, xs.mean(), ys.mean())
        assert not object_pixels[:8].any() and not object_pixels[:, :8].any() and not object_pixels[:, 56:].any()
        brightness = a[object_pixels].sum(axis=-1)
        assert brightness.std() > 10, (shape, brightness.std())      # lit and shaded sides
    # the object's shadow darkens part of the floor
    lit, other_floor = scenes([(4, 3, 2, 7, 2, 7), (8, 3, 2, 7, 2, 7)])
    floor_brightness = lit[changed(lit, other_floor)].sum(axis=-1)
    assert floor_brightness.min() < 0.7 * np.median(floor_brightness)


def test_scale_shape_and_orientation_change_the_scene():
    small, large = scenes([(1, 2, 3, 0, 2, 7), (1, 2, 3, 7, 2, 7)])
    other = scenes([(1, 2, 9, 0, 2, 7), (1, 2, 9, 7, 2, 7)])
    assert changed(large, other[1]).sum() > 1.5 * changed(small, other[0]).sum()
    shapes = scenes([(1, 2, 3, 4, s, 7) for s in range(4)])
    assert all(changed(shapes[i], shapes[j]).sum() > 30 for i in range(4) for j in range(i + 1, 4))
    turns = scenes([(1, 2, 3, 4, 2, o) for o in (0, 7, 14)])   # even the sphere: the room turns
    assert changed(turns[0], turns[1]).sum() > 50 and changed(turns[1], turns[2]).sum() > 50
    assert changed(turns[0], turns[2][:, ::-1]).sum() < changed(turns[0], turns[2]).sum()  # mirror views
