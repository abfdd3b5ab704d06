"""OP4KSR reference implementation: model, losses, training data and trainer.

- ``model.py``: :class:`~reference_model.model.OP4KSR` (F16 VAE + Flux transformer, one step, no tiles),
  :class:`~reference_model.model.ModelConfig`, save/load.
- ``vae.py``: the F16 (SC-VAE layout) ``AutoencoderKL``; ``rope.py``: RFR; ``cost.py``: parameter count and
  analytic FLOPs/activation memory from a meta-device instantiation.
- ``losses.py``: L2, LPIPS, L_AP (the benchmark's periodicity code); ``data.py``: training pairs from a built
  suite with the benchmark's degradation; ``train.py``: the trainer; ``configs/``: ``nano``, ``flux-dev-f16``.
- ``checkpoints/nano/``: the checkpoint trained on this project's CPU machine (the ``op4ksr`` method's default).

Importing this package is cheap; torch and diffusers load when a submodule is used.
"""
