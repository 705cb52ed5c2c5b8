"""docs/configuration.md, the configuration reference, generated from the code and luigi.cfg.

    python -m tasks.settings_reference      # rewrites docs/configuration.md

Every luigi.Config section and every task class of the `tasks` package in Luigi's task
register, each a table of key, default and meaning. The meanings are the parameters' own
descriptions (what `luigi --module tasks <Task> --help` shows), so the page has no text of its
own that could fall behind the code; tests/unit/test_settings_reference.py fails when it is out of
date. Only Luigi's own sections of luigi.cfg are described here, by hand.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import luigi
from luigi.configuration.cfg_parser import LuigiConfigParser
from luigi.parameter import Parameter, _no_value
from luigi.task_register import Register

import tasks
from tasks.config import CONFIG_PATH_VARIABLE, DATABASE_URL_VARIABLE, SERVE_TOKEN_VARIABLE

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = REPO_ROOT / "luigi.cfg"
PAGE = REPO_ROOT / "docs" / "configuration.md"
COMMAND = "python -m tasks.settings_reference"
PACKAGE = "tasks"

# Luigi's own sections of luigi.cfg: no class of ours declares their keys.
LUIGI_KEYS = {
    "core": {
        "local_scheduler": "true: each command schedules its own tasks, no luigid needed; `--scheduler-host` (or "
        "`--scheduler-url`) on the command line uses a central luigid instead",
        "logging_conf_file": "the logging configuration: `logging.ini` shows the pipeline's messages as well as "
        "Luigi's",
        "autoload_range": "false: Luigi's range tasks (RangeDaily) come with `--module tasks` instead of Luigi "
        "loading them itself, which silences its deprecation warning",
    },
    "retcode": {
        "already_running": "the task is already running elsewhere (a `--lock` on this host, or luigid)",
        "missing_data": "an input no task of the run can make is missing",
        "not_run": "the scheduler did not let a task run",
        "task_failed": "a task failed",
        "scheduling_error": "a task's `complete()` or `requires()` failed, or the task limit was reached",
        "unhandled_exception": "Luigi itself failed",
    },
}
LUIGI_SECTIONS = (*LUIGI_KEYS, "resources")
LUIGI_INTROS = {
    "core": "Luigi's own settings; luigi.cfg sets these.",
    "retcode": "The exit code of a `luigi` command, the largest of what happened. Without this section "
    "Luigi exits 0 even when a task failed, and cron would never know.",
    "resources": "TensorFlow tasks (training, tuning trials, evaluation, scoring) hold units of the Luigi resource "
    "`gpu`: a training every card of its host, the others one card each, so that they never share a card beyond "
    "it. Unset, `gpu` is the number of cards nvidia-smi lists (`CUDA_VISIBLE_DEVICES` narrows it), detected at "
    "start; set it to override: `gpu = 2` on a one-card machine, with `[overnight] tasks_per_card = 2`, lets two "
    "trials share the card ([GPUs and several workstations](scale.md)).",
}


def our_classes() -> tuple[list[type[luigi.Task]], list[type[luigi.Task]]]:
    """The luigi.Config classes and the task classes the `tasks` package registers with Luigi.

    Bases another class of ours derives from (StageTask, NightScoring) are left out: Luigi reads
    a setting under the name of the task that runs, never of its base. Tasks come in the order the
    package lists them (the pipeline's), then any others by name.
    """
    # Register._reg lists every class in definition order, even where a test defines another
    # class of the same name; the public lookups would call such a name ambiguous.
    ours = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in Register._reg if _in_package(cls)}
    leaves = [
        cls for cls in ours.values() if not any(other is not cls and issubclass(other, cls) for other in ours.values())
    ]
    configs = [cls for cls in leaves if issubclass(cls, luigi.Config)]
    order = {name: index for index, name in enumerate(tasks.__all__)}
    task_classes = [cls for cls in leaves if not issubclass(cls, luigi.Config)]
    task_classes.sort(key=lambda cls: (order.get(cls.__name__, len(order)), cls.__name__))
    return configs, task_classes


def our_parameters(cls: type[luigi.Task]) -> list[tuple[str, Parameter]]:
    """The class's parameters, less those Luigi's own classes declare (RangeDaily's)."""
    return [(name, parameter) for name, parameter in cls.get_params() if not _declared_by_luigi(cls, name)]


def luigi_parameters(cls: type[luigi.Task]) -> list[str]:
    return [name for name, _ in cls.get_params() if _declared_by_luigi(cls, name)]


def meaning(parameter: Parameter) -> str:
    """The parameter's description as a reader should see it.

    Luigi appends a ChoiceParameter's choices to its description from a set, in an order that
    changes from one process to the next, so they are cut (the description names them), and
    argparse's `%%` (a description is --help text) is a `%`.
    """
    text = parameter.description or ""
    choices = getattr(parameter, "_choices", None)
    if choices is not None:
        text = text.removesuffix("Choices: {" + ", ".join(str(choice) for choice in choices) + "}")
    return " ".join(text.replace("%%", "%").split())


def luigi_meaning(section: str, key: str) -> str:
    """What a key of Luigi's own sections does: said here, else by Luigi's parameter of that name.

    Raises:
        ValueError: neither says (a key luigi.cfg sets must be explained on the page).
    """
    if key in LUIGI_KEYS.get(section, {}):
        return LUIGI_KEYS[section][key]
    for cls in Register._reg:
        if _luigi_module(cls.__module__) and cls.get_task_family() == section:
            parameter = dict(cls.get_params()).get(key)
            if parameter is not None and parameter.description:
                return meaning(parameter)
    raise ValueError(f"luigi.cfg [{section}] {key}: say what it does in {__name__}.LUIGI_KEYS")


def read_config(path: Path = CONFIG_FILE) -> LuigiConfigParser:
    """That file alone, read as Luigi reads it: never the file LUIGI_CONFIG_PATH names, which would
    make the page depend on who generates it."""
    parser = LuigiConfigParser()
    parser.read(path, encoding="utf-8")
    return parser


def configured_value(parameter: Parameter, section: str, name: str, config: LuigiConfigParser):
    """luigi.cfg's value parsed by the parameter's own parser, or _no_value where it sets none.

    Raises:
        ValueError: one line naming the key, when the value does not parse.
    """
    if not config.has_option(section, name):
        return _no_value
    text = config.get(section, name)
    try:
        return parameter.normalize(parameter.parse(text))
    except Exception as error:  # each parser raises its own kind (ValueError, KeyError, ...): all mean a bad value
        raise ValueError(f"luigi.cfg [{section}] {name} = {text}: {error}") from error


def render(config_path: Path = CONFIG_FILE) -> str:
    """The whole page, as Markdown."""
    config = read_config(config_path)
    configs, task_classes = our_classes()
    lines = [*_intro(), "## Shared settings", ""]
    for cls in configs:
        lines += _section(cls, config)
    lines += _tasks_intro(task_classes)
    for cls in task_classes:
        lines += _section(cls, config)
    lines += _luigi_sections(config)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    PAGE.write_text(render(), encoding="utf-8")
    logger.info("wrote %s", PAGE.relative_to(REPO_ROOT))


def _intro() -> list[str]:
    return [
        "# Configuration reference",
        "",
        "Every setting of overnight, with its default and what it does: look one up here before you change it "
        "in `luigi.cfg`, in a file of your own or on the command line. This page is generated from the code's "
        f"parameter descriptions and `luigi.cfg` by `{COMMAND}` (`make config-reference`): change those and "
        "run it, never edit the page.",
        "",
        "## How a setting is set",
        "",
        "- `luigi.cfg` in the repository root holds the defaults. A second file named by "
        f"`{CONFIG_PATH_VARIABLE}` overrides it key by key, so each data set can keep a small file of its own "
        "(a path that names no file stops the run rather than running on the defaults).",
        "- Any parameter can also be set on the command line: `--epochs 30` for the task you run, "
        "`--TrainModel-epochs 30` for any task of the run, `--dataset-path data/raw/penguins` for a shared "
        "section's key. A yes/no setting is a bare flag or takes a value: `--TrainModel-class-weights` or "
        "`--TrainModel-class-weights true`.",
        f"- Secrets come from the environment: `{DATABASE_URL_VARIABLE}` wins over `[overnight] database_url`, "
        f"and `{SERVE_TOKEN_VARIABLE}`, when set, is the bearer token every `/invocations` and `/metrics` "
        "request to `overnight serve` must carry.",
        "- In luigi.cfg a `%` is written `%%`.",
        "",
        "The default column shows the value luigi.cfg sets where it sets one, else the code's default, and says "
        "where the two differ; *empty* is an empty value. A task's section in luigi.cfg is named after the task: "
        "`[TrainModel] epochs = 30`.",
        "",
    ]


def _tasks_intro(task_classes: list[type[luigi.Task]]) -> list[str]:
    per_run: dict[str, list[str]] = {}
    for cls in task_classes:
        for name, parameter in our_parameters(cls):
            if _code_default(parameter) is _no_value:
                per_run.setdefault(name, []).append(cls.__name__)
    given = "; ".join(f"`{name}` ({', '.join(owners)})" for name, owners in per_run.items())
    bare = [cls.__name__ for cls in task_classes if not cls.get_params()]
    lines = ["## Task parameters", ""]
    lines += [f"Parameters without a default are given on each run, never in luigi.cfg: {given}.", ""]
    if bare:
        lines += [f"Tasks without parameters: {', '.join(f'`{name}`' for name in bare)}.", ""]
    return lines


def _section(cls: type[luigi.Task], config: LuigiConfigParser) -> list[str]:
    """One heading, what the class is for, its table, and the parameters given on each run."""
    parameters = our_parameters(cls)
    luigi_own = luigi_parameters(cls)
    if not parameters and not luigi_own:
        return []
    section = cls.get_task_family()
    lines = [f"### [{section}]", ""]
    if luigi_own:
        # Luigi's own task (RangeDaily): its module says what it is for here, Luigi what it takes.
        origin = next(base for base in cls.__mro__ if _luigi_module(base.__module__))
        names = ", ".join(f"`{name}`" for name in luigi_own)
        lines += [_summary(sys.modules[cls.__module__]), ""]
        lines += [f"Its parameters ({names}) are Luigi's own: see `{origin.__module__}.{origin.__name__}`.", ""]
        return lines
    summary = _summary(cls)
    if summary:
        lines += [summary, ""]
    rows = [
        (f"`{name}`", _default_cell(parameter, section, name, config), meaning(parameter))
        for name, parameter in parameters
        if _code_default(parameter) is not _no_value
    ]
    if rows:
        lines += [*_table(rows), ""]
    given = [(name, parameter) for name, parameter in parameters if _code_default(parameter) is _no_value]
    if given:
        lines += ["Given on each run:", ""]
        lines += [f"- `--{name.replace('_', '-')}`: {_escape(meaning(parameter))}" for name, parameter in given]
        lines += [""]
    return lines


def _luigi_sections(config: LuigiConfigParser) -> list[str]:
    lines = ["## Luigi's own sections", ""]
    for section in LUIGI_SECTIONS:
        lines += [f"### [{section}]", "", LUIGI_INTROS[section], ""]
        rows = [
            (f"`{key}`", _value_cell(config.get(section, key)), luigi_meaning(section, key))
            for key in _set_keys(config, section)
        ]
        if rows:
            lines += [*_table(rows), ""]
    return lines


def _set_keys(config: LuigiConfigParser, section: str) -> list[str]:
    return list(config[section]) if config.has_section(section) else []


def _summary(documented) -> str:
    """The first paragraph of a class's or module's docstring, on one line."""
    paragraph = (documented.__doc__ or "").strip().split("\n\n")[0]
    return _escape(" ".join(paragraph.split()))


def _default_cell(parameter: Parameter, section: str, name: str, config: LuigiConfigParser) -> str:
    code = _code_default(parameter)
    configured = configured_value(parameter, section, name, config)
    if configured is _no_value:
        return _value_cell(_serialize(parameter, code))
    cell = _value_cell(config.get(section, name))
    if configured != parameter.normalize(code):
        cell += f" (code: {_value_cell(_serialize(parameter, code))})"
    return cell


def _code_default(parameter: Parameter):
    # Luigi keeps the declared default only here: its public lookups read the configuration too.
    return parameter._default


def _serialize(parameter: Parameter, value) -> str:
    text = parameter.serialize(value)
    return text.lower() if isinstance(value, bool) else text  # luigi.cfg's spelling: true, false


def _value_cell(text: str) -> str:
    return f"`{text}`" if text else "*empty*"


def _table(rows: list[tuple[str, str, str]]) -> list[str]:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    return lines + ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]


def _escape(text: str) -> str:
    """Text safe in a Markdown table cell: `|` would end the cell, and `<date>` outside a code
    span would be read as an HTML tag and vanish."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if index % 2 else part.replace("<", "&lt;") for index, part in enumerate(parts))


def _in_package(cls: type) -> bool:
    return cls.__module__.split(".")[0] == PACKAGE


def _luigi_module(module: str) -> bool:
    return module.split(".")[0] == "luigi"


def _declared_by_luigi(cls: type, name: str) -> bool:
    owner = next(base for base in cls.__mro__ if name in vars(base))
    return _luigi_module(owner.__module__)


if __name__ == "__main__":
    main()
