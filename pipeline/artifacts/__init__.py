"""The artifact layer: one typed reader and writer per stage folder, each knowing its file names.

The rule for every stage: a stage function (pipeline/stages/) takes values and returns values and
never sees an output folder; the artifact classes here read and write each stage's folder and
alone know its file names; a task (tasks/) reads its inputs through them, calls its stage
function and writes what it returned through its output artifact. A night's scores, too large to
hold, are the one stream: the stage writes them to a sink from here, still without a file name.

Import from the module of the stage (`pipeline.artifacts.model`): this package imports nothing, so
a stage's code version holds only the artifacts it uses.
"""
