"""Relations per dataset version and their component tables (values, clamping, wrapping, depth)."""
from __future__ import annotations

import numpy as np
import pytest

from test_models_helpers import DSPRITES_V2, SHAPES3D_V2, StandInSpec
from trainables.errors import WeakdisError
from trainables.models import Relation, relation_targets, relations_for


def test_dsprites_relations_and_table_values():
    relations = relations_for(DSPRITES_V2)
    assert [r.name for r in relations] == ["move_left", "move_right", "move_up", "move_down", "change_shape"]
    table = relation_targets(DSPRITES_V2, relations)
    assert table.shape == (5, 27) and table.dtype == np.int64
    index = lambda s, x, y: s * 9 + x * 3 + y   # row-major, posY fastest
    left, right, up, down, shape = range(5)
    assert table[left, index(0, 1, 2)] == index(0, 0, 2)
    assert table[left, index(0, 0, 2)] == index(0, 0, 2)          # clamped at the left edge
    assert table[right, index(1, 0, 1)] == index(1, 1, 1)
    assert table[right, index(1, 2, 1)] == index(1, 2, 1)          # clamped at the right edge
    assert table[up, index(2, 1, 1)] == index(2, 1, 0)              # up = smaller posY class
    assert table[up, index(2, 1, 0)] == index(2, 1, 0)
    assert table[down, index(2, 1, 1)] == index(2, 1, 2)
    assert table[shape, index(0, 2, 2)] == index(1, 2, 2)
    assert table[shape, index(2, 1, 1)] == index(0, 1, 1)          # cyclic
    # every relation leaves the other factors alone
    combos = DSPRITES_V2.combination_factors()
    for r, relation in enumerate(relations):
        k = DSPRITES_V2.factor_names.index(relation.factor)
        others = [j for j in range(3) if j != k]
        assert (combos[table[r]][:, others] == combos[:, others]).all()


def test_depth_composes_steps():
    relations = relations_for(DSPRITES_V2)
    one = relation_targets(DSPRITES_V2, relations, depth=1)
    for depth in (0, 2, 3, 5):
        composed = np.arange(27)[None, :].repeat(5, 0)
        for _ in range(depth):
            composed = np.take_along_axis(one, composed, axis=1)
        assert (relation_targets(DSPRITES_V2, relations, depth=depth) == composed).all()
    two = relation_targets(DSPRITES_V2, relations, depth=2)
    assert two[1, 0] == 6          # (0,0,0) -> right twice -> (0,2,0)
    assert two[4, 0] == 18         # shape 0 -> 2
    assert relation_targets(DSPRITES_V2, relations, depth=3)[4, 0] == 0   # shape wraps back


def test_shapes3d_relations_only_for_relevant_factors():
    relations = relations_for(SHAPES3D_V2)
    assert [r.name for r in relations] == ["+hue", "-hue", "change_shape"]
    table = relation_targets(SHAPES3D_V2, relations)
    assert table[1, 0 * 4 + 3] == 9 * 4 + 3        # -hue wraps from 0 to 9
    assert table[0, 9 * 4 + 1] == 0 * 4 + 1        # +hue wraps from 9 to 0
    assert table[2, 5 * 4 + 3] == 5 * 4 + 0        # change_shape wraps 3 -> 0
    v3 = StandInSpec("shapes3d", "shapes3d:v3", ("object_hue", "scale", "shape"), (10, 3, 4))
    names = [r.name for r in relations_for(v3)]
    assert names == ["+hue", "-hue", "change_shape", "+scale", "-scale"]
    t3 = relation_targets(v3, relations_for(v3))
    assert t3[3, 0 * 12 + 2 * 4 + 1] == 0 * 12 + 2 * 4 + 1      # +scale clamps at the largest bin
    assert t3[4, 0 * 12 + 2 * 4 + 1] == 0 * 12 + 1 * 4 + 1


def test_relation_errors_name_the_problem():
    only_scale = StandInSpec("dsprites", "dsprites:odd", ("scale",), (6,))
    with pytest.raises(WeakdisError, match="none of the relevant factors"):
        relations_for(only_scale)
    with pytest.raises(WeakdisError, match="'mnist'"):
        relations_for(StandInSpec("mnist", "mnist:v1", ("digit",), (10,)))
    with pytest.raises(WeakdisError, match="mode='wrap'"):
        Relation("bad", "shape", 1, "wrap")
    with pytest.raises(WeakdisError, match="not relevant"):
        relation_targets(SHAPES3D_V2, [Relation("+scale", "scale", 1, "clamp")])


def test_every_single_factor_move_of_the_modular_paper():
    v3 = StandInSpec("dsprites", "dsprites:v3", ("shape", "posX", "posY", "orientation"), (3, 3, 3, 5))
    names = [r.name for r in relations_for(v3)]
    assert names == ["move_left", "move_right", "move_up", "move_down", "change_shape", "rotate_cw", "rotate_ccw"]
    table = relation_targets(v3, relations_for(v3))
    assert table[5, 4] == 0          # (0, 0, 0, 4) rotate_cw wraps to orientation bin 0
    assert table[6, 0] == 4          # rotate_ccw wraps the other way
    v5 = StandInSpec("shapes3d", "shapes3d:v5", ("floor_hue", "wall_hue", "object_hue", "shape", "scale"),
                     (10, 10, 10, 4, 3))
    names = [r.name for r in relations_for(v5)]
    assert names[-4:] == ["+floor_hue", "-floor_hue", "+wall_hue", "-wall_hue"]
    t5 = relation_targets(v5, relations_for(v5))
    stride_floor = 10 * 10 * 4 * 3
    assert t5[names.index("+floor_hue"), 9 * stride_floor] == 0      # floor hue 9 wraps to 0
    assert t5[names.index("-wall_hue"), 0] == 9 * 10 * 4 * 3        # wall hue 0 wraps to 9


def test_relation_ends_option():
    from trainables.models.relations import parse_relation_ends

    relations = relations_for(DSPRITES_V2)
    wrapped = parse_relation_ends("cyclic", relations)
    assert {r.mode for r in wrapped} == {"cyclic"}
    table = relation_targets(DSPRITES_V2, wrapped)
    # move_left from posX = 0 wraps to posX = 2 (the authors' table: "<^S" -> ">^S")
    assert table[0, 0] == 0 * 9 + 2 * 3 + 0
    assert relation_targets(DSPRITES_V2, relations)[0, 0] == 0          # clamped by default
    some = parse_relation_ends("move_left:cyclic, change_shape:clamp", relations)
    assert [r.mode for r in some] == ["cyclic", "clamp", "clamp", "clamp", "clamp"]
    assert parse_relation_ends("default", relations) == relations
    with pytest.raises(WeakdisError, match="relation_ends='move_sideways:cyclic'"):
        parse_relation_ends("move_sideways:cyclic", relations)
    with pytest.raises(WeakdisError, match="'move_left:wrap'"):
        parse_relation_ends("move_left:wrap", relations)
