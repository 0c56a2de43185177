"""Table cells that a spreadsheet cannot run: octanogan's one rule against CSV formula injection.

A spreadsheet treats a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a
formula (OWASP, "CSV injection"). No cell of a table octanogan writes starts like that:

- names that octanogan stores and reads back (volume ids, marker names) are refused where they
  enter, in the manifest, annotation and marker tables, with the row named; ids that ``convert``
  makes from file names drop such leading characters;
- free text for people (the user's file paths and the problems in ``refused.csv`` and
  ``predictions.csv``, which octanogan never reads back) gets a leading apostrophe, which
  spreadsheets show as text.
"""

from __future__ import annotations

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would read ``text`` as a formula."""
    return text.startswith(FORMULA_STARTS)


def safe_cell(text: str) -> str:
    """``text`` as a cell that shows as text: a leading apostrophe where it looks like a formula."""
    return f"'{text}" if formula_like(text) else text


def formula_problem(text: str) -> str:
    """The refusal of a name that looks like a formula (for the tables' own errors)."""
    return (f"'{text}' starts with {text[:1]!r}, which spreadsheets run as a formula; "
            "rename it (names may not start with = + - @, tab or carriage return)")
