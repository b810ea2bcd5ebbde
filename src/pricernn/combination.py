"""Per horizon, the best forecast the validation period supports: which strategy's, and how far from the last price.

A model's multi-step forecasts can be worse than simply repeating the last price: recursive forecasts compound
their errors, and where the data hold no signal any move predicted is noise. Fitted on the validation period
(never on test data), per horizon h:

- with ``model.strategy=auto``, the strategy (recursive one-step model, or direct multi-output model) whose
  validation RMSE is lower;
- a shrinkage weight λ_h in [0, 1] toward the last price: forecast = last + λ_h (model - last), λ_h by least
  squares on the relative moves, λ = Σ m a / Σ m², m and a the predicted and realised moves from each origin.
  A horizon without signal gets λ ≈ 0 and falls back to the last price; a horizon with signal keeps λ near 1
  (a least-squares λ above 1 is cut to 1: forecasts are never stretched beyond what the model says).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("recursive", "direct")


@dataclass(frozen=True)
class Combination:
    """How the model's forecasts are combined, per horizon 1..H: stored in checkpoints as plain data."""

    choice: tuple[str, ...]  # per horizon: "recursive" or "direct"
    shrink: tuple[float, ...]  # per horizon: λ in [0, 1]; all 1.0 with evaluation.shrink=false

    @property
    def steps(self) -> int:
        return len(self.shrink)

    def apply(self, paths: dict[str, np.ndarray], last: np.ndarray) -> np.ndarray:
        """The combined price paths (M, H) from each strategy's paths (M, >= H) and the last prices (M,)."""
        h = self.steps
        chosen = np.column_stack([paths[self.choice[k]][:, k] for k in range(h)])
        return last[:, None] + np.asarray(self.shrink)[None, :] * (chosen - last[:, None])

    def to_dict(self) -> dict:
        return {"choice": list(self.choice), "shrink": [float(s) for s in self.shrink]}

    @classmethod
    def from_dict(cls, state: dict) -> Combination:
        return cls(tuple(state["choice"]), tuple(float(s) for s in state["shrink"]))

    @classmethod
    def identity(cls, strategy: str, steps: int) -> Combination:
        """No choice to make and no shrinkage: the raw forecasts of one strategy."""
        return cls((strategy,) * steps, (1.0,) * steps)


def fit_combination(
    paths: dict[str, np.ndarray], actual: np.ndarray, last: np.ndarray, shrink: bool = True
) -> Combination:
    """Fit the per-horizon choice (lowest RMSE among ``paths``, each (M, H) prices) and, with ``shrink``, the
    shrinkage weights, on validation origins: ``actual`` (M, H) realised prices, ``last`` (M,) origin prices."""
    steps = actual.shape[1]
    choice = []
    for k in range(steps):
        errors = {name: float(np.mean((p[:, k] - actual[:, k]) ** 2)) for name, p in paths.items()}
        choice.append(min(errors, key=errors.get))
    chosen = Combination(tuple(choice), (1.0,) * steps).apply(paths, last)
    if not shrink:
        return Combination(tuple(choice), (1.0,) * steps)
    predicted_moves = chosen / last[:, None] - 1.0
    actual_moves = actual / last[:, None] - 1.0
    weights = []
    for k in range(steps):
        m, a = predicted_moves[:, k], actual_moves[:, k]
        denominator = float(m @ m)
        weights.append(float(np.clip((m @ a) / denominator, 0.0, 1.0)) if denominator > 0 else 0.0)
    return Combination(tuple(choice), tuple(weights))
