"""Sliding windows as strided views and batches as tensor slices: memory O(N), no per-sample Python."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from pricernn.data.transforms import Normalizer


def sliding_windows(values: torch.Tensor, size: int) -> torch.Tensor:
    """View of every run of ``size`` consecutive rows: (N, ...) -> (N - size + 1, size, ...). Nothing is copied."""
    view = values.unfold(0, size, 1)  # the window dimension comes last
    return view if values.dim() == 1 else view.movedim(-1, 1)


class WindowDataset(Dataset):
    """The windows of one split. Index it with one position or a whole list of positions: a list returns the
    batch in one gather (``x`` (B, W, F), ``y`` (B, H), ``ctx`` (B, 3)), which is how the loaders use it."""

    def __init__(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor,
        levels: torch.Tensor,
        starts: torch.Tensor,
        window: int,
        horizon: int,
        normalizer: Normalizer,
    ) -> None:
        self.window, self.horizon, self.normalizer = window, horizon, normalizer
        self.starts = starts
        self._x = sliding_windows(inputs, window)
        self._y = sliding_windows(target, horizon)
        self._levels = levels

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, ...]:
        start = self.starts[torch.as_tensor(index)]
        single = start.dim() == 0
        start = start.reshape(-1)
        x, y = self._x[start], self._y[start + self.window]
        anchor = self._levels[start + self.window - 1]
        batch = self.normalizer.normalize(x, y, anchor)
        return tuple(t[0] for t in batch) if single else batch


def batch_loader(dataset: WindowDataset, batch_size: int, shuffle: bool, pin_memory: bool = False) -> DataLoader:
    """A DataLoader that hands the dataset whole index lists: one gather per batch, no collate.

    The order is the one ``DataLoader(dataset, batch_size, shuffle)`` would give with the same seed, since
    both draw from ``BatchSampler(RandomSampler(...))``.
    """
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None, pin_memory=pin_memory
    )
