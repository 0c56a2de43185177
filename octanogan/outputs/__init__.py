"""Output folders: one torch-free module per folder kind, naming its files and reading/writing them.

Every folder octanogan writes carries a small marker file, ``octanogan.json``, naming its kind
(:mod:`octanogan.outputs.folder`). Only a folder that octanogan itself wrote, of the kind being
written, is ever replaced or resumed; any other non-empty ``--out`` is refused.
"""
