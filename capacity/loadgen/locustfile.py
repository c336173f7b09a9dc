"""Locustfile used by ``capacity loadtest --engine locust``: one User class built from the
profile and settings passed in the ``CAPACITY_LOCUST`` environment variable (JSON)."""

from __future__ import annotations

import json
import os
import pickle

from capacity.loadgen.locust import ENV, user_class

_cfg = json.loads(os.environ[ENV])
with open(_cfg["profile"], "rb") as _f:
    _profile = pickle.load(_f)  # written by run_locust for this run only

ProfileSession = user_class(_profile, time_scale=_cfg["time_scale"],
                            warmup_s=_cfg["warmup_s"], duration_s=_cfg["duration_s"],
                            seed=_cfg["seed"], provider=_cfg["provider"], out=_cfg["out"])
