"""Can a map be trusted? The measures of the sanity checks and of
faithfulness that need no autograd, in NumPy (the torch side, which
randomises networks and computes the maps, is ``bridge.sanity``).

Letters: N images, C channels, H x W pixels, P = H*W, S steps of a curve.

| module       | what                                                              |
| ---          | ---                                                               |
| ranks        | ranks with average ties, Spearman's rank correlation per map pair |
| ssim         | SSIM of two maps (Wang et al. 2004), Gaussian window              |
| hog          | histograms of oriented gradients (Dalal & Triggs 2005), and the  |
|              | Pearson correlation of two maps' HOG features                     |
| similarity   | every similarity of a map to a reference map, by metric name      |
| curves       | deletion and insertion paths (Petsiuk et al. 2018), their areas   |
| road         | ROAD's noisy linear imputation (Rong et al. 2022)                 |
| baselines    | what replaces a pixel: zero, the dataset mean, a Gaussian blur;   |
|              | the random map, the floor every method is held against           |

    from npcnn.sanity import similarity, curves
    scores = similarity.compare(reference_maps, maps)   # {"spearman": (N,), ...}
    order = curves.ranking(maps)                          # (N, P), most relevant first
    path = curves.path(images[0], order[0], baseline, steps=28, kind="deletion")   # (29, C, H, W)
"""
from . import baselines, curves, hog, ranks, road, similarity, ssim

__all__ = ["baselines", "curves", "hog", "ranks", "road", "similarity", "ssim"]
