"""Writes this example's models: small linear classifiers, one folder per model and version.

    python build_models.py models      # models/iris/1, models/iris/2, models/wine/1, ...

Each version holds a ``model.json`` (labels, a weight row per label, a bias per label) made from
a fixed seed, so every run writes the same models. They classify nothing real: they are small
stand-ins with the shape of real ones.
"""

import json
import random
import sys
from pathlib import Path

MODELS = {  # name: (features, labels, versions)
    "iris": (4, ["setosa", "versicolor", "virginica"], 2),
    "wine": (3, ["barolo", "grignolino", "barbera"], 1),
    "penguins": (4, ["adelie", "chinstrap", "gentoo"], 1),
}


def build_model(root: Path, name: str, version: int) -> Path:
    """Write one version of ``name`` under ``root`` and return its folder."""
    features, labels, _ = MODELS[name]
    rng = random.Random(f"{name}-{version}")
    model = {
        "labels": labels,
        "weights": [[round(rng.uniform(-1, 1), 4) for _ in range(features)] for _ in labels],
        "bias": [round(rng.uniform(-0.5, 0.5), 4) for _ in labels],
    }
    folder = root / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(model, indent=1) + "\n")
    return folder


def build_all(root: Path) -> list[Path]:
    return [
        build_model(root, name, version)
        for name, (_, _, versions) in MODELS.items()
        for version in range(1, versions + 1)
    ]


if __name__ == "__main__":
    for folder in build_all(Path(sys.argv[1] if len(sys.argv) > 1 else "models")):
        print(folder)
