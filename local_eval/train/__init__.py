"""Training: models (timm and the kit's networks), the epoch loop with checkpoints and budgets
(loop), and the pre-training and fine-tuning phase specs (phases). Builds on core, augment,
datasets and store."""
