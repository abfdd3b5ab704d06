"""Compute the empty-prompt embeddings once from a local FLUX.1 folder, so inference needs no text encoder.

    python -m reference_model.prompt_embeddings --flux /models/FLUX.1-dev --out /models/op4ksr

reads ``text_encoder/`` (CLIP), ``text_encoder_2/`` (T5-XXL) and their tokenizers from the FLUX.1 folder through
diffusers' ``FluxPipeline.encode_prompt("")`` and writes ``<out>/prompt_embeddings.safetensors`` with
``prompt_embeds [1, max_sequence_length, 4096]`` and ``pooled_prompt_embeds [1, 768]`` (float32): the file
``OP4KSR.from_pretrained`` reads from a weights folder, and the one the trainer's ``model.prompt_embeddings``
names (a model on a real transformer refuses to start without it). Needs the ``transformers`` package and
about 20 GB of memory for T5-XXL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from op4ksr_bench.errors import Op4ksrError, WeightsMissingError


def compute_empty_prompt_embeddings(flux_folder: Path, max_sequence_length: int = 512, device: str = "cpu"):
    """``(prompt_embeds [1, L, 4096], pooled_prompt_embeds [1, 768])`` for the empty prompt, float32."""
    import torch
    from diffusers import FluxPipeline

    for part in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "model_index.json"):
        if not (flux_folder / part).exists():
            raise WeightsMissingError(f"{flux_folder / part} is missing: --flux must be a full local FLUX.1 folder")
    pipeline = FluxPipeline.from_pretrained(
        str(flux_folder), transformer=None, vae=None, torch_dtype=torch.float32, local_files_only=True
    ).to(device)
    with torch.no_grad():
        prompt_embeds, pooled_prompt_embeds, _ = pipeline.encode_prompt(
            prompt="", prompt_2=None, device=device, max_sequence_length=max_sequence_length
        )
    return prompt_embeds.float().cpu(), pooled_prompt_embeds.float().cpu()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write prompt_embeddings.safetensors for the empty prompt.")
    parser.add_argument("--flux", type=Path, required=True, help="local FLUX.1 folder (model_index.json, ...)")
    parser.add_argument("--out", type=Path, required=True, help="the OP4KSR weights folder to write into")
    parser.add_argument("--max-sequence-length", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        from safetensors.torch import save_file

        prompt_embeds, pooled = compute_empty_prompt_embeddings(args.flux, args.max_sequence_length, args.device)
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "prompt_embeddings.safetensors"
        save_file(
            {"prompt_embeds": prompt_embeds.contiguous(), "pooled_prompt_embeds": pooled.contiguous()}, str(target)
        )
    except Op4ksrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {target}: prompt_embeds {tuple(prompt_embeds.shape)}, pooled {tuple(pooled.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
