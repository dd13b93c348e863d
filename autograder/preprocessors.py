"""nbgrader preprocessors used by autograder's configuration."""
from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode


class ClearHiddenTracebacks(NbGraderPreprocessor):
    """Reduce the error output of hidden-test cells to ``ename: evalue``.

    nbgrader's ``ClearHiddenTests`` removes the hidden region from a cell's
    source, but an IPython traceback quotes the lines around the failure, so a
    failing hidden test would still show its code in the feedback. Run this
    before ``ClearHiddenTests`` (it finds the cells by their delimiter). The
    message of a ``coursekit.checks`` failure says what differs, where and by
    how much, which is the part a student needs.
    """

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="Marks a hidden test region").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
