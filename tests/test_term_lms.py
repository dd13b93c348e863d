"""Canvas and Moodle grade files against their documented layouts, with a roster that has students
missing, extra and renamed (fast: result records written directly)."""
from __future__ import annotations

import csv

import pytest

from autograder.cli import main
from autograder.lms import write_canvas, write_moodle
from autograder.term import TermError
from term_support import write_record

# ada and bob handed in; cy is on the roster with nothing handed in (missing); zed handed in but dropped
# the course (extra: not on the roster); bob changed his name and login in the LMS since the term began
# (renamed: the course still calls him bob, the roster maps him to the LMS's current identifiers).
ROSTER = """\
student_id,name,canvas_id,sis_user_id,sis_login_id,section,email,username,idnumber
ada,Ada Lovelace,101,S-1,ada.l,A,ada@uni.example,ada.l,1001
bob,Robin Smith,102,S-2,robin.s,B,robin@uni.example,robin.s,1002
cy,Cy Young,103,S-3,cy.y,A,cy@uni.example,cy.y,1003
"""


@pytest.fixture
def course(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "roster.csv").write_text(ROSTER)
    (course / "course.yml").write_text("assignments:\n  hw1: {due: 2030-01-01 00:00, canvas_id: 555}\n"
                                       "  hw2: {due: 2030-01-01 00:00}\n")
    write_record(course, "hw1", "ada", {"a": (4, 4), "b": (2.5, 6)})   # 6.5 / 10
    write_record(course, "hw1", "bob", {"a": (4, 4), "b": (6, 6)})     # 10
    write_record(course, "hw1", "zed", {"a": (1, 4), "b": (0, 6)})     # 1, not on the roster
    write_record(course, "hw2", "ada", {"c": (3, 5)})                  # 3 / 5
    return course


def test_canvas_file_has_canvas_layout_and_roster_identifiers(course, tmp_path):
    out = tmp_path / "canvas.csv"
    extra = write_canvas(course, out, course / "roster.csv")
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "hw1 (555)", "hw2"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10", "5"]
    assert rows[2:] == [["Ada Lovelace", "101", "S-1", "ada.l", "A", "6.5", "3"],
                        ["Cy Young", "103", "S-3", "cy.y", "A", "0", "0"],
                        ["Robin Smith", "102", "S-2", "robin.s", "B", "10", "0"]]
    assert extra == ["zed"]


@pytest.mark.parametrize("id_field, header, ada", [("email", "Email address", "ada@uni.example"),
                                                   ("username", "Username", "ada.l"),
                                                   ("idnumber", "ID number", "1001")])
def test_moodle_file_has_an_identifier_and_one_grade_column_per_assignment(course, tmp_path, id_field, header,
                                                                          ada):
    out = tmp_path / "moodle.csv"
    assert write_moodle(course, out, course / "roster.csv", id_field=id_field) == ["zed"]
    rows = list(csv.reader(out.open()))
    assert rows[0] == [header, "hw1", "hw2"]
    assert rows[1] == [ada, "6.5", "3"]
    assert [r[1:] for r in rows[2:]] == [["10", "0"], ["0", "0"]]  # bob (robin), cy


def test_the_command_line_writes_both_and_warns_about_extra_students(course, tmp_path, capsys):
    assert main(["export", "hw1", "--format", "canvas", "--to", str(tmp_path / "c.csv"),
                 "--course-dir", str(course)]) == 0
    assert "zed has a result but is not on the roster" in capsys.readouterr().err
    assert main(["export", "--format", "moodle", "--moodle-id", "username", "--to", str(tmp_path / "m.csv"),
                 "--course-dir", str(course)]) == 0
    assert list(csv.reader((tmp_path / "m.csv").open()))[0] == ["Username", "hw1", "hw2"]


def test_a_roster_without_lms_identifiers_is_a_one_line_error(course, tmp_path):
    (course / "roster.csv").write_text("student_id,name\nada,Ada\n")
    with pytest.raises(TermError, match="ada has no canvas_id, sis_user_id or sis_login_id"):
        write_canvas(course, tmp_path / "c.csv", course / "roster.csv")
    with pytest.raises(TermError, match="ada has no email"):
        write_moodle(course, tmp_path / "m.csv", course / "roster.csv")
    assert not (tmp_path / "c.csv").exists()
