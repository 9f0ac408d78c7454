import torch

from lucidvi.nn import GaussianEncoder, LinearDecoder


def test_affine_fold_reproduces_eval_logits():
    torch.manual_seed(0)
    decoder = LinearDecoder(4, 30, n_cats_per_cov=[3, 2], n_continuous_cov=2, bias=True)
    # give batch norm non-trivial running statistics and affine parameters
    decoder.train()
    for _ in range(20):
        decoder(torch.randn(64, 4) * 3, torch.randint(0, 2, (64, 2)), torch.randn(64, 2))
    with torch.no_grad():
        decoder.batch_norm.weight.uniform_(0.5, 2.0)
        decoder.batch_norm.bias.normal_()
    decoder.eval()
    z, cats, cont = torch.randn(10, 4), torch.randint(0, 2, (10, 2)), torch.randn(10, 2)
    loadings, scale, shift = decoder.affine()
    expected = z @ loadings.T + scale * decoder.covariate_term(cats, cont) + shift
    torch.testing.assert_close(decoder(z, cats, cont), expected, rtol=1e-5, atol=1e-5)


def test_decoder_handles_sample_dimension():
    decoder = LinearDecoder(3, 7).eval()
    z = torch.randn(5, 4, 3)
    out = decoder(z)
    assert out.shape == (5, 4, 7)
    torch.testing.assert_close(out[2], decoder(z[2]))


def test_gaussian_encoder_shapes_and_positive_scale():
    encoder = GaussianEncoder(12, 3, n_hidden=8, n_layers=2)
    q = encoder(torch.randn(6, 12))
    assert q.loc.shape == (6, 3) and bool((q.scale > 0).all())
