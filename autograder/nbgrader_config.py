"""nbgrader configuration for grading this course's homework.

``autograder`` copies this file into the course directory (nbgrader's working
root, ``autograder/_course/`` by default) before it runs nbgrader there, and
passes ``--CourseDirectory.root`` and, where asked, ``--Execute.timeout`` on the
command line. The gradebook is SQLite in the course directory (nbgrader's
default ``sqlite:///<root>/gradebook.db``) unless ``$AUTOGRADER_DB_URL`` names
another database (PostgreSQL, for several graders at once). It comes from the
environment, not this file, so a password never lands in the course folder.

The notebooks run in the ``python3`` kernel. Its kernelspec says ``python``,
which jupyter_client replaces with ``sys.executable`` of the nbgrader process;
``autograder`` starts nbgrader with the current interpreter, so the kernel is
that interpreter, with the same coursekit and numpy.
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)

from autograder.grading import COURSE_ID, DB_URL_ENV
from autograder.preprocessors import ClearHiddenTracebacks
from autograder.sandbox import LimitedExecute

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

# nbgrader's default course id is "", which it never creates as a row: SQLite lets the
# assignment's foreign key to it pass, PostgreSQL refuses it. Name the course.
c.CourseDirectory.course_id = COURSE_ID
if os.environ.get(DB_URL_ENV, "").strip():
    c.CourseDirectory.db_url = os.environ[DB_URL_ENV].strip()

# Per-cell limit in seconds; the whole homework runs in a few seconds.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_name = "python3"

# nbgrader's autograde pipeline with Execute replaced by LimitedExecute: the kernel runs
# under autograder.sandbox (rlimits, bubblewrap where it works) and a notebook's outputs
# are capped in bytes (text, images, HTML). The limits come from $AUTOGRADER_LIMITS.
c.Autograde.autograde_preprocessors = [LimitedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]

# Student notebooks carry their own kernelspec; grade with ours.
c.OverwriteKernelspec.enabled = True

# Feedback must not reveal the hidden tests: nbgrader shows them by default, and
# a failing hidden test's traceback quotes its code, so strip that first.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.ClearHiddenTests.enforce_metadata = True

# Keep a runaway print loop from bloating the graded notebook.
c.LimitOutput.max_lines = 200
