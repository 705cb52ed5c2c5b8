"""GPU tasks hold the Luigi resource `gpu` on a GPU machine, and nothing on a CPU machine."""
from __future__ import annotations

import datetime

from pipeline import environment
from tasks import BatchPredict, SplitData, TrainModel
from tasks.tuning import TuneTrial


def test_gpu_tasks_declare_the_gpu_resource_only_when_a_gpu_is_listed(monkeypatch):
    night = datetime.date(2030, 1, 1)
    monkeypatch.setattr(environment, "hardware", lambda: {"gpus": []})
    assert TrainModel().resources == {} and BatchPredict(date=night, model_version="m").resources == {}
    monkeypatch.setattr(environment, "hardware", lambda: {"gpus": ["NVIDIA H100 (81559 MiB)"]})
    assert TrainModel().resources == {"gpu": 1}
    assert BatchPredict(date=night, model_version="m").resources == {"gpu": 1}
    assert TuneTrial(params_json="{}").resources == {"gpu": 1}
    assert SplitData().resources == {}
