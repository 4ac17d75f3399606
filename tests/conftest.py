from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TF_NCE = FIXTURES / "tf_nce"


def load_npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def planted_corpus(tmp_path):
    """Groups of words that co-occur only within their group, one sentence a line."""
    rng = np.random.default_rng(0)
    groups = [[f"g{g}w{i}" for i in range(6)] for g in range(5)]
    lines = []
    for _ in range(3000):
        g = groups[rng.integers(len(groups))]
        lines.append(" ".join(rng.choice(g, size=12)))
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, groups
