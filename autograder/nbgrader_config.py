"""nbgrader configuration for grading this course's homework.

``autograder`` copies this file into the course directory (nbgrader's working
root, ``autograder/_course/`` by default) before it runs nbgrader there, and
passes ``--CourseDirectory.root`` on the command line. The gradebook is SQLite in the course directory (nbgrader's
default ``sqlite:///<root>/gradebook.db``) unless ``$AUTOGRADER_DB_URL`` names
another database (PostgreSQL, for several graders at once). It comes from the
environment, not this file, so a password never lands in the course folder.

nbgrader does three jobs here: ``generate_assignment`` (the student version and the
gradebook's record of the graded cells), the gradebook itself, and
``generate_feedback``. It never executes a submission.
"""
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from autograder.layout import COURSE_ID, DB_URL_ENV
from autograder.preprocessors import ClearHiddenTracebacks

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

# nbgrader's default course id is "", which it never creates as a row: SQLite lets the
# assignment's foreign key to it pass, PostgreSQL refuses it. Name the course.
c.CourseDirectory.course_id = COURSE_ID
if os.environ.get(DB_URL_ENV, "").strip():
    c.CourseDirectory.db_url = os.environ[DB_URL_ENV].strip()

# Grading does not use nbgrader's autograde: `python -m autograder grade` runs the student's
# notebook in a sandboxed process and decides every test in its own process, which never
# runs student code (see autograder/verdict.py). Do not run `nbgrader autograde` on
# submissions: it would execute student code next to the code that records the score.
c.Execute.kernel_name = "python3"

# Feedback must not reveal the hidden tests: nbgrader shows them by default, and
# a failing hidden test's traceback quotes its code, so strip that first.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.ClearHiddenTests.enforce_metadata = True

