"""The Luigi adapter: one task per stage. `import tasks` never imports TensorFlow.

luigi --module tasks TrainModel
luigi --module tasks RangeDaily --of Nightly --start 2026-11-01 --stop 2026-11-08   # a backfill
"""

from tasks.backfill import RangeDaily
from tasks.evaluation import EvaluateModel
from tasks.features import FitPreprocessor
from tasks.monitoring import IngestFeedback, MonitorDrift
from tasks.nightly import Nightly
from tasks.prediction import BatchPredict, LogPredictions, ScoreShard
from tasks.raw import IngestData
from tasks.registry import RegisterModel
from tasks.split import SplitData
from tasks.training import TrainModel
from tasks.tuning import TuneModel, TuneTrial
from tasks.validation import ValidateData

__all__ = [
    "IngestData",
    "ValidateData",
    "SplitData",
    "FitPreprocessor",
    "TrainModel",
    "EvaluateModel",
    "RegisterModel",
    "BatchPredict",
    "ScoreShard",
    "LogPredictions",
    "MonitorDrift",
    "IngestFeedback",
    "Nightly",
    "TuneModel",
    "TuneTrial",
    "RangeDaily",
]
