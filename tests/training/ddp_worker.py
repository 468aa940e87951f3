"""Worker for test_distributed: ``torchrun --nproc_per_node 2 ddp_worker.py CONFIG RUN OUT``.

Trains like ``harmonykit train`` does (process group from the torchrun environment) and
saves this rank's final generator weights to ``OUT/rank{RANK}.safetensors`` so the test can
compare the ranks.
"""

from __future__ import annotations

import os
import sys


def main(config: str, run: str, out: str) -> None:
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    from harmonykit.training import Trainer, load_train_config

    trainer = Trainer(load_train_config(config), run)
    trainer.run()
    assert trainer.ctx is not None and trainer.ctx.world_size == 2
    state = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(state, os.path.join(out, f"rank{trainer.ctx.rank}.safetensors"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
