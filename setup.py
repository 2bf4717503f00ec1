"""Installs stpn_tf. Versions are pinned to a set measured to work together (see BUILD_NOTES.md, "Versions")."""

import setuptools

setuptools.setup(
    name="stpn_tf",
    version="0.1.0",
    description=("Weakly-supervised temporal action localization in TensorFlow: STPN (CVPR 2018), background "
                 "modeling (ICCV 2019), AUMN (CVPR 2021) and HAM-Net (AAAI 2021)"),
    # gin_configs/ (top level in the repository) is installed as stpn_tf/gin_configs, so that
    # `--gin_file=stpn.gin` and `--gin_file=cpu/stpn.gin` (the 2-CPU budget files) resolve after a plain
    # (non-editable) install too.
    packages=setuptools.find_packages(include=["stpn_tf", "stpn_tf.*"]) + ["stpn_tf.gin_configs"],
    package_dir={"stpn_tf.gin_configs": "gin_configs"},
    package_data={"stpn_tf.gin_configs": ["*.gin", "cpu/*.gin"]},
    python_requires=">=3.9,<3.13",
    install_requires=[
        # tensorflow-io 0.37.1 (its newest release) is built against TensorFlow 2.17: with 2.18+ its native ops
        # fail to load (undefined symbol). TF 2.17 needs numpy < 2.
        "tensorflow==2.17.1",
        "tensorflow-io==0.37.1",
        "keras==3.15.1",
        "numpy==1.26.4",
        "absl-py>=2.1,<3",
        "gin-config==0.5.0",
        "pandas>=2.2,<4",
    ],
    extras_require={
        # matplotlib: the picture tests (tests/visualization) render real PNGs.
        "test": ["pytest>=8", "matplotlib>=3.8"],
        # The CUDA build of the same TensorFlow release (pulls the NVIDIA wheels from PyPI).
        "gpu": ["tensorflow[and-cuda]==2.17.1"],
        "viz": ["matplotlib>=3.8"],
    },
)
