"""Yes/no task parameters take both forms on the command line, as users type them."""

import pytest
from luigi.cmdline_parser import CmdlineParser

import tasks


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["TrainModel", "--TrainModel-class-weights"], True),
        (["TrainModel", "--TrainModel-class-weights", "true"], True),
        (["TrainModel", "--TrainModel-class-weights", "False"], False),
        (["TrainModel"], False),
    ],
)
def test_a_flag_is_bare_or_given_a_value(argv, expected):
    with CmdlineParser.global_instance(argv) as parser:
        task = parser.get_task_obj()
    assert isinstance(task, tasks.TrainModel) and task.class_weights is expected


def test_a_value_that_is_no_yes_or_no_is_refused():
    argv = ["TrainModel", "--TrainModel-debug", "sometimes"]
    with pytest.raises(ValueError, match="'debug'"), CmdlineParser.global_instance(argv) as parser:
        parser.get_task_obj()
