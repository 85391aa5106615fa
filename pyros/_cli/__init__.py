"""Private helpers of the ``pyros`` command (:mod:`pyros.cli`).

Kept apart from the click commands so that each can be tested without a node or a terminal:

* :mod:`pyros._cli.expressions`: message field paths (``pose.position.x``, ``ranges[3]``) and
  the ``--filter`` expression language;
* :mod:`pyros._cli.stats`: what ``pyros hz``, ``bw`` and ``delay`` measure;
* :mod:`pyros._cli.output`: JSON, YAML and tables;
* :mod:`pyros._cli.params`: parameter trees for ``pyros param dump`` and ``load``;
* :mod:`pyros._cli.environment`: which backend a command uses when none is given.

Nothing here is public API.
"""
