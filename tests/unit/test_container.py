"""The container image's own files, checked without building it (`make image-test` builds and
runs it): dependencies read from setup.py, the image's luigi.cfg, the entry point, the health
check, and the Kubernetes manifests against the command line and the image."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "scripts" / "container"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, CONTAINER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup() -> dict:
    return _script("requirements").setup_arguments(ROOT / "setup.py")


def test_the_image_installs_setup_py_s_dependencies_with_tensorflow_s_build_for_its_variant():
    requirements, setup = _script("requirements"), _setup()
    declared = setup["install_requires"]
    (plain,) = [r for r in declared if r.startswith("tensorflow>")]
    cpu = requirements.requirements(setup, "cpu")
    assert cpu == [("tensorflow-cpu" + plain.removeprefix("tensorflow")) if r == plain else r for r in declared]
    gpu = requirements.requirements(setup, "gpu")
    assert [r for r in gpu if r.startswith("tensorflow")] == [
        r for r in setup["extras_require"]["gpu"] if r.startswith("tensorflow[and-cuda]")
    ]
    assert set(gpu) - set(declared) == {gpu[declared.index(plain)]}
    with pytest.raises(SystemExit, match="cpu or gpu"):
        requirements.requirements(setup, "tpu")


def test_the_image_s_luigi_cfg_keeps_every_setting_and_points_every_path_into_the_volume():
    image_config = _script("image_config")
    written = image_config.image_config((ROOT / "luigi.cfg").read_text())
    workstation, image = configparser.ConfigParser(), configparser.ConfigParser()
    workstation.read(ROOT / "luigi.cfg")
    image.read_string(written)
    assert image["overnight"]["data_root"] == "/data"
    assert image["overnight"]["database_url"] == "sqlite:////data/overnight.db"
    assert image["dataset"]["path"] == "/data/raw/digits"
    assert image["core"]["logging_conf_file"] == "/etc/luigi/logging.ini"
    changed = {(s, k) for s in workstation.sections() for k in workstation[s] if workstation[s][k] != image[s][k]}
    assert changed == {
        ("overnight", "data_root"),
        ("overnight", "database_url"),
        ("dataset", "path"),
        ("core", "logging_conf_file"),
    }
    with pytest.raises(SystemExit, match="no line 'logging_conf_file = logging.ini'"):
        image_config.image_config(written)  # the image's own file: its paths are no longer relative


def test_the_health_check_asks_a_server_at_its_port_and_passes_anything_else():
    serving_port = _script("healthcheck").serving_port
    entry = ["/opt/overnight/bin/python3", "/opt/overnight/bin/overnight"]
    assert serving_port([*entry, "serve", "--host", "0.0.0.0", ""]) == 8080
    assert serving_port([*entry, "serve", "--port", "9000", ""]) == 9000
    assert serving_port([*entry, "serve", "--port=9001", ""]) == 9001
    assert serving_port([*entry, "nightly", "2026-11-01", ""]) is None


@pytest.fixture
def entrypoint(tmp_path):
    """entrypoint(*arguments) -> what the image's entry point ran, with a stand-in `overnight`."""
    (tmp_path / "overnight").write_text('#!/bin/sh\necho "overnight $*"\n')
    (tmp_path / "overnight").chmod(0o755)
    environment = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}

    def run(*arguments: str) -> str:
        done = subprocess.run(
            ["sh", str(CONTAINER / "entrypoint.sh"), *arguments],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    return run


def test_the_entry_point_runs_overnight_commands_and_the_few_programs_beside_it(entrypoint):
    assert entrypoint("nightly", "2026-11-01") == "overnight nightly 2026-11-01"
    assert entrypoint("du") == "overnight du"  # overnight's, not coreutils'
    assert entrypoint() == "overnight"
    assert entrypoint("sh", "-c", "echo itself") == "itself"


def test_dependencies_are_installed_before_the_source_is_copied_and_the_context_leaves_data_out():
    steps = [line.split()[0:2] for line in (ROOT / "Dockerfile").read_text().splitlines() if line[:1].isupper()]
    copies = [index for index, step in enumerate(steps) if step[0] == "COPY"]
    installs = [index for index, step in enumerate(steps) if step == ["RUN", "python3"]]
    source = next(index for index in copies if steps[index][1] == ".")
    assert installs and installs[0] < source, steps
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "**/__pycache__"} <= set(ignored)


def _manifests() -> list[dict]:
    return [
        document
        for path in sorted((ROOT / "docs" / "kubernetes").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


def _containers(document: dict) -> list[dict]:
    spec = document["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if document["kind"] == "CronJob" else spec.get("template")
    return template["spec"]["containers"] if template else []


def test_the_kubernetes_manifests_run_real_commands_of_the_image_as_its_user():
    from tasks.cli import main

    uid = re.search(r"useradd --uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    version = _setup()["version"]
    containers = [(document, c) for document in _manifests() for c in _containers(document)]
    assert {document["kind"] for document, _ in containers} == {"CronJob", "Deployment"}
    for document, container in containers:
        assert container["image"] == f"REGISTRY/overnight:{version}"
        arguments = container["args"]
        if arguments[0] == "sh":  # a shell around one overnight command
            arguments = arguments[2].removeprefix("exec overnight ").split()
        command = main.commands[arguments[0]]
        options = {option for parameter in command.params for option in parameter.opts}
        assert {a for a in arguments if a.startswith("--")} <= options, arguments
        names = {variable["name"] for variable in container["env"]}
        assert names <= {"LUIGI_CONFIG_PATH", "OVERNIGHT_DATABASE_URL", "OVERNIGHT_SERVE_TOKEN"}
        template = (
            document["spec"]["jobTemplate"]["spec"]["template"]
            if document["kind"] == "CronJob"
            else document["spec"]["template"]
        )
        assert str(template["spec"]["securityContext"]["runAsUser"]) == uid
    served = next(c for _, c in containers if c["args"][0] == "serve")
    assert served["ports"][0]["containerPort"] == int(served["args"][served["args"].index("--port") + 1]) == 8080
