"""The commands: train, backtest and predict, the command line around them (cli, jobs, resume) and the training
callbacks. Kept light: importing pricernn.tasks.cli checks a command line before torch loads."""

__all__ = ["backtest", "callbacks", "cli", "jobs", "predict", "resume", "train"]
