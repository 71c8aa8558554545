"""The measures of npcnn.sanity (no autograd) and the faithfulness curves on
a hand-made network whose output depends on one pixel."""
import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity

from bridge.attribution import saliency
from bridge.sanity import faithfulness
from npcnn.sanity import baselines, curves, hog, ranks, road, similarity
from npcnn.sanity.ssim import ssim


def maps(seed=0, n=4, size=28):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, size, size))
    m[:, :6] = 0                         # ties, as a ReLU or Grad-CAM leaves them
    m[:, 6:9] = np.round(m[:, 6:9])      # more ties
    return m


def test_spearman_equals_scipy_with_ties():
    a, b = maps(0), maps(1)
    expected = [scipy.stats.spearmanr(a[n].ravel(), b[n].ravel())[0] for n in range(len(a))]
    np.testing.assert_allclose(ranks.spearman(a, b), expected, rtol=0, atol=1e-12)


def test_rank_averages_ties():
    np.testing.assert_array_equal(ranks.rank(np.array([[3.0, 1.0, 3.0, 2.0, 3.0]])), [[4, 1, 4, 2, 4]])


def test_a_map_against_itself_scores_one_and_against_its_negation_minus_one():
    a = maps(2)
    for metric, values in similarity.compare(a, a).items():
        np.testing.assert_allclose(values, 1.0, rtol=0, atol=1e-12, err_msg=metric)
    negated = similarity.compare(a, -a)
    np.testing.assert_allclose(negated["spearman"], -1.0, rtol=0, atol=1e-12)
    # the magnitude's order, SSIM and HOG of |m| do not see the sign
    for metric in ("spearman_abs", "ssim", "hog"):
        np.testing.assert_allclose(negated[metric], 1.0, rtol=0, atol=1e-12, err_msg=metric)


def test_unrelated_maps_score_near_zero_and_constant_maps_by_definition():
    a, b = baselines.random_maps((20, 28, 28), 0), baselines.random_maps((20, 28, 28), 1)
    found = similarity.compare(a, b)
    assert abs(found["spearman"].mean()) < 0.02
    # HOG features of two noise maps still share their layout (every bin filled): a floor near 0.1, not 0
    assert abs(found["hog"].mean()) < 0.25
    assert (ranks.spearman(a, np.zeros_like(a)) == 0).all()
    # a map that a ReLU zeroed everywhere still scores 1 against itself, on every metric
    for metric, values in similarity.compare(np.zeros_like(a), np.zeros_like(a)).items():
        assert (values == 1).all(), metric


def test_ssim_equals_scikit_image():
    a, b = similarity.unit_magnitude(maps(3)), similarity.unit_magnitude(maps(4))
    expected = [structural_similarity(a[n], b[n], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                      data_range=1.0) for n in range(len(a))]
    np.testing.assert_allclose(ssim(a, b), expected, rtol=0, atol=1e-10)


def test_hog_puts_a_vertical_edge_in_the_horizontal_gradient_bin():
    m = np.zeros((1, 28, 28))
    m[:, :, 14:] = 1.0                                      # gx > 0 at columns 13, 14; gy = 0
    h = hog.cell_histograms(m, 4)                           # (1, 7, 7, 9)
    assert h[..., 1:].sum() == 0 and h[0, :, 3, 0].tolist() == [2 * 4 / 16] * 7
    np.testing.assert_allclose(h.sum() * 16, np.hypot(*hog.gradients(m)).sum())


def test_deletion_and_insertion_paths_change_n_k_pixels_in_order():
    rng = np.random.default_rng(5)
    image = rng.uniform(1, 2, size=(2, 6, 5))               # C = 2; never equal to the baseline
    order = curves.ranking(rng.normal(size=(1, 6, 5)))[0]
    baseline = np.full((2, 6, 5), -7.0)
    counts = curves.changed_counts(30, 4)
    assert counts.tolist() == [0, 7, 15, 22, 30]
    deleted = curves.path(image, order, baseline, 4, "deletion")
    inserted = curves.path(image, order, baseline, 4, "insertion")
    for k, n in enumerate(counts):
        gone = (deleted[k] == -7.0).all(axis=0).ravel()
        assert set(np.flatnonzero(gone)) == set(order[:n])
        put_back = (inserted[k] != -7.0).all(axis=0).ravel()
        assert set(np.flatnonzero(put_back)) == set(order[:n])
    np.testing.assert_array_equal(deleted[0], image)
    np.testing.assert_array_equal(inserted[-1], image)


def test_area_is_the_trapezoid_rule():
    assert curves.area(np.linspace(1, 0, 29)) == pytest.approx(0.5, abs=1e-12)
    assert curves.area([1.0, 1.0]) == 1.0
    assert curves.area([0.0, 1.0, 0.0]) == pytest.approx(0.5)


def test_noisy_linear_imputation_is_exact_on_a_ramp_inside_the_image():
    i, j = np.mgrid[0:12, 0:10]
    image = (0.5 * i - 2.0 * j + 3.0)[None].astype(np.float64)     # (1, 12, 10), linear
    removed = np.zeros((12, 10), bool)
    removed[3:8, 2:7] = True                                       # a block away from the border
    removed[9, 8] = True
    filled = road.impute(image, removed, noise=0.0)
    np.testing.assert_allclose(filled, image, rtol=0, atol=1e-10)   # the 8-neighbour mean of a plane is itself
    noisy = road.impute(image, removed, noise=0.01, rng=0)
    np.testing.assert_array_equal(noisy[:, ~removed], image[:, ~removed])
    assert 0.005 < np.std(noisy[:, removed] - image[:, removed]) < 0.02


def test_road_masks_take_the_most_or_least_relevant_pixels():
    m = np.arange(100, dtype=float).reshape(10, 10)
    assert np.flatnonzero(road.removed_mask(m, 0.1, "morf")).tolist() == list(range(90, 100))
    assert np.flatnonzero(road.removed_mask(m, 0.3, "lerf")).tolist() == list(range(30))


def test_blur_keeps_a_constant_image_and_replacements_have_the_image_shape():
    x = np.full((2, 3, 9, 9), 0.25)
    np.testing.assert_allclose(baselines.gaussian_blur(x, 1.5), x, rtol=0, atol=1e-12)
    assert baselines.replacement(x, "zero", black=-0.4).min() == -0.4
    assert baselines.replacement(x, "mean", mean=[1.0, 2.0, 3.0])[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="replacement must be one of"):
        baselines.replacement(x, "grey")


PIXEL = (11, 17)


def one_pixel_network():
    """p(class 0) = sigmoid(10 x[PIXEL]): nothing else in the image matters."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 2))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.zero_()
        net[1].weight[0, PIXEL[0] * 28 + PIXEL[1]] = 10.0
    return net.eval()


def test_on_a_one_pixel_network_the_gradient_deletion_curve_falls_at_once_and_the_random_map_does_not():
    net = one_pixel_network()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.1, size=(3, 1, 28, 28)).astype(np.float32)
    x[:, 0, PIXEL[0], PIXEL[1]] = 1.0                                   # p(0) = sigmoid(10) > 0.99
    target = np.zeros(3, dtype=np.int64)
    gradient = saliency(net, torch.from_numpy(x), 0)[:, 0].numpy()
    random_map = baselines.random_maps((3, 28, 28), seed=1)
    zero = np.zeros_like(x)
    grad_curve = faithfulness.deletion_insertion(net, x, gradient, target, zero, 28)["deletion"]
    rand_curve = faithfulness.deletion_insertion(net, x, random_map, target, zero, 28)["deletion"]
    assert (grad_curve[:, 0] > 0.99).all()
    np.testing.assert_allclose(grad_curve[:, 1:], 0.5, rtol=0, atol=1e-6)      # the pixel went first
    assert (rand_curve[:, 1] > 0.99).all()                                      # 28 random pixels missed it
    assert (curves.area(grad_curve) < curves.area(rand_curve)).all()
    oracle = faithfulness.pixel_oracle(net, x, target, zero, "deletion")
    assert all(np.unravel_index(np.argmax(o), o.shape) == PIXEL for o in oracle)
    # ROAD: the pixel imputed from its dark neighbours (MoRF) loses the class; LeRF keeps it
    found = faithfulness.road_scores(net, x, gradient, target, fractions=(0.1,), noise=0.0)
    assert (found["morf"][:, 0] < 0.7).all() and (found["lerf"][:, 0] > 0.99).all()


def test_the_engine_measures_import_without_torch_or_matplotlib():
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "matplotlib"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        from npcnn.sanity import similarity, road
        a = np.random.default_rng(0).normal(size=(2, 28, 28))
        assert similarity.compare(a, a)["hog"].tolist() == [1.0, 1.0]
        road.road_images(a[:1], a[0])
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
