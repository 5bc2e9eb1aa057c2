"""Training: the VAE (stage 0a), then connector + transformer without (stage 1) and with (stage 2)
reference VAE tokens, on any dataset in the JSONL layout; and the demo model's full recipe."""
