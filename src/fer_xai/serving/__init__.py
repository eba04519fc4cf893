"""Serving: the registered photo model (``fer-<model>-photo@fold<k>``) that takes encoded photographs."""
