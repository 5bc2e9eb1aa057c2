import torch
import torch.nn.functional as F

from squeeze_studio.backbones.preview import LatentPreviewProjection


def test_fit_recovers_a_linear_latent_to_rgb_map():
    torch.manual_seed(0)
    latents = torch.randn(6, 4, 8, 8)
    weight, bias = torch.randn(3, 4) * 0.2, torch.tensor([0.1, -0.2, 0.05])
    rgb = torch.einsum("bchw,oc->bohw", latents, weight) + bias.view(1, 3, 1, 1)
    images = F.interpolate(rgb, scale_factor=8, mode="nearest")  # each latent pixel covers 8 x 8 pixels
    projection = LatentPreviewProjection(latent_channels=4)
    rmse = projection.fit(latents, images)
    assert rmse < 1e-4
    torch.testing.assert_close(projection.linear.weight, weight, atol=1e-4, rtol=0)
    torch.testing.assert_close(projection(latents), rgb.clamp(-1, 1), atol=1e-4, rtol=0)
