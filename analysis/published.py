"""The numbers the two papers publish, for the tables that put a run beside them.

Sources (copied from the papers in /work/shared/papers, to the digits printed there):
- relational: Valenti & Bacciu, "Leveraging relational information for learning weakly disentangled
  representations" (WCCI 2022): Table 1 (DCI / MIG / SAP), Table 4 (AbsAE clustering accuracy and
  accepted ratio by alpha and tau), Table 5 (ReL relation accuracy and accepted ratio by alpha and depth).
- modular: "Modular weakly disentangled representations": Table 1 (relation accuracy of the ReL on
  dataset versions, previous work vs M-AE) and Table 2 (DCI / MIG / SAP with the M-AE row).
The HWF columns of Tables 4 and 5 are added below the others (``hwf``); a table shows them when its run
has HWF trials. Li et al. (2020)'s HWF row (ACC 0.997 / AR 1.0 in Table 4, 0.985 / 1.0 at depth 1 in
Table 5) is kept in ``HWF_LI_ET_AL``.
"""
from __future__ import annotations

# (label, weakdis model name or None for other authors' methods, source) -> {dataset: {metric: value}}
DISENTANGLEMENT: tuple[tuple[str, str | None, str, dict[str, dict[str, float]]], ...] = (
    ("β-VAE", "betavae", "relational Table 1",
     {"dsprites": {"dci": 0.4566, "mig": 0.602, "sap": 0.67}, "shapes3d": {"dci": 0.153, "mig": 0.270, "sap": 0.131}}),
    ("FactorVAE", "factorvae", "relational Table 1",
     {"dsprites": {"dci": 0.8942, "mig": 0.98, "sap": 0.61}, "shapes3d": {"dci": 0.371, "mig": 0.370, "sap": 0.402}}),
    ("Locatello et al. (2019b)", None, "relational Table 1",
     {"dsprites": {"dci": 0.533, "mig": 0.01, "sap": 0.01}, "shapes3d": {"dci": 0.48, "mig": 0.05, "sap": 0.08}}),
    ("Gabbay et al. (2021)", None, "relational Table 1",
     {"dsprites": {"dci": 0.8366, "mig": 0.14, "sap": 0.57}, "shapes3d": {"dci": 1.0, "mig": 0.3, "sap": 1.0}}),
    ("AbsAE", "absae", "relational Table 1",
     {"dsprites": {"dci": 0.9543, "mig": 0.994, "sap": 0.7728}, "shapes3d": {"dci": 0.6921, "mig": 0.6897, "sap": 0.5007}}),
    ("M-AE", "mae", "modular Table 2",
     {"dsprites": {"dci": 0.9732, "mig": 0.9721, "sap": 0.7877}, "shapes3d": {"dci": 0.7056, "mig": 0.6919, "sap": 0.5511}}),
)

# Modular paper, Table 1: version -> (factor combinations, AbsAE accuracy, AbsAE tau, M-AE accuracy, M-AE tau).
RELATION_ACCURACY_BY_VERSION: dict[str, tuple[int, float, int, float, int]] = {
    "dsprites:v2": (27, 0.592, 270, 0.724, 1000),
    "dsprites:v3": (135, 0.571, 1350, 0.751, 1000),
    "dsprites:v4": (1080, 0.491, 10800, 0.685, 1000),
    "shapes3d:v2": (40, 0.275, 400, 0.690, 1000),
    "shapes3d:v3": (120, 0.220, 1200, 0.653, 1000),
    "shapes3d:v5": (12000, 0.124, 12000, 0.633, 1000),
}

# Relational paper, Table 4: (alpha, tau) -> {dataset: (ACC, AR)}.
CLUSTERING: dict[tuple[float, int], dict[str, tuple[float, float]]] = {
    (0.0, 10): {"dsprites": (0.548, 1.0), "shapes3d": (0.115, 1.0)},
    (0.0, 20): {"dsprites": (0.554, 1.0), "shapes3d": (0.272, 1.0)},
    (0.0, 30): {"dsprites": (0.590, 1.0), "shapes3d": (0.370, 1.0)},
    (0.1, 10): {"dsprites": (0.592, 1.0), "shapes3d": (0.220, 0.749)},
    (0.1, 20): {"dsprites": (0.631, 0.999), "shapes3d": (0.478, 0.811)},
    (0.1, 30): {"dsprites": (0.642, 1.0), "shapes3d": (0.553, 0.873)},
    (0.3, 10): {"dsprites": (0.676, 0.991), "shapes3d": (0.617, 0.752)},
    (0.3, 20): {"dsprites": (0.700, 0.993), "shapes3d": (0.713, 0.780)},
    (0.3, 30): {"dsprites": (0.728, 0.993), "shapes3d": (0.779, 0.802)},
    (0.5, 10): {"dsprites": (0.865, 0.988), "shapes3d": (0.699, 0.753)},
    (0.5, 20): {"dsprites": (0.882, 0.990), "shapes3d": (0.853, 0.714)},
    (0.5, 30): {"dsprites": (0.891, 0.989), "shapes3d": (0.890, 0.781)},
    (0.7, 10): {"dsprites": (0.948, 0.994), "shapes3d": (0.821, 0.673)},
    (0.7, 20): {"dsprites": (0.937, 0.989), "shapes3d": (0.881, 0.738)},
    (0.7, 30): {"dsprites": (0.966, 0.993), "shapes3d": (0.902, 0.759)},
    (0.9, 10): {"dsprites": (0.921, 0.981), "shapes3d": (0.854, 0.646)},
    (0.9, 20): {"dsprites": (0.956, 0.987), "shapes3d": (0.893, 0.758)},
    (0.9, 30): {"dsprites": (0.976, 0.985), "shapes3d": (0.910, 0.711)},
}

# Relational paper, Table 5: (alpha, depth) -> {dataset: (ACC, AR)}.
RELATIONS: dict[tuple[float, int], dict[str, tuple[float, float]]] = {
    (0.0, 1): {"dsprites": (0.9896, 1.0), "shapes3d": (0.7521, 1.0)},
    (0.0, 5): {"dsprites": (0.9898, 1.0), "shapes3d": (0.7378, 1.0)},
    (0.0, 10): {"dsprites": (0.9894, 1.0), "shapes3d": (0.7210, 1.0)},
    (0.1, 1): {"dsprites": (0.9986, 0.9998), "shapes3d": (0.7774, 0.9702)},
    (0.1, 5): {"dsprites": (0.9932, 1.0), "shapes3d": (0.7845, 0.9638)},
    (0.1, 10): {"dsprites": (0.9891, 0.9993), "shapes3d": (0.7519, 0.9793)},
    (0.3, 1): {"dsprites": (0.9993, 0.9987), "shapes3d": (0.8342, 0.9361)},
    (0.3, 5): {"dsprites": (0.9992, 0.9893), "shapes3d": (0.8062, 0.9250)},
    (0.3, 10): {"dsprites": (0.9987, 0.9881), "shapes3d": (0.7933, 0.9078)},
    (0.5, 1): {"dsprites": (1.0, 0.9832), "shapes3d": (0.8518, 0.9011)},
    (0.5, 5): {"dsprites": (0.9997, 0.9711), "shapes3d": (0.8728, 0.9034)},
    (0.5, 10): {"dsprites": (0.9995, 0.9695), "shapes3d": (0.8877, 0.8843)},
    (0.7, 1): {"dsprites": (0.9999, 0.9730), "shapes3d": (0.8902, 0.8392)},
    (0.7, 5): {"dsprites": (0.9998, 0.9543), "shapes3d": (0.8726, 0.7531)},
    (0.7, 10): {"dsprites": (0.9998, 0.9623), "shapes3d": (0.8699, 0.7111)},
    (0.9, 1): {"dsprites": (1.0, 0.9566), "shapes3d": (0.9102, 0.7734)},
    (0.9, 5): {"dsprites": (1.0, 0.9523), "shapes3d": (0.8830, 0.6517)},
    (0.9, 10): {"dsprites": (1.0, 0.9419), "shapes3d": (0.8627, 0.6333)},
}

# Relational paper, HWF columns of Table 4 ((alpha, tau) -> (ACC, AR)) and Table 5 ((alpha, depth) -> (ACC, AR)).
_HWF_CLUSTERING = {
    (0.0, 10): (0.917, 1.0), (0.0, 20): (0.977, 1.0), (0.0, 30): (0.982, 1.0),
    (0.1, 10): (0.954, 0.995), (0.1, 20): (0.992, 0.918), (0.1, 30): (0.987, 0.995),
    (0.3, 10): (0.978, 0.988), (0.3, 20): (0.990, 0.982), (0.3, 30): (1.0, 0.985),
    (0.5, 10): (0.983, 0.973), (0.5, 20): (0.993, 0.974), (0.5, 30): (0.998, 0.982),
    (0.7, 10): (0.982, 0.970), (0.7, 20): (0.995, 0.971), (0.7, 30): (0.994, 0.986),
    (0.9, 10): (0.993, 0.957), (0.9, 20): (0.999, 0.953), (0.9, 30): (0.999, 0.951),
}
_HWF_RELATIONS = {
    (0.0, 1): (0.9966, 1.0), (0.0, 5): (0.9939, 1.0), (0.0, 10): (0.9909, 1.0),
    (0.1, 1): (0.9971, 0.9984), (0.1, 5): (0.9930, 0.9994), (0.1, 10): (0.9913, 0.9993),
    (0.3, 1): (0.9985, 0.9989), (0.3, 5): (0.9949, 0.9992), (0.3, 10): (0.9909, 0.9985),
    (0.5, 1): (0.9980, 0.9989), (0.5, 5): (0.9945, 0.9993), (0.5, 10): (0.9909, 0.9993),
    (0.7, 1): (0.9980, 0.9988), (0.7, 5): (0.9962, 0.9990), (0.7, 10): (0.9912, 0.9987),
    (0.9, 1): (0.9979, 0.9990), (0.9, 5): (0.9938, 0.9987), (0.9, 10): (0.9892, 0.9984),
}
for _key, _value in _HWF_CLUSTERING.items():
    CLUSTERING[_key]["hwf"] = _value
for _key, _value in _HWF_RELATIONS.items():
    RELATIONS[_key]["hwf"] = _value
HWF_LI_ET_AL = {"clustering": (0.997, 1.0), "relations_depth_1": (0.985, 1.0)}

DATASET_FAMILIES = ("dsprites", "shapes3d")


# Explicit-disentanglement paper (Hejna et al.), Table 1: linear-probe accuracy of the digit class from
# the frozen encoder's z; None where the paper reports none. (label, weakdis model, beta) -> {dataset: accuracy}.
# weakdis runs the VAE / beta-VAE rows as splitvae (the same (z, y) networks, no explicit loss).
LINEAR_PROBE: tuple[tuple[str, str, float, dict[str, float | None]], ...] = (
    ("VAE", "splitvae", 1.0, {"rotdigits": 0.38, "colordigits": 0.4868}),
    ("β-VAE (β = 2)", "splitvae", 2.0, {"rotdigits": 0.40, "colordigits": 0.5720}),
    ("Predictor VAE", "predvae", 1.0, {"rotdigits": 0.58, "colordigits": 0.5929}),
    ("VAE + Similarity Loss", "simvae", 1.0, {"rotdigits": 0.82, "colordigits": None}),
    ("VAE + Forward Cycle Loss", "cyclevae", 1.0, {"rotdigits": 0.84, "colordigits": None}),
)
LINEAR_PROBE_DATASETS = ("rotdigits", "colordigits")
