import os

import numpy as np
import pytest

# Nothing in the tests may reach a model hub: fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def family_samples(adapter, n=6, seed=0):
    """Calibration samples with the media the adapter's family takes."""
    from topovlm.models import Sample

    r = np.random.RandomState(seed)
    texts = [f"question {i}: what is shown here?" + " more" * (i % 3) for i in range(n)]
    if adapter.family == "llava-next":
        return [Sample(t, image=(r.rand(40 + 4 * i, 48, 3) * 255).astype("uint8")) for i, t in enumerate(texts)]
    if adapter.family == "videollama2":
        return [
            Sample(t, video=(r.rand(6, 40, 40, 3) * 255).astype("uint8"), audio=r.randn(900 + 60 * i))
            for i, t in enumerate(texts)
        ]
    return [Sample(t) for t in texts]


def insert_identity_layer(ad, after: int):
    """Insert a copy of layer ``after`` with zeroed output projections right after it:
    an exact identity on the residual stream."""
    import copy

    import torch

    extra = copy.deepcopy(ad.decoder_layers[after])
    with torch.no_grad():
        extra.self_attn.o_proj.weight.zero_()
        extra.mlp.down_proj.weight.zero_()
    layers = list(ad.decoder_layers)
    layers.insert(after + 1, extra)
    ad.set_decoder_layers(torch.nn.ModuleList(layers))
    for i, layer in enumerate(ad.decoder_layers):
        layer.self_attn.layer_idx = i
    ad.text_config.num_hidden_layers = len(layers)
    return ad
