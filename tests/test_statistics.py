import pytest
import torch

from impasto.errors import UsageError
from impasto.losses import gram_matrix, relative_scale, style_loss
from impasto.statistics import STATISTICS, get_statistic

gram, meancov, histogram = STATISTICS["gram"], STATISTICS["meancov"], STATISTICS["histogram"]
ALL = list(STATISTICS)


def rand(
    c: int = 6, h: int = 10, w: int = 12, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    # ReLU-like: non-negative, as VGG features are.
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, c, h, w, generator=g, dtype=dtype)


def whitened(x: torch.Tensor) -> torch.Tensor:
    """Each row of (C, N) ``x`` moved to mean 0 and the rows to exactly identity covariance."""
    x = x - x.mean(dim=1, keepdim=True)
    vals, vecs = torch.linalg.eigh(x @ x.T / x.shape[1])
    return vecs @ torch.diag(vals.rsqrt()) @ vecs.T @ x


def as_map(x: torch.Tensor, w: int = 16) -> torch.Tensor:
    """(C, N) -> (1, C, N / w, w)."""
    return x.reshape(1, x.shape[0], -1, w)


@pytest.mark.parametrize("name", ALL)
def test_distance_to_own_statistics_is_zero_and_grows_with_perturbation(name):
    stat = STATISTICS[name]
    f = rand(seed=1)
    target = stat.of(f)
    assert stat.distance(f, target).item() == pytest.approx(0, abs=1e-5)
    # Never below 0, even where rounding errs that way (a rank-deficient covariance).
    few = rand(c=16, h=2, w=3, seed=2)
    assert 0 <= stat.distance(few, stat.of(few)).item() < 1e-5
    noise = torch.randn(f.shape, generator=torch.Generator().manual_seed(2))
    d = [stat.distance(f + s * noise, target).item() for s in (0.05, 0.2, 0.8)]
    assert 0 < d[0] < d[1] < d[2]


@pytest.mark.parametrize("name", ALL)
def test_mask_of_ones_is_no_mask(name):
    stat = STATISTICS[name]
    f, t = rand(seed=3), stat.of(rand(seed=4))
    ones = torch.ones(1, 1, *f.shape[2:])
    for key, value in stat.of(f).items():
        assert torch.allclose(stat.of(f, ones)[key], value, rtol=1e-5, atol=1e-7)
    assert stat.distance(f, t, ones).item() == pytest.approx(stat.distance(f, t).item(), rel=1e-5)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("masked", [False, True])
def test_distance_gradcheck(name, masked):
    stat = STATISTICS[name]
    f = rand(c=4, h=5, w=6, seed=5, dtype=torch.float64).requires_grad_()
    mask = None
    if masked:
        mask = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
        mask[..., 1:4, 2:6] = 0.75  # a weight, and for histogram a kept (> 0.5) region
    target = stat.of(rand(c=4, h=5, w=6, seed=6, dtype=torch.float64), mask)
    assert torch.autograd.gradcheck(lambda x: stat.distance(x, target, mask), (f,))


@pytest.mark.parametrize(
    ("name", "key"), [("gram", "gram"), ("meancov", "cov"), ("histogram", "quantiles")]
)
def test_statistics_are_differentiable(name, key):
    # ``of`` may also be applied to the output, inside the optimisation.
    f = rand(c=4, h=5, w=6, seed=38, dtype=torch.float64).requires_grad_()
    weights = torch.rand(STATISTICS[name].of(f)[key].shape, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: (STATISTICS[name].of(x)[key] * weights).sum(), (f,))


@pytest.mark.parametrize("name", ALL)
def test_statistics_of_bf16_are_at_least_float32(name):
    stat = STATISTICS[name]
    f = rand(seed=7)
    target = stat.of(f)
    d = stat.distance(f.bfloat16(), target)
    assert d.dtype == torch.float32 and torch.isfinite(d)
    assert all(v.dtype in (torch.float32, torch.float64) for v in stat.of(f.bfloat16()).values())


@pytest.mark.parametrize("name", ALL)
def test_blend_with_weights_one_zero_is_the_first_target(name):
    stat = STATISTICS[name]
    a, b = stat.of(rand(seed=8)), stat.of(rand(h=8, w=9, seed=9) * 3)
    blended = stat.blend([a, b], [1.0, 0.0])
    for key, value in a.items():
        assert torch.allclose(blended[key], value, rtol=1e-6, atol=1e-9), key
    with pytest.raises(ValueError, match="sum to 1"):
        stat.blend([a, b], [1.0, 1.0])


@pytest.mark.parametrize("name", ALL)
def test_mask_selecting_nothing_is_a_value_error(name):
    f = rand(seed=10)
    with pytest.raises(ValueError, match="no pixel"):
        STATISTICS[name].of(f, torch.zeros(1, 1, *f.shape[2:]))


# gram


def test_gram_equals_the_losses_module():
    f, t = rand(seed=11), rand(seed=12)
    expected = style_loss(gram_matrix(f), gram_matrix(t)) * relative_scale(gram_matrix(t))
    assert torch.equal(gram.distance(f, gram.of(t)), expected)
    absolute = style_loss(gram_matrix(f), gram_matrix(t))
    assert torch.equal(gram.distance(f, gram.of(t), relative=False), absolute)


def test_gram_hand_computed():
    # F = [[1, 2], [3, 4]] over a 1x2 image: G = [[5, 11], [11, 25]] / 4; target F = I: G = I / 4.
    # Difference [[1, 2.75], [2.75, 6]]: mean square 52.125 / 4; mean(Gt^2) = (2 / 16) / 4.
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    t = gram.of(torch.eye(2).reshape(1, 2, 1, 2))
    assert gram.distance(f, t, relative=False).item() == pytest.approx(52.125 / 4)
    assert gram.distance(f, t).item() == pytest.approx(52.125 / 4 * 32)


def test_masked_gram_of_a_rectangle_is_the_gram_of_the_crop():
    f = rand(seed=13)
    mask = torch.zeros(1, 1, *f.shape[2:])
    mask[..., 2:7, 3:11] = 1
    crop = f[..., 2:7, 3:11]
    assert torch.allclose(gram.of(f, mask)["gram"], gram_matrix(crop)[0], rtol=1e-5)


def test_masked_gram_is_a_mean_weighted_by_the_mask_squared():
    # Weights 1 and 1/2 enter squared: each weight-1 pixel counts four times a weight-1/2 pixel.
    f = rand(h=4, w=8, seed=37)
    mask = torch.full((1, 1, 4, 8), 0.5)
    mask[..., :4] = 1
    repeated = torch.cat([f[..., :4]] * 4 + [f[..., 4:]], dim=3)
    assert torch.allclose(gram.of(f, mask)["gram"], gram_matrix(repeated)[0], rtol=1e-5)


def test_gram_blend_is_the_weighted_sum():
    a, b = rand(seed=14), rand(seed=15) * 2
    blended = gram.blend([gram.of(a), gram.of(b)], [0.25, 0.75])
    assert torch.allclose(blended["gram"], 0.25 * gram_matrix(a)[0] + 0.75 * gram_matrix(b)[0])
    assert torch.allclose(blended["scale"], relative_scale(blended["gram"]))


# meancov


def test_meancov_closed_form_for_diagonal_covariances():
    # Exactly diagonal sample covariances diag(a), diag(b):
    # W2^2 = ||mu_a - mu_b||^2 + sum (sqrt a - sqrt b)^2.
    g = torch.Generator().manual_seed(16)
    z1, z2 = (whitened(torch.randn(4, 256, generator=g, dtype=torch.float64)) for _ in "12")
    a, b = torch.tensor([1.0, 4.0, 0.25, 2.0]), torch.tensor([9.0, 1.0, 0.25, 0.5])
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0, 3.0]), torch.tensor([1.0, 1.0, 0.5, 0.0])
    x = as_map(a.double().sqrt()[:, None] * z1 + mu_a.double()[:, None])
    y = as_map(b.double().sqrt()[:, None] * z2 + mu_b.double()[:, None])
    expected = (mu_a - mu_b).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    target = meancov.of(y)
    assert meancov.distance(x, target, relative=False).item() == pytest.approx(expected.item())
    relative = expected / (b.sum() + mu_b.square().sum())
    assert meancov.distance(x, target).item() == pytest.approx(relative.item())


def test_meancov_matches_an_independent_formula_for_full_covariances():
    # tr((St^1/2 S St^1/2)^1/2) = sum of sqrt of the (real, positive) eigenvalues of S St.
    x, y = rand(seed=17, dtype=torch.float64), rand(seed=18, dtype=torch.float64) ** 2
    xs, ys = x.reshape(6, -1), y.reshape(6, -1)
    s, st = torch.cov(xs, correction=0), torch.cov(ys, correction=0)
    root_trace = torch.linalg.eigvals(s @ st).real.sqrt().sum()
    expected = (xs.mean(1) - ys.mean(1)).square().sum() + s.trace() + st.trace() - 2 * root_trace
    d = meancov.distance(x, meancov.of(y), relative=False).item()
    assert d == pytest.approx(expected.item(), rel=1e-9)
    # and W2 is symmetric
    assert meancov.distance(y, meancov.of(x), relative=False).item() == pytest.approx(d, rel=1e-9)


def test_meancov_mixture_blend_has_the_pooled_moments():
    a, b = rand(seed=19), rand(seed=20) * 2 + 1
    blended = meancov.blend([meancov.of(a), meancov.of(b)], [0.5, 0.5])
    pooled = meancov.of(torch.cat([a, b], dim=3))  # equal pixel counts: the 50/50 mixture
    for key in ("mean", "cov", "cov_sqrt", "scale"):
        assert torch.allclose(blended[key], pooled[key], atol=1e-6), key


@pytest.mark.parametrize("singular", ["output", "target", "both"])
def test_meancov_gradient_is_finite_for_singular_covariances(singular):
    f, t = rand(seed=21), rand(seed=22)
    if singular in ("output", "both"):
        f[:, 2] = 0.5  # a constant channel
    if singular in ("target", "both"):
        t[:, 2] = 0.0  # a dead ReLU channel
    for target in (meancov.of(t), meancov.of(f)):
        x = f.clone().requires_grad_()
        meancov.distance(x, target).backward()
        assert torch.isfinite(x.grad).all()
    # Flat images: a zero covariance, exactly.
    flat = torch.full_like(f, 0.5)
    for x, target in ((flat, meancov.of(f)), (f, meancov.of(flat))):
        x = x.clone().requires_grad_()
        meancov.distance(x, target).backward()
        assert torch.isfinite(x.grad).all()
    # Fewer pixels than channels: a rank-deficient target, as at conv5_1 on a small image.
    few = rand(c=16, h=2, w=3, seed=23)
    x = rand(c=16, h=8, w=8, seed=24).requires_grad_()
    meancov.distance(x, meancov.of(few)).backward()
    assert torch.isfinite(x.grad).all()


def test_meancov_mask_weights_pixels():
    # Weights 1 and 1/4: the moments of the data with each weight-1 pixel counted four times.
    f = rand(h=4, w=8, seed=34)
    mask = torch.full((1, 1, 4, 8), 0.25)
    mask[..., :4] = 1
    repeated = torch.cat([f[..., :4]] * 4 + [f[..., 4:]], dim=3)
    for key, value in meancov.of(repeated).items():
        assert torch.allclose(meancov.of(f, mask)[key], value, atol=1e-6), key


# histogram


def test_histogram_hand_computed():
    # One channel, directions x and -x (each sees the same sorted pairs): target 0, 1, 2, 3;
    # output sorted 1, 1, 3, 5; squared differences 1, 0, 1, 4: mean 1.5. Mean square of the
    # target: (0 + 1 + 4 + 9) / 4 = 3.5.
    t = histogram.of(torch.arange(4.0).reshape(1, 1, 2, 2))
    f = torch.tensor([3.0, 5.0, 1.0, 1.0]).reshape(1, 1, 2, 2)
    assert histogram.distance(f, t, relative=False).item() == pytest.approx(1.5)
    assert histogram.distance(f, t).item() == pytest.approx(1.5 / 3.5)


def test_histogram_quantiles_sit_at_midpoints():
    # 0, 1, 2, 3 at levels 1/8, 3/8, 5/8, 7/8; two quantiles at levels 1/4, 3/4: 0.5 and 2.5.
    f = torch.arange(4.0).reshape(1, 1, 2, 2)
    assert type(histogram)(max_quantiles=2).of(f)["quantiles"][0].tolist() == [0.5, 2.5]
    # A uniform grid of 256 levels against one of 64: the same quantile function, distance 0.
    fine = ((torch.arange(256.0) + 0.5) / 256).reshape(1, 1, 16, 16)
    coarse = ((torch.arange(64.0) + 0.5) / 64).reshape(1, 1, 8, 8)
    d = histogram.distance(coarse, histogram.of(fine)).item()
    assert d == pytest.approx(0, abs=1e-12)


def test_histogram_sees_joint_structure_not_only_the_marginals():
    # Eight copies of one channel, then each copy shuffled on its own: every channel's histogram
    # is kept but not the joint distribution, which only the oblique directions see.
    f = rand(c=1, seed=35).repeat(1, 8, 1, 1)
    g = torch.Generator().manual_seed(36)
    shuffled = torch.stack([c.flatten()[torch.randperm(120, generator=g)] for c in f[0]])
    assert histogram.distance(as_map(shuffled, 12), histogram.of(f)).item() > 1e-2


def test_histogram_is_invariant_to_permuting_pixels():
    f, t = rand(seed=25), histogram.of(rand(seed=26))
    perm = torch.randperm(f[0, 0].numel(), generator=torch.Generator().manual_seed(27))
    shuffled = f.flatten(2)[..., perm].reshape(f.shape)
    assert histogram.distance(shuffled, t).item() == pytest.approx(histogram.distance(f, t).item())


def test_histogram_sees_a_change_of_distribution_that_meancov_does_not():
    # Uniform and Gaussian samples moved to exactly the same mean and covariance.
    g = torch.Generator().manual_seed(28)
    uniform = as_map(whitened(torch.rand(4, 1024, generator=g, dtype=torch.float64)))
    gaussian = as_map(whitened(torch.randn(4, 1024, generator=g, dtype=torch.float64)))
    assert meancov.distance(uniform, meancov.of(gaussian)).item() == pytest.approx(0, abs=1e-9)
    assert histogram.distance(uniform, histogram.of(gaussian)).item() > 1e-2


def test_histogram_blend_is_the_quantile_average():
    # One channel: the directions are +x and +-x, so every direction sees the same 1-D
    # distributions. The barycenter's quantiles are the average of the sorted samples.
    g = torch.Generator().manual_seed(29)
    a, b = torch.rand(1, 1, 8, 8, generator=g), torch.randn(1, 1, 8, 8, generator=g) * 3 + 1
    blended = histogram.blend([histogram.of(a), histogram.of(b)], [0.5, 0.5])
    average = (a.flatten().sort().values + b.flatten().sort().values) / 2
    assert torch.allclose(blended["quantiles"][0], average, atol=1e-6)
    # features whose values are exactly that average are at distance 0 from the blend,
    # in whatever order the pixels come
    shuffled = average[torch.randperm(64, generator=g)].reshape(1, 1, 8, 8)
    assert histogram.distance(shuffled, blended).item() == pytest.approx(0, abs=1e-10)


def test_histogram_target_is_resampled_to_a_fixed_number_of_quantiles():
    stat = type(histogram)(max_quantiles=50)
    f = rand(c=3, h=16, w=16, seed=30)
    target = stat.of(f)
    assert target["quantiles"].shape == (6, 50)
    # A close approximation of the full quantile function: the distance to itself stays small.
    assert 0 <= stat.distance(f, target).item() < 1e-3


def test_histogram_mask_keeps_pixels_above_one_half():
    f, t = rand(seed=31), histogram.of(rand(seed=32))
    mask = torch.zeros(1, 1, *f.shape[2:])
    mask[..., :, :5] = 0.6
    mask[..., :, 5:] = 0.4  # dropped, whatever the features there
    garbage = f.clone()
    garbage[..., :, 5:] = 100.0
    assert histogram.distance(garbage, t, mask).item() == pytest.approx(
        histogram.distance(f[..., :, :5], t).item()
    )
    with pytest.raises(ValueError, match="no pixel"):
        histogram.distance(f, t, mask * 0.5)


def test_histogram_directions_are_fixed_and_orthonormal():
    p = histogram.of(rand(c=8, seed=33))["projection"]
    assert torch.equal(p, histogram.of(rand(c=8, seed=34))["projection"])
    assert torch.allclose(p[:, :8], torch.eye(8))
    assert torch.allclose(p[:, 8:].T @ p[:, 8:], torch.eye(8), atol=1e-6)


def test_get_statistic():
    assert get_statistic("meancov") is STATISTICS["meancov"]
    with pytest.raises(UsageError, match="did you mean 'gram'") as info:
        get_statistic("grm")
    assert "gram, meancov, histogram" in str(info.value)


# -- part by part (tiles) ---------------------------------------------------------------------

TILEABLE = [n for n in ALL if STATISTICS[n].tileable]
PARTS = [((0, 4), (0, 5)), ((0, 4), (5, 12)), ((4, 10), (0, 7)), ((4, 10), (7, 12))]


def _parts(f: torch.Tensor, mask: torch.Tensor | None):
    for (r0, r1), (c0, c1) in PARTS:
        yield (
            (slice(r0, r1), slice(c0, c1)),
            f[..., r0:r1, c0:c1],
            None if mask is None else mask[..., r0:r1, c0:c1],
        )


def _soft_mask(dtype=torch.float64) -> torch.Tensor:
    m = torch.rand(1, 1, 10, 12, generator=torch.Generator().manual_seed(9), dtype=dtype)
    m[..., :2, :] = 0  # a part of the image outside the region altogether
    return m


def test_only_histogram_cannot_be_taken_part_by_part():
    assert TILEABLE == ["gram", "meancov"]
    with pytest.raises(NotImplementedError, match="histogram"):
        histogram.sums(rand(), None, torch.tensor(120.0))


@pytest.mark.parametrize("name", TILEABLE)
@pytest.mark.parametrize("masked", [False, True])
def test_sums_of_parts_merge_into_the_statistics_of_the_whole(name, masked):
    """Parts of a layer, each with the whole's norm, add up to the whole's statistics: the same
    target as ``of``, and the same distance to a target as ``distance``."""
    stat = STATISTICS[name]
    f = rand(c=6, h=10, w=12, seed=31, dtype=torch.float64)
    mask = _soft_mask() if masked else None
    norm = stat.norm(mask, 10 * 12)
    merged = stat.merge([stat.sums(p, m, norm) for _, p, m in _parts(f, mask)])
    whole, target = stat.of(f, mask), stat.of(rand(c=6, h=9, w=11, seed=32, dtype=torch.float64))
    for key, value in stat.target(merged).items():
        assert torch.allclose(value, whole[key], rtol=1e-10, atol=1e-12), key
    assert stat.compare(merged, target).item() == pytest.approx(
        stat.distance(f, target, mask).item(), rel=1e-10
    )
    # A part left out is missed: the merge is not a mean of whatever parts it gets.
    fewer = stat.merge([stat.sums(p, m, norm) for _, p, m in list(_parts(f, mask))[1:]])
    assert stat.compare(fewer, target).item() != pytest.approx(stat.compare(merged, target).item())


@pytest.mark.parametrize("name", TILEABLE)
@pytest.mark.parametrize("masked", [False, True])
def test_backward_of_each_part_is_its_share_of_the_whole_gradient(name, masked):
    """The gradient of a loss of the merged statistics, taken part by part from the statistics'
    gradient, is autograd's gradient of the same loss through the whole feature map."""
    stat = STATISTICS[name]
    f = rand(c=6, h=10, w=12, seed=33, dtype=torch.float64).requires_grad_()
    mask = _soft_mask() if masked else None
    target = stat.of(rand(c=6, h=9, w=11, seed=34, dtype=torch.float64))
    stat.distance(f, target, mask).clamp_min(1e-20).sqrt().backward()  # the default 'norm'
    norm = stat.norm(mask, 10 * 12)
    merged = stat.merge([stat.sums(p, m, norm) for _, p, m in _parts(f.detach(), mask)])
    leaves = {k: v.detach().requires_grad_() for k, v in merged.items()}
    stat.compare(leaves, target).clamp_min(1e-20).sqrt().backward()
    grads = {k: v.grad for k, v in leaves.items()}
    pieces = torch.zeros_like(f)
    for window, p, m in _parts(f.detach(), mask):
        pieces[(..., *window)] = stat.backward(p, m, norm, merged, grads)
    assert torch.allclose(pieces, f.grad, rtol=1e-9, atol=1e-12 * float(f.grad.abs().max()))


@pytest.mark.parametrize("name", TILEABLE)
def test_backward_keeps_the_features_layout_and_dtype(name):
    stat = STATISTICS[name]
    f = rand(c=6, h=10, w=12, seed=35).contiguous(memory_format=torch.channels_last)
    norm = stat.norm(None, 120)
    merged = stat.merge([stat.sums(f, None, norm)])
    grads = {k: torch.ones_like(v) for k, v in merged.items()}
    g = stat.backward(f, None, norm, merged, grads)
    assert g.shape == f.shape and g.dtype == f.dtype
