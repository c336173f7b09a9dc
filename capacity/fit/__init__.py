"""``capacity fit``: from traces (OTLP JSON GenAI spans, JSONL request logs) to a profile.

Submodules: :mod:`~capacity.fit.jsonl` (the request-log format, pure Python, for writers),
:mod:`~capacity.fit.readers` (streaming readers), :mod:`~capacity.fit.structure` (turns,
stages, loops, turn types), :mod:`~capacity.fit.families` (distribution fits by AIC with KS
distances), :mod:`~capacity.fit.writer` (the commented profile), :mod:`~capacity.fit.report`
(the PNG) and :mod:`~capacity.fit.synth` (request logs generated from a profile).
Importing this package is cheap: the heavy modules load when used.
"""
