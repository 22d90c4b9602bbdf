"""The witness (`cleack witness`): cosigns a log's checkpoints and refuses forks (docs/fairness.md)."""
