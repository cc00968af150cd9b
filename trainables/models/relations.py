"""Relations between factor values: what the relational learner (ReL) is taught to do in latent space.

A relation changes one relevant factor by ``delta`` steps; ``mode`` says what happens at the ends of
the factor's range: ``"cyclic"`` wraps around (shape, hue), ``"clamp"`` stays at the end (position,
scale). Every prior component is one combination of relevant-factor values, so a relation maps each
component to exactly one target component (:func:`relation_targets`).

Every relation changes one factor (the modular paper: "all the relations that affect the change of a
single generative factor"); a version uses those whose factor is relevant, so dsprites:v3/v4 gain the
orientation moves and shapes3d:v5 the floor and wall hue moves. ``relation_ends`` overrides the end
behaviour: ``"cyclic"`` or ``"clamp"`` for every relation (the authors' code wraps positions), or
``"name:mode,name:mode"`` per relation.

dSprites ``posY``: the official file (and our generator) draws ``posY`` class 0 at the top row of the
image, larger classes lower down; ``move_up`` therefore lowers the ``posY`` class by one and
``move_down`` raises it. ``posX`` class 0 is the left edge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from trainables.data.versions import combination_index
from trainables.errors import WeakdisError

RELATION_MODES = ("cyclic", "clamp")


@dataclass(frozen=True)
class Relation:
    """Move factor ``factor`` by ``delta`` value steps; ``mode`` is ``"cyclic"`` or ``"clamp"``."""

    name: str
    factor: str
    delta: int
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in RELATION_MODES:
            raise WeakdisError(f"relation {self.name!r}: mode={self.mode!r}; expected one of cyclic, clamp")

    def apply(self, values: np.ndarray, size: int) -> np.ndarray:
        """The factor values after one application of the relation (``values`` in ``[0, size)``)."""
        moved = np.asarray(values, dtype=np.int64) + self.delta
        if self.mode == "cyclic":
            return np.mod(moved, size)
        return np.clip(moved, 0, size - 1)


# The relations of each dataset (relational paper, section 4.1); only those whose factor is relevant
# in a version are used.
DATASET_RELATIONS: dict[str, tuple[Relation, ...]] = {
    "dsprites": (
        Relation("move_left", "posX", -1, "clamp"),
        Relation("move_right", "posX", +1, "clamp"),
        Relation("move_up", "posY", -1, "clamp"),
        Relation("move_down", "posY", +1, "clamp"),
        Relation("change_shape", "shape", +1, "cyclic"),
        Relation("rotate_cw", "orientation", +1, "cyclic"),
        Relation("rotate_ccw", "orientation", -1, "cyclic"),
    ),
    "shapes3d": (
        Relation("+hue", "object_hue", +1, "cyclic"),
        Relation("-hue", "object_hue", -1, "cyclic"),
        Relation("change_shape", "shape", +1, "cyclic"),
        Relation("+scale", "scale", +1, "clamp"),
        Relation("-scale", "scale", -1, "clamp"),
        Relation("+floor_hue", "floor_hue", +1, "cyclic"),
        Relation("-floor_hue", "floor_hue", -1, "cyclic"),
        Relation("+wall_hue", "wall_hue", +1, "cyclic"),
        Relation("-wall_hue", "wall_hue", -1, "cyclic"),
    ),
}


def parse_relation_ends(spec: str, relations: Sequence[Relation]) -> tuple[Relation, ...]:
    """``relations`` with the end behaviour ``spec`` asks for: ``"default"`` (as listed above),
    ``"cyclic"`` / ``"clamp"`` for all, or ``"name:mode,name:mode"`` for some."""
    text = str(spec).strip()
    if text == "default":
        return tuple(relations)
    if text in RELATION_MODES:
        return tuple(dataclasses.replace(r, mode=text) for r in relations)
    by_name = {r.name: r for r in relations}
    modes: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, mode = item.rpartition(":")
        if name not in by_name or mode not in RELATION_MODES:
            raise WeakdisError(
                f"relation_ends={spec!r}: {item!r} is invalid; expected 'default', 'cyclic', 'clamp' or "
                f"'name:mode' pairs with name in {', '.join(by_name)} and mode in {', '.join(RELATION_MODES)}")
        modes[name] = mode
    return tuple(dataclasses.replace(r, mode=modes.get(r.name, r.mode)) for r in relations)


def relations_for(spec: Any) -> tuple[Relation, ...]:
    """The relations of ``spec.dataset`` whose factor is among the version's relevant factors."""
    if spec.dataset not in DATASET_RELATIONS:
        raise WeakdisError(
            f"{spec.name}: no relations are defined for dataset {spec.dataset!r}; "
            f"expected one of {', '.join(DATASET_RELATIONS)}"
        )
    relevant = set(spec.factor_names)
    relations = tuple(r for r in DATASET_RELATIONS[spec.dataset] if r.factor in relevant)
    if not relations:
        raise WeakdisError(
            f"{spec.name}: none of the relevant factors {tuple(spec.factor_names)} has a relation; "
            "the relational learner needs at least one"
        )
    return relations


def relation_targets(spec: Any, relations: Iterable[Relation], depth: int = 1) -> np.ndarray:
    """``int64 [R, C]``: the component reached from component ``c`` by applying relation ``r``
    ``depth`` times in a row (depth 0 is the identity)."""
    if depth < 0:
        raise WeakdisError(f"relation depth={depth!r}; expected an integer >= 0")
    combos = np.asarray(spec.combination_factors(), dtype=np.int64)
    names = list(spec.factor_names)
    sizes = list(spec.factor_sizes)
    rows = []
    for relation in relations:
        if relation.factor not in names:
            raise WeakdisError(
                f"relation {relation.name!r} moves factor {relation.factor!r}, which is not relevant in "
                f"{spec.name} (relevant: {', '.join(names)})"
            )
        k = names.index(relation.factor)
        moved = combos.copy()
        for _ in range(depth):
            moved[:, k] = relation.apply(moved[:, k], sizes[k])
        rows.append(combination_index(moved, sizes))
    return np.stack(rows).astype(np.int64) if rows else np.zeros((0, len(combos)), dtype=np.int64)


# ------------------------------------------------------------------------------ binary relations
#
# HWF's relations (relational paper, Sections 3.2 and 4, Figure 9) take two digit codes and give the
# code of the result: z_out = ReL(z_in1, z_in2, onehot(relation)). Components 0..9 of the HWF versions
# are the digits 0..9, so a component index is the digit it stands for.

REL_OUTPUTS = ("modulo", "sign", "two_digit")
DIGITS = 10


@dataclass(frozen=True)
class BinaryRelation:
    """``a op b`` on digits; ``symbol`` is the HWF symbol of the operator."""

    name: str
    symbol: str

    def value(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        if self.symbol == "+":
            return a + b
        if self.symbol == "-":
            return a - b
        return a * b


BINARY_RELATIONS: dict[str, tuple[BinaryRelation, ...]] = {
    "hwf": (BinaryRelation("sum", "+"), BinaryRelation("difference", "-"), BinaryRelation("product", "times")),
}


def binary_relations_for(spec: Any) -> tuple[BinaryRelation, ...]:
    """The binary relations of ``spec.dataset`` (empty when it has none)."""
    return BINARY_RELATIONS.get(getattr(spec, "dataset", ""), ())


def rel_output_codes(output: str) -> int:
    """How many codes the ReL outputs: 1 (``modulo``, ``sign``: the digit of the result) or 2
    (``two_digit``: tens, units)."""
    if output not in REL_OUTPUTS:
        raise WeakdisError(f"rel_output={output!r} is invalid; expected one of {', '.join(REL_OUTPUTS)}")
    return 2 if output == "two_digit" else 1


def binary_relation_table(spec: Any, relations: Sequence[BinaryRelation], output: str = "modulo") -> np.ndarray:
    """``int64 [R, C, C, O]``: for relation r and operand components (a, b), the target component of
    each output code; -1 where an operand is no digit (the operators of ``hwf:v1``).

    ``modulo``: O = 1, the result modulo 10 (Figure 9). ``sign``: O = 2, the last digit of |result| and
    the sign class (1 when negative; not a component). ``two_digit``: O = 2, the tens and units digits
    of |result| (Figure 10)."""
    num_components = int(np.prod(spec.factor_sizes))
    if num_components < DIGITS:
        raise WeakdisError(f"{spec.name}: {num_components} components; binary relations need the ten digits")
    a, b = np.meshgrid(np.arange(DIGITS), np.arange(DIGITS), indexing="ij")
    table = np.full((len(relations), num_components, num_components, 1 if output == "modulo" else 2), -1, np.int64)
    rel_output_codes(output)
    for r, relation in enumerate(relations):
        value = relation.value(a, b)
        if output == "modulo":
            table[r, :DIGITS, :DIGITS, 0] = np.mod(value, DIGITS)
        elif output == "sign":
            table[r, :DIGITS, :DIGITS, 0] = np.abs(value) % DIGITS
            table[r, :DIGITS, :DIGITS, 1] = (value < 0).astype(np.int64)
        else:
            table[r, :DIGITS, :DIGITS, 0] = np.abs(value) // DIGITS
            table[r, :DIGITS, :DIGITS, 1] = np.abs(value) % DIGITS
    return table
