#!/usr/bin/env python
"""Train DialoGPT with Accelerate (the seed's LSP_train.py). Thin wrapper: see dialogpt/cli/train.py.

    accelerate launch --config_file accelerate_configs/single_gpu_fp16.yaml scripts/run_clm_dialog.py \
        --dataset ./reddit-dialog --model_name_or_path microsoft/DialoGPT-medium --output_dir runs/ft
"""

import sys

from dialogpt.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
