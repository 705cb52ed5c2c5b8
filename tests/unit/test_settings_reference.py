"""One source of truth for every setting: the parameters' descriptions, luigi.cfg and the
generated reference page (docs/configuration.md, tasks/settings_reference.py) agree."""

import argparse

import luigi
import luigi.interface
import luigi.retcodes
import pytest

from tasks import settings_reference as reference

CONFIGS, TASKS = reference.our_classes()
SECTIONS = {cls.get_task_family(): cls for cls in CONFIGS + TASKS}
CONFIG = reference.read_config()
# Every key luigi.cfg sets, but in Luigi's own sections (core, retcode, resources).
SET_KEYS = [
    (section, key)
    for section in CONFIG.sections()
    if section not in reference.LUIGI_SECTIONS
    for key in CONFIG[section]
]
PARAMETERS = [
    (cls.get_task_family(), name, parameter)
    for cls in CONFIGS + TASKS
    for name, parameter in reference.our_parameters(cls)
]
LUIGI_CLASSES = {"core": luigi.interface.core, "retcode": luigi.retcodes.retcode}


def _ids(values) -> list[str]:
    return [f"{value[0]}.{value[1]}" for value in values]


def _parameter(section: str, key: str) -> luigi.Parameter:
    assert section in SECTIONS, f"luigi.cfg [{section}]: no task or shared section of that name in tasks/"
    parameters = dict(reference.our_parameters(SECTIONS[section]))
    assert key in parameters, f"luigi.cfg [{section}] {key}: {section} has no parameter {key} (a typo, or one removed)"
    return parameters[key]


def test_the_page_is_what_the_code_and_luigi_cfg_generate():
    page = reference.PAGE.read_text(encoding="utf-8")
    assert page == reference.render(), (
        f"{reference.PAGE.name} is out of date: regenerate it with `{reference.COMMAND}` (make config-reference)"
    )


@pytest.mark.parametrize(("section", "key"), SET_KEYS, ids=_ids(SET_KEYS))
def test_every_key_of_luigi_cfg_is_a_parameter_of_its_section(section, key):
    _parameter(section, key)


@pytest.mark.parametrize(("section", "name", "parameter"), PARAMETERS, ids=_ids(PARAMETERS))
def test_every_parameter_says_what_it_does(section, name, parameter):
    text = reference.meaning(parameter)
    assert text, f"[{section}] {name}: give the parameter a description= (it is the reference page's text)"
    # The page cuts the choices Luigi appends (their order changes between processes): the text names them.
    missing = [str(choice) for choice in getattr(parameter, "_choices", ()) if str(choice) not in text]
    assert not missing, f"[{section}] {name}: the description names no {', '.join(missing)}"
    # A description is also --help text, which argparse formats with %: a bare % (70%) breaks --help.
    parser = argparse.ArgumentParser()
    parser.add_argument("--value", help=parameter.description)
    parser.format_help()


@pytest.mark.parametrize(("section", "key"), SET_KEYS, ids=_ids(SET_KEYS))
def test_every_value_of_luigi_cfg_parses_as_its_parameter(section, key):
    reference.configured_value(_parameter(section, key), section, key, CONFIG)


@pytest.mark.parametrize("section", sorted(LUIGI_CLASSES))
def test_luigis_own_keys_parse_where_luigi_declares_them(section):
    parameters = dict(LUIGI_CLASSES[section].get_params())
    for key in CONFIG[section]:
        if key in parameters:
            reference.configured_value(parameters[key], section, key, CONFIG)


def test_a_mistyped_value_is_named(tmp_path):
    config_file = tmp_path / "luigi.cfg"
    config_file.write_text("[TrainModel]\nepochs = 3O\n", encoding="utf-8")
    parameter = _parameter("TrainModel", "epochs")
    with pytest.raises(ValueError, match=r"\[TrainModel\] epochs = 3O"):
        reference.configured_value(parameter, "TrainModel", "epochs", reference.read_config(config_file))


@pytest.mark.parametrize("name", ["date", "model_version"])
def test_the_night_parameters_are_declared_once(name):
    declared = {id(dict(cls.get_params())[name]) for cls in TASKS if name in dict(cls.get_params())}
    assert len(declared) == 1, f"{name} is declared in more than one place: use tasks/base/night.py"


def test_the_page_names_the_task_only_parameters_and_the_report_nights():
    page = reference.render()
    assert "`report_nights` | `14` | nights shown in the nightly report" in page
    assert "Parameters without a default are given on each run" in page and "`date` (" in page
