"""Training: config, data (tokenise, buckets, packing), the Accelerate loop, checkpoints, schedules, model loading."""
