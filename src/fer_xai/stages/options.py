"""Options shared by the stage commands, declared once so every stage spells and explains them alike."""

from __future__ import annotations

import click

no_mlflow_option = click.option(
    "--no-mlflow", is_flag=True,
    help="Write the stage's files only: no MLflow run, no logging into training runs, no registry.")
