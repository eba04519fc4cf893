"""``fer-xai repro --executor ray``: the stale stages of ``dvc.yaml`` run as Ray tasks.

DVC stays the record: :mod:`.dvc_project` reads the stage graph and asks DVC, stage by stage and
only once its upstream stages are done, whether the stage is stale (as ``dvc repro`` does);
:mod:`.scheduler` runs each stale stage as a task of :mod:`.ray_backend` (resources from
``params.yaml``, :mod:`.resources`) and records it with ``dvc commit`` once it succeeded;
:mod:`.record` says what ran where.
"""
