"""Benchmark: ImageNet-C corruption libraries on this machine's stack, one thread.

    python bench/bench_corruptions.py [--library zeg-eval|imagecorruptions|albumentations]
        [--corruptions NAME ...] [--sizes 240x320 512x512] [--min-time 1.0] [--no-determinism]
        [--fidelity]

Run it with the interpreter of the venv that holds the library (a scratch venv per candidate, e.g.
/tmp/venv-x/bin/python bench/bench_corruptions.py --library imagecorruptions). Each corruption runs
in a fresh worker process (so the first call, numba's compilation included, and the peak memory are
its own) with OMP/MKL/OpenBLAS/numba and OpenCV held to one thread. Printed per corruption:

- first: seconds of the first call in the process (imports excluded; numba compiles then), and
  warm-up: of one more call per severity, also untimed (numba compiles again for other argument types);
- img/s at each size: calls per second over rounds of severities 1-5 (the mean over severities),
  rounds repeated until --min-time seconds have passed;
- peak MiB: the worker's peak RSS less its RSS after imports and image set-up;
- error: the exception of a corruption that does not run on this stack (nothing else is timed).

Determinism (unless --no-determinism), on the 240x320 image: every severity at seeds 0 and 1 is
made twice in one worker and once more in a second worker; `same` says whether all three gave the
same bytes, `seed` whether seeds 0 and 1 differ anywhere (expected for the random corruptions, not
for defocus_blur, zoom_blur, brightness, contrast, pixelate, jpeg_compression), `py-random` whether the call
moved the state of Python's `random`, `np-global` whether it moved numpy's global RNG (the raw
libraries are seeded through it, so only the zeg-eval wrapper, which restores it, can say no).

--fidelity (albumentations only, with imagecorruptions installed beside it): for every corruption
the two cover, the PSNR of albumentations' output against imagecorruptions' at the same severity
(exact for the deterministic ones; for the random ones only the strength is comparable, so the
mean absolute change from the clean image of each is printed as well).

Images: 240x320 is the generated sample's first scene (harness.data.sample.render_scene, the size
zeg-eval's sample has); 512x512 a real COCO photo from ../shared/realdata, centre-cropped and resized
(the generated scene resized when the photo is absent).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's harness, also from a scratch venv without zeg-eval

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")
DETERMINISTIC = ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression")
PHOTO = "coco_stuff_val2017_10/images/000000004495.jpg"


# ---------------------------------------------------------------- the candidates, one interface


class ZegEval:
    """zeg-eval's own wrapper (harness.conditions.corruptions) over whichever library it uses."""

    def __init__(self):
        from harness.conditions import corruptions

        self._module = corruptions
        self.version = corruptions.version()
        self.covers = CORRUPTIONS

    def corrupt(self, image, name, severity, seed):
        return self._module.corrupt(image, name, severity, seed)


class ImageCorruptions:
    """The `imagecorruptions` module as it is (bethgelab's 1.1.2 or the imaug fork: both install it),
    seeded the plain way: numpy's global RNG, plus the `seed=` argument where the fork has one."""

    def __init__(self):
        import inspect
        from importlib import metadata

        import imagecorruptions
        from imagecorruptions import corruptions

        self._corrupt = imagecorruptions.corrupt
        dists = metadata.packages_distributions().get("imagecorruptions", ["imagecorruptions"])
        self.version = ", ".join(f"{d} {metadata.version(d)}" for d in sorted(set(dists)))
        self._takes_seed = {name for name in ("glass_blur", "impulse_noise")
                            if "seed" in inspect.signature(getattr(corruptions, name)).parameters}
        self.covers = CORRUPTIONS

    def corrupt(self, image, name, severity, seed):
        np.random.seed(seed)
        kwargs = {"seed": seed} if name in self._takes_seed else {}
        return self._corrupt(image, severity=severity, corruption_name=name, **kwargs)


def _albumentations_transform(A, name: str, severity: int):
    """The albumentations transform nearest to an ImageNet-C corruption at `severity`, with Hendrycks'
    parameters where the transform has matching ones; None where there is none (frost)."""
    s = severity - 1
    if name == "gaussian_noise":
        c = (0.08, 0.12, 0.18, 0.26, 0.38)[s]
        return A.GaussNoise(std_range=(c, c), per_channel=True, p=1)
    if name == "shot_noise":  # ImageNet-C: Poisson of x*c photons; albumentations: scale = 1/photons, gamma 2.2
        c = (60, 25, 12, 5, 3)[s]
        return A.ShotNoise(scale_range=(1 / c, 1 / c), p=1)
    if name == "impulse_noise":
        c = (0.03, 0.06, 0.09, 0.17, 0.27)[s]
        return A.SaltAndPepper(amount=(c, c), salt_vs_pepper=(0.5, 0.5), p=1)
    if name == "defocus_blur":
        r, a = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s]
        return A.Defocus(radius=(r, r), alias_blur=(a, a), p=1)
    if name == "glass_blur":
        sigma, delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[s]
        return A.GlassBlur(sigma=sigma, max_delta=delta, iterations=iterations, mode="exact", p=1)
    if name == "motion_blur":  # a uniform line kernel of 2*radius+1 px, not ImageMagick's Gaussian weights;
        radius = (10, 15, 15, 15, 20)[s]  # angles must lie in 0-360: 135-225 is the line of -45 to 45
        return A.MotionBlur(blur_limit=(2 * radius + 1, 2 * radius + 1), angle_range=(135, 225), p=1)
    if name == "zoom_blur":
        top, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[s]
        return A.ZoomBlur(max_factor=(top, top), step_factor=(step, step), p=1)
    if name == "snow":  # another algorithm: no severity parameters to carry over
        return A.RandomSnow(snow_point_range=(0.1 + 0.1 * s, 0.1 + 0.1 * s), method="texture", p=1)
    if name == "fog":  # another algorithm (blurred discs, not a plasma fractal)
        return A.RandomFog(fog_coef_range=(0.2 + 0.15 * s, 0.2 + 0.15 * s), p=1)
    if name == "brightness":  # added in RGB, ImageNet-C adds to HSV's V
        c = (0.1, 0.2, 0.3, 0.4, 0.5)[s]
        return A.RandomBrightnessContrast(brightness_limit=(c, c), contrast_limit=(0, 0), p=1)
    if name == "contrast":
        c = (0.4, 0.3, 0.2, 0.1, 0.05)[s]
        return A.RandomBrightnessContrast(brightness_limit=(0, 0), contrast_limit=(c - 1, c - 1), p=1)
    if name == "elastic_transform":  # another parameterisation (no affine part)
        return A.ElasticTransform(alpha=(1, 2, 3, 4, 5)[s] * 20, sigma=10, border_mode=cv2.BORDER_REFLECT_101, p=1)
    if name == "pixelate":
        c = (0.6, 0.5, 0.4, 0.3, 0.25)[s]
        return A.Downscale(scale_range=(c, c), interpolation_pair={"downscale": cv2.INTER_AREA,
                                                                   "upscale": cv2.INTER_NEAREST}, p=1)
    if name == "jpeg_compression":
        q = (25, 18, 15, 10, 7)[s]
        return A.ImageCompression(quality_range=(q, q), p=1)
    return None


class Albumentations:
    """albumentations, one Compose per (corruption, severity), reseeded before every call."""

    def __init__(self):
        import albumentations as A

        self._A = A
        self.version = f"albumentations {A.__version__}"
        self._cache: dict = {}
        self.covers = tuple(n for n in CORRUPTIONS if _albumentations_transform(A, n, 1) is not None)

    def corrupt(self, image, name, severity, seed):
        key = (name, severity)
        if key not in self._cache:
            transform = _albumentations_transform(self._A, name, severity)
            if transform is None:
                raise NotImplementedError(f"albumentations has no {name}")
            self._cache[key] = self._A.Compose([transform])
        compose = self._cache[key]
        compose.set_random_seed(seed)
        return compose(image=image)["image"]


LIBRARIES = {"zeg-eval": ZegEval, "imagecorruptions": ImageCorruptions, "albumentations": Albumentations}


# ---------------------------------------------------------------- images


def bench_image(height: int, width: int) -> np.ndarray:
    """The image of one size: the generated scene at 240x320, otherwise the real photo (else the
    scene) centre-cropped to the aspect ratio and resized with INTER_AREA."""
    from harness.data.sample import SampleConfig, render_scene

    scene = render_scene(SampleConfig(), 0)["image"]
    if (height, width) == scene.shape[:2]:
        return scene
    photo = None
    for base in (ROOT.parent / "shared" / "realdata", Path("/work/shared/realdata")):
        if (base / PHOTO).is_file():
            photo = cv2.cvtColor(cv2.imread(str(base / PHOTO), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            break
    source = scene if photo is None else photo
    h, w = source.shape[:2]
    scale = min(h / height, w / width)
    ch, cw = round(height * scale), round(width * scale)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = source[top:top + ch, left:left + cw]
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _state_digest() -> tuple[str, str]:
    """Digests of Python's `random` state and numpy's global RNG state."""
    py = hashlib.sha256(repr(random.getstate()).encode()).hexdigest()[:16]
    np_state = np.random.get_state()
    npd = hashlib.sha256(np_state[1].tobytes() + repr(np_state[2:]).encode()).hexdigest()[:16]
    return py, npd


# ---------------------------------------------------------------- the worker (one corruption)


def worker(library: str, name: str, sizes: list[tuple[int, int]], min_time: float, hashes: bool,
           timing: bool = True) -> dict:
    """Time one corruption of one library in this process (unless not `timing`) and, with `hashes`,
    digest its outputs; the result as a dict (printed as JSON)."""
    cv2.setNumThreads(1)
    lib = LIBRARIES[library]()
    images = {size: bench_image(*size) for size in sizes}
    out: dict = {"name": name, "version": lib.version}
    if name not in lib.covers:
        out["error"] = "not covered"
        return out
    base_rss = _rss_mib()
    first_image = images[sizes[0]]
    try:
        start = time.perf_counter()
        result = lib.corrupt(first_image, name, 3, 0)
        out["first_s"] = time.perf_counter() - start
    except Exception as exc:  # the library does not run on this stack: say how
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return out
    out["shape_ok"] = bool(result.shape == first_image.shape and result.dtype == np.uint8)
    start = time.perf_counter()
    for severity in range(1, 6):  # warm-up, untimed: numba compiles glass_blur once per argument types
        lib.corrupt(first_image, name, severity, 0)
    out["warmup_s"] = time.perf_counter() - start
    out["ips"] = {}
    for size, image in (images.items() if timing else ()):
        calls, seed, start = 0, 1, time.perf_counter()
        while True:
            for severity in range(1, 6):
                lib.corrupt(image, name, severity, seed)
                seed += 1
                calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        out["ips"][f"{size[0]}x{size[1]}"] = calls / elapsed
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    if hashes:
        digests = {}
        same_in_process = True
        for severity in range(1, 6):
            for seed in (0, 1):
                before = _state_digest()
                a = lib.corrupt(first_image, name, severity, seed)
                after = _state_digest()
                b = lib.corrupt(first_image, name, severity, seed)
                same_in_process &= bool(np.array_equal(a, b))
                digests[f"{severity}/{seed}"] = _digest(a)
                out["moves_py_random"] = out.get("moves_py_random", False) or before[0] != after[0]
                out["moves_np_global"] = out.get("moves_np_global", False) or before[1] != after[1]
        out["same_in_process"] = same_in_process
        out["digests"] = digests
    return out


def _run_worker(args, name: str, hashes: bool, timing: bool = True) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--library", args.library, "--min-time", str(args.min_time),
           "--sizes", *args.sizes] + (["--hashes"] if hashes else []) + ([] if timing else ["--no-timing"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
        return {"name": name, "error": f"worker exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


# ---------------------------------------------------------------- fidelity (albumentations)


def fidelity(sizes: list[tuple[int, int]]) -> None:
    """PSNR of albumentations' corruptions against imagecorruptions' at every severity, and the mean
    absolute change from the clean image of each (the only comparable figure for random ones)."""
    from skimage.metrics import peak_signal_noise_ratio

    alb, ref = Albumentations(), ImageCorruptions()
    image = bench_image(*sizes[0])
    print(f"\nfidelity at {sizes[0][0]}x{sizes[0][1]}: {alb.version} against {ref.version}, seed 0")
    print(f"{'corruption':<18} {'PSNR vs reference by severity 1-5 (dB)':<40} mean |change| alb / ref (grey levels)")
    for name in alb.covers:
        psnrs, changes = [], []
        for severity in range(1, 6):
            a = alb.corrupt(image, name, severity, 0)
            r = ref.corrupt(image, name, severity, 0)
            psnrs.append(peak_signal_noise_ratio(r, a, data_range=255) if not np.array_equal(a, r) else float("inf"))
            diff = [np.abs(x.astype(np.int16) - image).mean() for x in (a, r)]
            changes.append(f"{diff[0]:.1f}/{diff[1]:.1f}")
        tag = "" if name in DETERMINISTIC else " (random)"
        print(f"{name + tag:<18} {' '.join(f'{p:5.1f}' for p in psnrs):<40} {' '.join(changes)}")


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=sorted(LIBRARIES), default="zeg-eval")
    parser.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS))
    parser.add_argument("--sizes", nargs="+", default=["240x320", "512x512"])
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--no-determinism", action="store_true")
    parser.add_argument("--fidelity", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--hashes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [_parse_size(s) for s in args.sizes]
    if args.worker:
        print(json.dumps(worker(args.library, args.worker, sizes, args.min_time, args.hashes, not args.no_timing)))
        return 0
    if args.fidelity:
        fidelity(sizes)
        return 0
    check = not args.no_determinism
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, opencv {cv2.__version__}; one thread")
    header = f"{'corruption':<18} {'first s':>8} {'warm-up s':>9} "
    header += " ".join(f"{s + ' img/s':>14}" for s in args.sizes)
    header += f" {'peak MiB':>9}" + ("  same  seed  py-random  np-global" if check else "")
    version_printed = False
    for name in args.corruptions:
        res = _run_worker(args, name, hashes=check)
        if not version_printed and "version" in res:
            print(f"library: {res['version']}\n{header}")
            version_printed = True
        if "error" in res:
            print(f"{name:<18} {res['error']}")
            continue
        row = f"{name:<18} {res['first_s']:8.3f} {res['warmup_s']:9.3f} "
        row += " ".join(f"{res['ips'][s]:14.2f}" for s in args.sizes)
        row += f" {res['peak_mib']:9.1f}"
        if check:
            again = _run_worker(args, name, hashes=True, timing=False)
            same = res["same_in_process"] and again.get("digests") == res["digests"]
            differs = any(res["digests"][f"{s}/0"] != res["digests"][f"{s}/1"] for s in range(1, 6))
            row += (f"  {'yes' if same else 'NO':>4}  {'diff' if differs else 'same':>4}  "
                    f"{'yes' if res['moves_py_random'] else 'no':>9}  {'yes' if res['moves_np_global'] else 'no':>9}")
        if not res["shape_ok"]:
            row += "  (shape or dtype changed)"
        print(row, flush=True)
    print(f"\nworker peak RSS is per corruption, less its RSS after imports; min-time {args.min_time} s per size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
