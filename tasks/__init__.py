"""The Luigi adapter: one task per stage. `import tasks` never imports TensorFlow.

    luigi --module tasks TrainModel
"""
from tasks import errors
from tasks.evaluation import EvaluateModel
from tasks.features import FitPreprocessor
from tasks.raw import IngestData
from tasks.split import SplitData
from tasks.training import TrainModel
from tasks.validation import ValidateData

errors.install()

__all__ = ["IngestData", "ValidateData", "SplitData", "FitPreprocessor", "TrainModel", "EvaluateModel"]
