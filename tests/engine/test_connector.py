import pytest
import torch

from squeeze_studio.dla import CONNECTOR_MODES, LayerConnector
from squeeze_studio.dla.lap import LayerwiseAttentionPooling

LAYERS, HIDDEN, TOKENS = 5, 32, 12


@pytest.fixture
def stack():
    torch.manual_seed(0)
    hidden = torch.randn(2, LAYERS, TOKENS, HIDDEN)
    image_mask = torch.zeros(2, TOKENS, dtype=torch.bool)
    image_mask[:, 3:7] = True
    text_mask = ~image_mask
    text_mask[1, -2:] = False  # padding in the second sample
    return hidden, text_mask, image_mask


def make(mode, **kwargs):
    return LayerConnector(mode=mode, num_layers=LAYERS, hidden_size=HIDDEN, num_heads=2, **kwargs)


@pytest.mark.parametrize("mode", CONNECTOR_MODES)
def test_identity_init_reproduces_the_last_layer_exactly(mode, stack):
    hidden, text_mask, image_mask = stack
    out, mask = make(mode)(hidden, text_mask, image_mask)
    valid = text_mask | image_mask
    assert torch.equal(out[valid], hidden[:, -1][valid])
    assert torch.equal(mask.bool(), valid)


@pytest.mark.parametrize("mode", CONNECTOR_MODES)
def test_every_mode_trains(mode, stack):
    hidden, text_mask, image_mask = stack
    connector = make(mode, identity_init=False)
    out, _ = connector(hidden.requires_grad_(), text_mask, image_mask)
    out.pow(2).mean().backward()
    grads = [p.grad for p in connector.parameters()]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert hidden.grad.abs().sum() > 0


def test_lap_mixes_layers_once_trained(stack):
    """After identity init, changing the layer weights makes earlier layers matter."""
    hidden, text_mask, image_mask = stack
    connector = make("lap")
    with torch.no_grad():
        connector.text_lap.collapse.weight.fill_(1.0 / LAYERS)
    out, _ = connector(hidden, text_mask, image_mask)
    valid = text_mask | image_mask
    torch.testing.assert_close(out[valid], hidden.mean(1)[valid])


def test_dla_pools_text_and_image_tokens_with_separate_laps(stack):
    hidden, text_mask, image_mask = stack
    connector = make("dla")
    with torch.no_grad():
        connector.image_lap.collapse.weight.zero_()
        connector.image_lap.collapse.weight[0, 0] = 1.0  # image tokens now read the embedding layer
    out, _ = connector(hidden, text_mask, image_mask)
    assert torch.equal(out[image_mask], hidden[:, 0][image_mask])
    assert torch.equal(out[text_mask], hidden[:, -1][text_mask])


def test_concat_fusion_puts_text_first_then_images(stack):
    hidden, text_mask, image_mask = stack
    out, mask = make("dla", fusion="concat")(hidden, text_mask, image_mask)
    for b in range(2):
        expected = torch.cat([hidden[b, -1][text_mask[b]], hidden[b, -1][image_mask[b]]])
        assert torch.equal(out[b][mask[b].bool()], expected)


def test_save_and_load_round_trip(tmp_path, stack):
    hidden, text_mask, image_mask = stack
    connector = make("dla", identity_init=False, num_blocks=1)
    connector.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file()
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = LayerConnector.from_pretrained(tmp_path)
    assert loaded.config.num_blocks == 1 and loaded.config.mode == "dla"
    assert torch.equal(loaded(hidden, text_mask, image_mask)[0], connector(hidden, text_mask, image_mask)[0])


@pytest.mark.parametrize("kwargs", [{"mode": "mean"}, {"fusion": "sum"}, {"out_dim": 16}, {"normalize_layers": True}])
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        LayerConnector(**{"mode": "dla", "num_layers": LAYERS, "hidden_size": HIDDEN, "num_heads": 2, **kwargs})


def test_out_dim_can_differ_without_identity_init(stack):
    hidden, text_mask, image_mask = stack
    out, _ = make("dla", out_dim=48, identity_init=False)(hidden, text_mask, image_mask)
    assert out.shape == (2, TOKENS, 48)


def test_without_identity_init_the_pools_start_as_the_layer_average(stack):
    hidden, _, _ = stack
    lap = LayerwiseAttentionPooling(LAYERS, HIDDEN, num_heads=2)
    lap.average_init()
    stacks = hidden.permute(0, 2, 1, 3).reshape(-1, LAYERS, HIDDEN)
    torch.testing.assert_close(lap(stacks), stacks.mean(1))
    connector = make("dla", identity_init=False)
    assert torch.allclose(connector.text_lap.collapse.weight, torch.full((1, LAYERS), 1.0 / LAYERS))


@pytest.mark.parametrize("mode", CONNECTOR_MODES)
def test_normalized_layers_make_every_layer_count_whatever_its_scale(mode, stack):
    """Raw MLLM layers differ in norm by orders of magnitude; with normalize_layers the scale is gone."""
    hidden, text_mask, image_mask = stack
    connector = make(mode, identity_init=False, normalize_layers=True)
    scales = torch.logspace(-0.3, 1.7, LAYERS)[None, :, None, None]  # 0.5 to 50
    out, _ = connector(hidden, text_mask, image_mask)
    rescaled, _ = connector(hidden * scales, text_mask, image_mask)
    valid = text_mask | image_mask
    torch.testing.assert_close(rescaled[valid], out[valid], atol=1e-4, rtol=1e-4)
