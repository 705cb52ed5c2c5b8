"""Packaging for overnight: a Luigi + Keras pipeline for one GPU workstation."""

from setuptools import find_packages, setup

setup(
    name="overnight",
    version="0.1.0",
    description="Deep-learning pipeline for one GPU workstation: Luigi tasks, Keras models, SQL run ledger",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipeline", "pipeline.*", "models", "models.*", "tasks", "tasks.*"]),
    # Alembic's migration scripts are not a package: ship them as data.
    package_data={"pipeline.store": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"]},
    install_requires=[
        "luigi>=3.6,<4",
        "tensorflow>=2.18,<2.22",
        "keras>=3.8,<4",
        # TensorFlow asks for >=0.5.1; 0.7.0 spends 0.7 s more of CPU in every process that imports
        # TensorFlow (0.9 s against 0.2 s for 0.6.0: `python -X importtime -c "import ml_dtypes"`).
        "ml_dtypes>=0.5.1,<0.7",
        "tensorboard>=2.18,<3",  # Keras writes its logs through it; TensorFlow no longer pulls it in
        "pandas>=2.2,<4",
        "numpy>=2.0,<3",  # np.bitwise_count (near-duplicate hashes)
        "pyarrow>=16,<28",
        "scikit-learn>=1.7,<2",  # HistGradientBoosting.fit(X_val=, y_val=)
        "scipy>=1.13,<2",
        "threadpoolctl>=3.1,<4",  # one BLAS thread for the baselines (pipeline/stages/baselines.py)
        "SQLAlchemy>=2.0,<2.2",
        "alembic>=1.13,<2",
        "psycopg2-binary>=2.9,<3",
        "click>=8.1,<9",
        "matplotlib>=3.8,<4",
        "pillow>=10,<14",
        "ImageHash>=4.3,<5",  # perceptual hashes: near-duplicate images stay in one split
        "tqdm>=4.66,<5",
        # `overnight serve`: an ASGI app on uvicorn, Prometheus metrics
        "starlette>=1.0,<2",
        "uvicorn>=0.30,<1",
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<9.2",  # 9.2 drops xdist_group silently (pytest-xdist issue 1386); tests/test_suite.py notices
            "pytest-xdist>=3.6,<4",  # `make test` on every core
            "playwright>=1.40,<2",  # drives the system Chromium
            "ruff>=0.17,<0.18",  # `make lint`: one formatter and linter for the tree
            "pre-commit>=4.7,<5",
            "httpx>=0.27,<1",  # the server's tests and benchmark: a real HTTP client
            "import-linter>=2.17,<3",  # `make lint`: the layering of docs/architecture.md as contracts
            "mypy>=2.4,<2.5",  # `make lint`: types; one minor version, as a newer mypy may find new errors
            # `make docs`: the documentation site, its theme, and the command-line page from click
            "mkdocs>=1.6,<2",
            "mkdocs-material>=9.5,<10",
            "mkdocs-click>=0.8,<1",
        ],
        # xprof: the TensorFlow profiler's analyses, for the GPU benchmark's input-waiting share.
        "gpu": ["tensorflow[and-cuda]>=2.18,<2.22", "xprof>=2.20,<3"],
    },
    entry_points={"console_scripts": ["overnight=tasks.cli:main"]},
)
