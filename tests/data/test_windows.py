import numpy as np
import torch

from pricernn.data import PriceDataModule, sliding_windows
from pricernn.data.preprocess import window_starts
from pricernn.data.windows import WindowBatches


def test_windows_equal_hand_built_reference():
    values = torch.arange(20.0).reshape(10, 2)
    view = sliding_windows(values, 4)
    reference = torch.stack([values[i : i + 4] for i in range(7)])
    assert view.shape == (7, 4, 2)
    assert torch.equal(view, reference)
    assert torch.equal(sliding_windows(values[:, 0], 3), torch.stack([values[i : i + 3, 0] for i in range(8)]))


def test_windows_are_views_not_copies():
    values = torch.randn(10_000, 3)
    view = sliding_windows(values, 60)
    assert view.untyped_storage().data_ptr() == values.untyped_storage().data_ptr()
    values[100, 1] = 123.0  # a write to the series shows through every window that covers it
    assert view[41, 59, 1] == 123.0 and view[100, 0, 1] == 123.0


def test_window_starts_keep_targets_inside_their_split():
    n, w, h, val_row, test_row = 100, 10, 3, 70, 85
    starts = window_starts(n, w, h, val_row, test_row)
    # the first window of the series has no earlier context, so training targets begin at row w
    bounds = {"train": (w, val_row), "val": (val_row, test_row), "test": (test_row, n)}
    for split, (lo, hi) in bounds.items():
        first_target, last_target = starts[split] + w, starts[split] + w + h - 1
        assert first_target.min() == lo and last_target.max() == hi - 1  # every target row used, none outside
        assert (first_target >= lo).all() and (last_target < hi).all()
    assert starts["val"][0] == val_row - w  # validation inputs may read training history as context


def test_batch_gather_equals_per_sample_items():
    dm = PriceDataModule(window=20, horizon=3)
    dm.setup()
    ds = dm.datasets["val"]
    batch = ds[list(range(5, 12))]
    singles = [ds[i] for i in range(5, 12)]
    for part, stacked in zip(batch, zip(*singles, strict=True), strict=True):
        assert torch.equal(part, torch.stack(stacked))


def test_targets_match_dataset_and_inverse():
    dm = PriceDataModule(window=30, horizon=2)
    dm.setup()
    targets = dm.targets("test")
    _, y, ctx = dm.datasets["test"][list(range(len(dm.datasets["test"])))]
    prices = dm.normalizer.to_price(y.double(), ctx.double()).numpy()
    np.testing.assert_allclose(prices, targets.actual, rtol=1e-5)
    np.testing.assert_allclose(ctx[:, 0].numpy(), targets.anchor, rtol=1e-6)
    assert (targets.target_dates[:, 0] > targets.origin_dates.values).all()


def test_shuffled_batches_cover_every_window_once_and_replay_by_epoch():
    batches = WindowBatches(103, 10, shuffle=True, seed=7)
    batches.set_epoch(3)
    epoch3 = list(batches)
    assert len(epoch3) == len(batches) == 11 and len(epoch3[-1]) == 3
    assert sorted(torch.cat(epoch3).tolist()) == list(range(103))
    batches.set_epoch(4)
    assert not torch.equal(torch.cat(list(batches)), torch.cat(epoch3))  # a new order each epoch
    resumed = WindowBatches(103, 10, shuffle=True, seed=7)  # a fresh process resuming at epoch 3
    resumed.set_epoch(3)
    assert all(torch.equal(a, b) for a, b in zip(resumed, epoch3, strict=True))
    assert torch.equal(torch.cat(list(WindowBatches(103, 10, shuffle=False))), torch.arange(103))


def test_batches_are_pinned_only_when_asked_or_training_on_a_cuda_device():
    import pytorch_lightning as pl

    dm = PriceDataModule(window=20)
    dm.setup()
    assert dm.train_dataloader().pin_memory is False  # no trainer yet
    dm.trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    assert dm.train_dataloader().pin_memory is False and dm.val_dataloader().pin_memory is False
    dm.pin_memory = True
    assert dm.test_dataloader().pin_memory is True
