"""Models a run evaluates, all of them predictors (image or ground truth in, label map out).

* `spec`: what a protocol's `models:` list (or the command line) names, parsed and checked;
* `baselines`: weight-free predictors made from the ground truth (oracle, drop_small, ...);
* `folder`: saved label maps of another codebase;
* `mmseg_predictor`: an mmseg 1.x config + checkpoint (the only module importing torch / mmseg).
"""
