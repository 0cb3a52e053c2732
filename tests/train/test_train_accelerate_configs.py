"""Every shipped accelerate config (glob, none forgotten) parses into a valid accelerate ClusterConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG_DIR = Path(__file__).resolve().parents[2] / "accelerate_configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml")) + sorted(CONFIG_DIR.glob("*.yml"))
EXPECTED = {"cpu_ddp", "single_gpu_fp16", "multi_gpu_fp16", "fsdp", "deepspeed_zero2", "multi_node"}


def test_the_issue_named_configs_are_shipped():
    assert EXPECTED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_says_when_to_use_it(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    first = path.read_text().splitlines()[0]
    assert first.startswith("# When to use:"), f"{path.name} needs a first comment line on when to use it"
    cfg = ClusterConfig.from_yaml_file(str(path))  # raises on unknown keys
    assert DistributedType(cfg.distributed_type) in set(DistributedType)
    assert cfg.mixed_precision in ("no", "fp16", "bf16")
    assert cfg.num_processes >= 1 and cfg.num_machines >= 1
    if cfg.distributed_type == DistributedType.FSDP:
        assert cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "GPT2Block"
        from transformers.models.gpt2.modeling_gpt2 import GPT2Block  # the class the policy names exists

        assert GPT2Block.__name__ == "GPT2Block"
    if cfg.distributed_type == DistributedType.DEEPSPEED:
        assert cfg.deepspeed_config["zero_stage"] == 2
    if cfg.num_machines > 1:
        assert cfg.num_processes % cfg.num_machines == 0 and cfg.main_process_ip
    if cfg.distributed_type == DistributedType.MULTI_CPU:
        assert cfg.use_cpu and cfg.num_processes >= 2
