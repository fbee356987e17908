"""Training: feature cache, speaker-independent folds, the paper's models, distillation (torch)."""
