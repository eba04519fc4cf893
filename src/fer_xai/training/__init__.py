"""Training of the zoo's networks on subject-grouped folds (paper sections 3.2-3.4)."""
