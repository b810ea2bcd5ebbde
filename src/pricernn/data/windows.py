"""Sliding windows as strided views and batches as tensor slices: memory O(N), no per-sample Python."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pricernn.data.transforms import Normalizer


def sliding_windows(values: torch.Tensor, size: int) -> torch.Tensor:
    """View of every run of ``size`` consecutive rows: (N, ...) -> (N - size + 1, size, ...). Nothing is copied."""
    view = values.unfold(0, size, 1)  # the window dimension comes last
    return view if values.dim() == 1 else view.movedim(-1, 1)


class WindowDataset(Dataset):
    """The windows of one split: those starting at the rows of ``starts``, a range per series (rows of the whole
    panel, end to end), so O(series) memory whatever the length and no window crossing from one series into the
    next. Position p is the p-th window counting series by series.

    Index it with one position or a whole list of positions: a list returns the batch in one gather
    (``x`` (B, W, F), ``y`` (B, H), ``ctx`` (B, 4): the normaliser's three columns, then the window's series),
    which is how the loaders use it."""

    def __init__(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor,
        levels: torch.Tensor,
        starts: range | Sequence[range],
        window: int,
        horizon: int,
        normalizer: Normalizer,
    ) -> None:
        self.window, self.horizon, self.normalizer = window, horizon, normalizer
        ranges = [starts] if isinstance(starts, range) else list(starts)
        self._ids = torch.tensor([k for k, r in enumerate(ranges) if len(r)] or [0])  # series of each range kept
        ranges = [r for r in ranges if len(r)] or [range(0)]
        counts = torch.tensor([len(r) for r in ranges])
        self._ends = torch.cumsum(counts, 0)  # (S,) the position after each series' last window
        # start row = position + shift of its series (its first start row minus the windows before it)
        self._shift = torch.tensor([r.start for r in ranges]) - (self._ends - counts)
        self.count = int(self._ends[-1])
        self._x = sliding_windows(inputs, window)
        self._y = sliding_windows(target, horizon)
        self._levels = levels

    def __len__(self) -> int:
        return self.count

    @property
    def starts(self) -> torch.Tensor:
        """The start row of every window, in position order."""
        return self._start(torch.arange(self.count))

    def _start(self, position: torch.Tensor) -> torch.Tensor:
        return position + self._shift[self._range(position)]

    def _range(self, position: torch.Tensor) -> torch.Tensor:
        if len(self._shift) == 1:  # one series
            return torch.zeros_like(position)
        return torch.searchsorted(self._ends, position, right=True)  # a search among S numbers per batch

    def __getitem__(self, index: int | Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, ...]:
        position = torch.as_tensor(index)
        single = position.dim() == 0
        ranges = self._range(position.reshape(-1))
        start = position.reshape(-1) + self._shift[ranges]
        x, y = self._x[start], self._y[start + self.window]
        anchor = self._levels[start + self.window - 1]
        x, y, ctx = self.normalizer.normalize(x, y, anchor)
        batch = (x, y, torch.cat([ctx, self._ids[ranges, None].to(ctx.dtype)], dim=1))
        return tuple(t[0] for t in batch) if single else batch


class WindowBatches(Sampler[torch.Tensor]):
    """Index tensors of whole batches: a fresh permutation per epoch when shuffling, else in time order.

    The permutation is drawn from ``seed`` and a key that differs per epoch: ``progress()`` when given (the
    data module passes the trainer's global step, which a resumed run restores before it starts its first
    epoch; Lightning's ``set_epoch`` is one epoch behind after resuming from an end-of-epoch checkpoint), else
    the epoch set by :meth:`set_epoch`. So a resumed run sees exactly the batches of an uninterrupted one.
    One ``randperm`` per epoch and slices of it: no per-sample Python.
    """

    def __init__(
        self, size: int, batch_size: int, shuffle: bool, seed: int = 0, progress: Callable[[], int] | None = None
    ) -> None:
        self.size, self.batch_size, self.shuffle, self.seed, self.epoch = size, batch_size, shuffle, seed, 0
        self.progress = progress

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            key = self.progress() if self.progress is not None else self.epoch
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + key))
        else:
            order = torch.arange(self.size)
        return iter(order.split(self.batch_size))


def batch_loader(
    dataset: WindowDataset,
    batch_size: int,
    shuffle: bool,
    pin_memory: bool = False,
    seed: int | None = None,
    progress: Callable[[], int] | None = None,
) -> DataLoader:
    """A DataLoader that hands the dataset whole index tensors: one gather per batch, no collate.

    ``seed`` defaults to torch's initial seed, which ``seed_everything`` sets, so runs with one seed shuffle alike.
    """
    seed = torch.initial_seed() if seed is None else seed
    sampler = WindowBatches(len(dataset), batch_size, shuffle, seed, progress)
    # A generator of its own: otherwise every new iterator draws its base seed from torch's global generator,
    # which dropout uses too, so a resumed run's dropout would depend on when Lightning created iterators.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, sampler=sampler, batch_size=None, pin_memory=pin_memory, generator=generator)
