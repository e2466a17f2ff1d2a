"""What the small digits experiments (optimizers.py, plain_vs_residual.py) share: the
data, standardised, and writing a matplotlib figure to a PNG.

The data are scikit-learn's 8×8 digits (1797 images; ``tensorgrad.data.Digits``
splits them into train and test). Both sets are standardised with the *training*
mean and standard deviation, so no statistic of the test set leaks into training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tensorgrad import data


def standardised_digits(limit: int | None = None) -> tuple[data.Dataset, data.Dataset]:
    """Train and test sets of 8×8 digits, standardised with the training statistics;
    ``limit`` keeps only the first ``limit`` training images."""
    train, test = data.Digits(train=True), data.Digits(train=False)
    x_train, x_test = train.images[:limit].astype(np.float32), test.images.astype(np.float32)
    mean, std = x_train.mean(), x_train.std()
    return (data.TensorDataset((x_train - mean) / std, train.labels[:limit]),
            data.TensorDataset((x_test - mean) / std, test.labels))


def pyplot():
    """matplotlib.pyplot on the Agg backend: it draws into files and needs no display,
    so the examples also run on a server or in CI. Imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as a PNG (creating the folder) and free its memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
