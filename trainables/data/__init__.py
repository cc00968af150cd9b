"""Datasets: the official dSprites / Shapes3D files, procedural generators, versions and splits.

```python
from trainables.data import load_dataset, get_version
ds = load_dataset("dsprites:v2", device="cuda")   # generated into $WEAKDIS_DATA once when no path
x = ds.batch(ds.sample_indices("train", 256))    # float32 [256, 1, 64, 64]
```
Importing this package never imports Ray (nor h5py until an h5 file is touched).
"""
from trainables.data.dataset import NoiseConfig, WeakDataset, load_dataset, make_splits, resolve_device
from trainables.data.factors import DSPRITES, SHAPES3D, DatasetLayout, Factor, get_layout
from trainables.data.formats import FileContents, detect_dataset, read_images, read_labels
from trainables.data.generate import cache_dir, cached_file, generate_file, select_rows
from trainables.data.versions import VERSIONS, VersionSpec, get_version

__all__ = [
    "load_dataset", "get_version", "WeakDataset", "VersionSpec", "NoiseConfig", "VERSIONS",
    "DatasetLayout", "Factor", "DSPRITES", "SHAPES3D", "get_layout",
    "FileContents", "detect_dataset", "read_labels", "read_images",
    "generate_file", "select_rows", "cached_file", "cache_dir", "make_splits", "resolve_device",
]
