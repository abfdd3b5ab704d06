"""OP4KSR reference implementation: model, losses, training data and trainer.

- ``model.py``: :class:`~reference_model.model.OP4KSR` (F16 VAE + Flux transformer, one step, no tiles),
  :class:`~reference_model.model.ModelConfig`, save/load.
- ``vae.py``: the F16 (SC-VAE layout) ``AutoencoderKL``; ``rope.py``: RFR; ``cost.py``: parameter count and
  analytic FLOPs/activation memory from a meta-device instantiation.
- ``losses.py``: L2, LPIPS, L_AP (the benchmark's periodicity code); ``data.py``: training pairs from a built
  suite with the benchmark's degradation; ``train.py``: the trainer; ``configs/``: ``nano``, ``flux-dev-f16``.
- ``colour.py``: per-channel mean colour error of a benchmark run against the HR; ``evaluate.py``: the VAE's
  reconstruction PSNR and the crop-consistency check at full size; ``ablation.py``: the RFR / L_AP ablation.
- ``checkpoints/nano/``: the checkpoint trained on this project's CPU machine (the ``op4ksr`` method's default);
  ``checkpoints/cpu-skip/``: the CPU-scale model with a frozen pretrained VAE and the bicubic skip
  (``--opt weights=cpu-skip``).

Importing this package is cheap; torch and diffusers load when a submodule is used.
"""
